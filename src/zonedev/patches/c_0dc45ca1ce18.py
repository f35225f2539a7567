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
"""

from ..linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE
from ..linux.mm.memremap import WORDS_ALLOC_AFTER_KILL
from ..linux.mm.memremap import WORDS_INIT_BUSY
from ._patch import Patch

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
    k.pageunmap_range(pgmap)
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.devmap_managed_enable_put(pgmap)
