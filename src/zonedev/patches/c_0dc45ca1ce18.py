"""0dc45ca1ce18 "mm/memremap.c: take a pgmap reference on page allocation" (v6.1, Alistair
Popple; Fixes: 27674ef6c73f).

[kernel_eras §8, M15 diff: CONFIRMED full id]
* The bug (F8): once 27674ef6c73f stopped dropping a pgmap reference in put_page,
  ``memunmap_pages`` could return while device pages were still mapped, and the driver could
  free the pgmap under them.
* ``pagemap_range`` skips the bulk per-page ``percpu_ref_get_many`` for PRIVATE/COHERENT, and
  ``memunmap_pages`` skips the matching bulk put.
* ``zone_device_page_init`` takes the reference:
  ``WARN_ON_ONCE(!percpu_ref_tryget_live(&page->pgmap->ref))`` -- allocating after
  ``memunmap_pages`` started is a driver bug (``alloc_after_kill``).
* ``free_zone_device_page`` drops it (``put_dev_pagemap``) after ``page_free`` for
  PRIVATE/COHERENT.  ``memunmap_pages`` therefore waits until every allocated PRIVATE/COHERENT
  page has been freed (F10 if a driver never frees them: the wait hangs).

The invariant this commit establishes (kernel_eras.md §13, H/I eras): the pgmap reference count
is at least the number of allocated PRIVATE/COHERENT pages (a large folio counts its nr pages),
plus the initial reference until ``percpu_ref_kill``.  The model checks it itself
(``zd_check_pgmap_ref_covers``) where either side changes downwards: after the free path's
``put_dev_pagemap`` and when ``memunmap_pages``' wait returns; a violation is
``pgmap_ref_below_allocated``.
"""

from ..linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE
from ..linux.mm.memremap import WORDS_ALLOC_AFTER_KILL
from ..linux.mm.memremap import WORDS_INIT_BUSY
from ._patch import Patch

WORDS_REF_BELOW_ALLOCATED = ("pgmap reference count below the number of allocated device pages: a pgmap "
                             "reference was put too often, so memunmap_pages() can return while they are "
                             "in use (the kernel has no check; the percpu_ref only notices <= 0 at kill)")

PATCH = Patch(
    commit="0dc45ca1ce18900572282c4f054bbe78351cb6a7",
    title="mm/memremap.c: take a pgmap reference on page allocation",
    version="v6.1", confidence="CONFIRMED", fixes="27674ef6c73f",
    replaces="allocated device-private/coherent pages held no pgmap reference: memunmap_pages "
             "did not wait for them (F8)",
)

_OWN_REF = (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT)


@PATCH.define
def pagemap_range_get_refs(k, pgmap, rng) -> None:
    """The per-page pgmap references of ``pagemap_range``, now only for the types whose pages are
    not allocated through ``zone_device_page_init``.  Kernel: mm/memremap.c, as 0dc45ca1ce18
    "mm/memremap.c: take a pgmap reference on page allocation" (v6.1) has it."""
    if pgmap.type not in _OWN_REF:
        pgmap.ref.get_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_get_many")


@PATCH.define
def zone_device_page_init(k, page) -> None:
    """``zone_device_page_init()``: a driver hands out a free device page: take a pgmap
    reference for it (``percpu_ref_tryget_live``: a WARN once ``memunmap_pages`` has killed the
    ref -- drivers must not allocate after that), then refcount 0 -> 1 and lock it.
    Kernel: mm/memremap.c, as 0dc45ca1ce18 (v6.1) has it."""
    if not page.pgmap.ref.tryget_live("zone_device_page_init"):
        k.world.violate("alloc_after_kill", WORDS_ALLOC_AFTER_KILL, page.pfn, "zone_device_page_init")
    if page._refcount.peek() != 0:
        k.world.violate("init_of_busy_page", WORDS_INIT_BUSY, page.pfn, "zone_device_page_init")
    k.set_page_count(page, 1, "zone_device_page_init")
    k.lock_page(page, "zone_device_page_init")


