"""[PATCH v1 2/2] "mm: remove extra ZONE_DEVICE struct page refcount" (Ralph Campbell, reposted by
Alex Sierra 15 Nov 2021 with the DEVICE_COHERENT series; seed ``003_ede6d8706e8d37f1.txt``, review
in ``002_bcb6ade84e983da5.txt``), on v5.17 -- the last tree before the merged version
(27674ef6c73f, v5.18), which kept fsdax 1-based because of what this one broke.

What the proposal does, for **every** ZONE_DEVICE type, fsdax included (its diff as posted in
the RFC v3 of Oct 2020 and v1 of 2021: mm/page_alloc.c, mm/swap.c, mm/memremap.c, mm/gup.c,
include/linux/dax.h):

* ``memmap_init_zone_device``: "ZONE_DEVICE pages start with a zero reference count";
* ``put_page`` loses its devmap special case: ``put_page_testzero`` and, at 0, ``__put_page`` ->
  ``free_zone_device_page``: fsdax -> ``wake_up_var(&page->_refcount)``; device-private -> clear
  Waiters, memcg uncharge, ``->mapping = NULL``, ``page_free``; other types nothing;
  ``release_pages`` and ``unpin_user_page`` likewise;
* drivers allocate with ``init_page_count`` + ``lock_page`` (the model's name for that pair is
  ``zone_device_page_init``, what v6.1 later called it);
* ``dax_layout_is_idle_page``: ``page_ref_count(page) == 0``;
* ``memunmap_pages`` puts the per-page pgmap references back with one ``percpu_ref_put_many``.

An fsdax page is mapped into a process with ``vmf_insert_mixed``, which takes no page
reference, so a mapped, idle fsdax page now rests at **0** -- and GUP, which must take a reference
on it, meets a page that looks free.

What the matrix shows (``zonedev matrix scenarios/seeds.py --kernel v5.17 --patch THIS``):

* ``fsdax_gup_of_mapped`` on v5.17: ``safe`` -> ``get_on_free_page``: ``try_grab_page`` on the
  mapped page at 0 WARNs and GUP fails -- the warning xfstests generic/413 (direct I/O into a
  DAX mapping) hit (F15).  v6.15 solved it by making each mapping hold a reference (38607c62b3).
* ``dax_free_path`` on v5.17: ``safe`` -> ``get_on_free_page`` (the same GUP, before the race).
* ``page_free_vs_memunmap`` on v5.17: ``page_free_while_referenced`` (with ``use_after_free``:
  page_free still running when memunmap_pages returns) -> ``use_after_free`` alone: the
  F7 quirk goes (no teardown put), but allocated device-private pages hold no pgmap reference
  and ``memunmap_pages`` removes the memmap under them -- the bug the merged version shipped in
  v5.18 (F8) and 0dc45ca1ce18 fixed in v6.1.
* ``pgmap_ref_per_page`` on v5.17: ``safe`` -> ``get_on_free_page``: the mapped device-dax page
  rests at 0 too, GUP-fast's speculative reference fails and the slow path's ``try_grab_page``
  WARNs, so the user never holds the page (with a reference, the bulk put would remove the
  memmap under it, as on v5.18 and later).
* ``page_free_at_one`` on v5.17: ``safe`` -> ``safe`` (now a 1 -> 0 free).
"""

import zonedev
from zonedev.linux.include.memremap import (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC, MEMORY_DEVICE_PCI_P2PDMA,
                                            MEMORY_DEVICE_PRIVATE)

PATCH = zonedev.Patch(
    commit="remove-extra-refcount-2021",
    title="mm: remove extra ZONE_DEVICE struct page refcount",
    version="v5.17", seed="003_ede6d8706e8d37f1.txt", confidence="CONFIRMED",
    replaces="ZONE_DEVICE pages were 1-based (idle at 1; put_devmap_managed_page acted on 2 -> 1)",
)
PATCH.set(
    free_refcount={MEMORY_DEVICE_PRIVATE: 0, MEMORY_DEVICE_FS_DAX: 0, MEMORY_DEVICE_GENERIC: 0,
                   MEMORY_DEVICE_PCI_P2PDMA: 0},
    fsdax_idle_refcount=0,
    devmap_managed_types=(),
    zd_alloc="zone_device_page_init",
)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    """ZONE_DEVICE pages start with a zero reference count."""
    return 0


@PATCH.define
def zone_device_page_init(k, page) -> None:
    """The drivers' ``init_page_count(page); lock_page(page);``."""
    k.set_page_count(page, 1, "init_page_count")
    k.lock_page(page, "lock_page")


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    ops = pgmap.ops
    if pgmap.type == MEMORY_DEVICE_PRIVATE and (ops.page_free is None or ops.migrate_to_ram is None
                                                 or pgmap.owner is None):
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing page_free method\")", None, "memremap_pages")
        raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free, migrate_to_ram and an owner")


@PATCH.define
def dax_busy_page(k, page) -> bool:
    """fs/dax.c ``dax_busy_page``: ``!dax_layout_is_idle_page(page)``, now ``page_ref_count != 0``."""
    return k.page_ref_count(page.head, "dax_busy_page") > 0


@PATCH.define
def put_page(k, page) -> None:
    page = page.head
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def __put_page(k, page) -> None:
    """mm/swap.c: "The page belongs to the device that created pgmap.  Do not return it to page
    allocator." """
    if k.is_zone_device_page(page):
        k.free_zone_device_page(page)
        return
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def free_zone_device_page(k, page) -> None:
    func = "free_zone_device_page"
    t = page.pgmap.type
    if t == MEMORY_DEVICE_FS_DAX:
        k.wake_up_var_refcount(page, func)            # notify page idle
    elif t == MEMORY_DEVICE_PRIVATE:
        k.__ClearPageWaiters(page, func)
        k.mem_cgroup_uncharge(page, func)
        k.set_page_field(page, "mapping", None, func)
        k.call_page_free(page, func)


@PATCH.define
def release_pages(k, pages) -> None:
    for page in pages:
        page = page.head
        if not k.put_page_testzero(page, "release_pages"):
            continue
        k.__put_page(page)


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    pgmap.ref.kill("percpu_ref_kill")
    for rng in pgmap.ranges:
        pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.pageunmap_range(pgmap)
    k.devmap_managed_enable_put(pgmap)
