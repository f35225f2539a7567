"""ef233450898f "mm: free device private pages have zero refcount" (v6.1, Alistair Popple).

[kernel_eras §8, M15 diff: CONFIRMED full id]
* ``__init_zone_device_page`` sets refcount **0** for PRIVATE and COHERENT pages.
* ``free_zone_device_page`` no longer resets PRIVATE/COHERENT pages to 1 (other types still are).
* New ``zone_device_page_init(page)``: ``set_page_count(page, 1)`` and ``lock_page``.  Drivers
  (nouveau, test_hmm, amdkfd, ppc uvmem) call it instead of ``lock_page``.
"""

from ..linux.include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
                                      MEMORY_DEVICE_PCI_P2PDMA, MEMORY_DEVICE_PRIVATE)
from ..linux.mm.memremap import WORDS_INIT_BUSY
from ._patch import Patch

PATCH = Patch(
    commit="ef233450898f8893dafa193a9f3211fa077a3d05", title="mm: free device private pages have zero refcount",
    version="v6.1", confidence="CONFIRMED",
    replaces="free device-private/coherent pages sat at refcount 1 (reset after page_free); drivers "
             "allocated with lock_page alone",
)
PATCH.set(
    free_refcount={MEMORY_DEVICE_PRIVATE: 0, MEMORY_DEVICE_COHERENT: 0, MEMORY_DEVICE_FS_DAX: 1,
                   MEMORY_DEVICE_GENERIC: 1, MEMORY_DEVICE_PCI_P2PDMA: 1},
    zd_alloc="zone_device_page_init",
)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    """mm/page_alloc.c ``__init_zone_device_page``: 0 for PRIVATE/COHERENT, 1 otherwise.
    Kernel: mm/page_alloc.c, as ef233450898f (v6.1) has it."""
    return 0 if pgmap.type in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT) else 1


@PATCH.define
def zone_device_page_init(k, page) -> None:
    """``zone_device_page_init()``: a driver allocates a free device page: refcount 0 -> 1 (anything
    else is a page still in use), lock it.  Kernel: mm/memremap.c, as ef233450898f "mm: free
    device private pages have zero refcount" (v6.1) has it."""
    if page._refcount.peek() != 0:
        k.world.violate("init_of_busy_page", WORDS_INIT_BUSY, page.pfn, "zone_device_page_init")
    k.set_page_count(page, 1, "zone_device_page_init")
    k.lock_page(page, "zone_device_page_init")


@PATCH.define
def free_zone_device_page(k, page) -> None:
    """``free_zone_device_page()``: clear the page (anon-exclusive, mapping) and call ``page_free``;
    private and coherent pages stay at 0 (free means 0 now), the other types go back to 1.
    Kernel: mm/memremap.c, as ef233450898f "mm: free device private pages have zero refcount"
    (v6.1) has it."""
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
    # Reset the page count to 1 to prepare for handing out the page again.
    if pgmap.type not in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        k.set_page_count(page, 1, func)
