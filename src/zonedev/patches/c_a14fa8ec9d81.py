"""a14fa8ec9d81 "mm/migrate: Add migrate_device_pfns" (Matthew Brost, via drm-xe, v6.15; 2/.. of
the series that also brought 1afaeb8293c9).  kernel_2025_2026.md §2 v6.15.

Read: the commit message (infradead copy of 1afaeb8293c9's series, "v3: s/migrate_device_
prepopulated_range/migrate_device_pfns; Use helper to lock device pages") and its callers in
drivers/gpu/drm/drm_pagemap.c (``drm_pagemap_evict_to_ram``: ``populate_devmem_pfn`` fills the
array with the allocation's device pfns, then ``migrate_device_pfns(src, npages)``).

"Add migrate_device_pfns which prepares an array of pre-populated device pages for migration.
This is needed for eviction of known set of non-contiguous devices pages to cpu pages which is a
common case for SVM in DRM drivers using TTM."  Each pfn is taken like ``migrate_device_range``
takes its range (the shared lock helper): a reference unless the page is free
(``get_page_unless_zero``), ``trylock_page``, then ``migrate_device_unmap`` unmaps every mapping.
"""

from ..linux.mm.migrate_device import MIGRATE_PFN_MIGRATE, migrate_pfn
from ._patch import Patch

PATCH = Patch(
    commit="a14fa8ec9d81", title="mm/migrate: Add migrate_device_pfns",
    version="v6.15", confidence="INFERRED",
    replaces="drivers could evict only a contiguous pfn range (migrate_device_range)",
)


@PATCH.define
def migrate_device_pfn_lock(k, pfn: int) -> int:
    """The lock helper both ``migrate_device_range`` and ``migrate_device_pfns`` use: the
    migrate pfn of a page that is in use and could be locked, else 0.

    Kernel: mm/migrate_device.c, as a14fa8ec9d81 (v6.15) has it."""
    page = k.pfn_to_page(pfn)
    if not k.get_page_unless_zero(page):
        return 0
    if not k.trylock_page(page):
        k.put_page(page)
        return 0
    return migrate_pfn(page.pfn) | MIGRATE_PFN_MIGRATE


@PATCH.define
def migrate_device_pfns(k, src_pfns: list, npages: int) -> int:
    """``migrate_device_pfns(src_pfns, npages)``: ``src_pfns`` holds device pfns on entry and
    migrate pfns on return; then ``migrate_device_unmap``.

    Kernel: mm/migrate_device.c, as a14fa8ec9d81 (v6.15) has it."""
    for i in range(npages):
        src_pfns[i] = k.migrate_device_pfn_lock(src_pfns[i])
    k.migrate_device_unmap(src_pfns, npages, None)
    return 0