@PATCH.define
def free_zone_device_page(k, page) -> None:
    """``free_zone_device_page()``: the final put of a device page: clear its mapping, the
    driver's ``page_free``, and drop the pgmap reference ``zone_device_page_init`` took.
    Kernel: mm/memremap.c, as 0dc45ca1ce18 "mm/memremap.c: take a pgmap reference on page
    allocation" (v6.1) left it."""
    func = "free_zone_device_page"
    pgmap = page.pgmap
    if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
        k.world.violate("free_without_page_free",
                        "WARN_ON_ONCE(!page->pgmap->ops || !page->pgmap->ops->page_free)", page.pfn, func)
        return
    k.mem_cgroup_uncharge(page, func)
    if k.PageAnon(page):
        k.__ClearPageAnonExclusive(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)
    if pgmap.type not in _OWN_REF:
        # Reset the page count to 1 to prepare for handing out the page again.
        k.set_page_count(page, 1, func)
    else:
        k.put_dev_pagemap(pgmap)
        k.zd_check_pgmap_ref_covers(pgmap, func)


@PATCH.define
def zd_allocated_pages(k, pgmap) -> int:
    """The allocated pages of a PRIVATE/COHERENT pgmap: the folios with a nonzero refcount,
    ``folio_nr_pages`` each (a page made from a stale tail, F17, is not counted: the check then
    errs towards silence).  Kernel: mm/memremap.c, as 0dc45ca1ce18 (v6.1) counts them -- one
    pgmap reference per page handed out by ``zone_device_page_init``."""
    n = 0
    for page in pgmap.pages:
        if page.head is page and page._refcount.peek() > 0:
            n += 1 << page.order
    return n


@PATCH.define
def zd_check_pgmap_ref_covers(k, pgmap, func: str) -> bool:
    """kernel_eras.md §13 (H/I eras, v6.1+): ``pgmap->ref`` >= allocated PRIVATE/COHERENT pages,
    plus the initial reference ``memremap_pages`` holds until ``percpu_ref_kill``.  Lookups
    (``get_dev_pagemap``) only add to the count, so a shortfall means a reference put too often
    or a page handed out without one; reported once per pgmap as ``pgmap_ref_below_allocated``.
    Kernel: mm/memremap.c, as 0dc45ca1ce18 "mm/memremap.c: take a pgmap reference on page
    allocation" (v6.1) establishes it."""
    ref = getattr(pgmap, "ref", None)
    if ref is None or ref.exited or pgmap.type not in _OWN_REF or getattr(pgmap, "zd_ref_reported", False):
        return True
    held = ref.peek() - (0 if ref.dead else 1)
    allocated = k.zd_allocated_pages(pgmap)
    if held >= allocated:
        return True
    pgmap.zd_ref_reported = True
    k.world.violate("pgmap_ref_below_allocated", WORDS_REF_BELOW_ALLOCATED, None,
                    f"{func}: {pgmap.name} holds {held} page reference(s) for {allocated} allocated page(s)")
    return False


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()``: kill the pgmap ref (its initial reference goes), put the per-page
    references memremap took for the types that do not count allocations (all but private and
    coherent), wait for the rest to drain (``wait_for_completion(&pgmap->done)``), remove the
    memmap, exit the ref.  Kernel: mm/memremap.c, as 0dc45ca1ce18 "mm/memremap.c: take a pgmap reference on
    page allocation" (v6.1) left it."""
    pgmap.ref.kill("percpu_ref_kill")
    if pgmap.type not in _OWN_REF:
        for rng in pgmap.ranges:
            pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.zd_check_pgmap_ref_covers(pgmap, "memunmap_pages")
    k.pageunmap_range(pgmap)
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.devmap_managed_enable_put(pgmap)
