"""27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page refcount" (v5.18; Christoph
Hellwig's version of Ralph Campbell's patch, merged via the folio tree, v5.17-rc4-75).

Seed threads: 002_bcb6ade84e983da5.txt and 003_ede6d8706e8d37f1.txt (the 2021 attempts and the
xfstests 413 warning).  Companion patches folded in (code moves without a behaviour change in the
model): 895749455f60 "mm: simplify freeing of devmap managed pages", 75e55d8a107e "mm: move
free_devmap_managed_page to memremap.c".  5cbf9942c963, later in the same series, is its own
module.
[kernel_eras §7, M13: CONFIRMED]

* The 1-based rule is gone.  A ZONE_DEVICE page that reaches **0** goes (``__put_page`` /
  ``__folio_put``) to ``free_zone_device_page()``: WARN and return unless the page is
  device-private (5cbf9942c963 widens this to any pgmap with ``page_free``); clear Waiters, memcg uncharge, ``mapping = NULL``, ``page_free``, then
  ``set_page_count(page, 1)`` so the driver can hand the page out again.
* FS_DAX is still 1-based: ``put_devmap_managed_page`` now handles FS_DAX only (key taken only
  for FS_DAX): decrement, and at 1 ``wake_up_var(&page->_refcount)``; it never frees.
* ``memunmap_pages`` no longer puts each pfn: ``percpu_ref_put_many(ref, pfn_len)`` per range,
  then wait, then exit.  Allocated pages hold **no** pgmap reference any more, so nothing makes
  memunmap wait for them: F8, fixed by 0dc45ca1ce18 (v6.1).
* ``release_pages``: the FS_DAX put first; otherwise ``put_page_testzero`` and
  ``free_zone_device_page`` at 0.
* Drivers allocate with ``lock_page`` only (no ``get_page``).
"""

from ..linux.include.memremap import MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="27674ef6c73f", title="mm: remove the extra ZONE_DEVICE struct page refcount",
    version="v5.18", confidence="CONFIRMED", seed="003_ede6d8706e8d37f1.txt",
    replaces="device-private pages were free at refcount 1 (put_devmap_managed_page's 2->1 hook); "
             "memunmap_pages put every pfn to drop its pgmap reference",
)
PATCH.remove("free_devmap_managed_page", "devm_memremap_pages_put_pfns")
PATCH.set(devmap_managed_types=(MEMORY_DEVICE_FS_DAX,), zd_alloc="lock_page")


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """The type checks of ``memremap_pages``: device-private pgmaps need ``page_free``,
    ``migrate_to_ram`` and an ``owner``.  Kernel: mm/memremap.c, as 27674ef6c73f "mm: remove the
    extra ZONE_DEVICE struct page refcount" (v5.18) has it."""
    ops = pgmap.ops
    if pgmap.type == MEMORY_DEVICE_PRIVATE:
        if (ops.page_free or ops.folio_free) is None or ops.migrate_to_ram is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")
        if pgmap.owner is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing owner\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs an owner")


@PATCH.define
def put_devmap_managed_page(k, page) -> bool:
    """include/linux/mm.h + mm/memremap.c v5.18: FS_DAX only; wake at 1, never free."""
    if not k.page_is_devmap_managed(page):
        return False
    if k.page_ref_dec_return(page, "put_devmap_managed_page") == 1:
        k.wake_up_var_refcount(page, "put_devmap_managed_page")
    return True


@PATCH.define
def free_zone_device_page(k, page) -> None:
    """``free_zone_device_page()``: the last put of a device-private (or coherent) page: clear its
    mapping, call the driver's ``page_free``, and give the page its idle count back (1 in
    v5.18-v6.0).  Kernel: mm/memremap.c, as 27674ef6c73f "mm: remove the extra ZONE_DEVICE
    struct page refcount" (v5.18) left it."""
    func = "free_zone_device_page"
    if not k.is_device_private_page(page):
        k.world.violate("free_without_page_free", "WARN_ON_ONCE(!is_device_private_page(page))", page.pfn, func)
        return
    k.__ClearPageWaiters(page, func)
    k.mem_cgroup_uncharge(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)
    # Reset the page count to 1 to prepare for handing out the page again.
    k.set_page_count(page, 1, func)


@PATCH.define
def __put_page(k, page) -> None:
    """``__put_page()``: a ZONE_DEVICE page that reached 0 goes to ``free_zone_device_page``; any
    other to the page allocator.  Kernel: mm/swap.c, as 27674ef6c73f "mm: remove the extra
    ZONE_DEVICE struct page refcount" (v5.18) has it."""
    if k.is_zone_device_page(page):
        k.free_zone_device_page(page)
        return
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def __folio_put(k, folio) -> None:
    """``__folio_put()``: as ``__put_page`` for a folio.  Kernel: mm/swap.c, as 27674ef6c73f "mm:
    remove the extra ZONE_DEVICE struct page refcount" (v5.18) has it."""
    if k.folio_is_zone_device(folio):
        k.free_zone_device_page(folio)
        return
    k.free_the_page(folio, folio.order, "__folio_put")


@PATCH.define
def folio_put(k, folio) -> None:
    """``folio_put()``: drop a reference; ``__folio_put`` at 0.  Kernel: include/linux/mm.h, as
    27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page refcount" (v5.18) has it."""
    if k.page_ref_dec_and_test(folio, "folio_put"):
        k.__folio_put(folio)


@PATCH.define
def folio_put_refs(k, folio, refs: int) -> None:
    """``folio_put_refs()``: drop ``refs`` references; ``__folio_put`` at 0.  Kernel:
    include/linux/mm.h, as 27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page refcount"
    (v5.18) has it."""
    if k.page_ref_sub_and_test(folio, refs, "folio_put_refs"):
        k.__folio_put(folio)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: the devmap-managed put (fsdax: wake the waiter at 1) first, else
    ``folio_put``; device-private pages now free at 0 through ``free_zone_device_page``.
    Kernel: include/linux/mm.h, as 27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page
    refcount" (v5.18) left it."""
    folio = page.head
    # For some devmap managed pages we need to catch refcount transition from 2 to 1
    if k.put_devmap_managed_page(folio):
        return
    k.folio_put(folio)


@PATCH.define
def release_pages(k, pages) -> None:
    """``release_pages()``: devmap-managed pages (fsdax) through the devmap put; other ZONE_DEVICE
    pages to ``free_zone_device_page`` at 0; the rest to the allocator.  Kernel: mm/swap.c, as
    27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page refcount" (v5.18) has it."""
    for page in pages:
        page = page.head
        if k.is_zone_device_page(page):
            if k.put_devmap_managed_page(page):
                continue
            if k.put_page_testzero(page, "release_pages"):
                k.free_zone_device_page(page)
            continue
        if k.put_page_testzero(page, "release_pages"):
            k.__put_page(page)


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()``: kill, put the per-page pgmap references, wait for the ref, exit it,
    remove the ranges.  Kernel: mm/memremap.c, as 27674ef6c73f "mm: remove the extra ZONE_DEVICE
    struct page refcount" (v5.18) has it."""
    pgmap.ref.kill("percpu_ref_kill")
    for rng in pgmap.ranges:
        pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.pageunmap_range(pgmap)
    k.devmap_managed_enable_put(pgmap)
