"""3565fce3a659 "mm, x86: get_user_pages() for dax mappings" (v4.5).

mm/gup.c ``follow_page_pte`` for a devmap PTE [kernel_eras §1, M30: CONFIRMED]: look up the
pgmap (``get_dev_pagemap``), take the page reference (``get_page``, which in this era takes
another pgmap reference), drop the lookup reference (``put_dev_pagemap``).  A pgmap is looked up
only with FOLL_GET.

Also modelled here: ``page_cache_get_speculative()`` (include/linux/pagemap.h), the way the
generic GUP-fast takes a page reference.  It bypasses ``get_zone_device_page()``; when x86
switched to the generic GUP-fast in the v4.12 cycle the matching ``put_page()`` still dropped a
pgmap reference, and the pmem pgmap ref underflowed (F1; revert 6dd29b3df975, fixed for good by
71389703839e).
"""

from ..linux.include.mm import FOLL_GET
from ._patch import Patch

PATCH = Patch(
    commit="3565fce3a659", title="mm, x86: get_user_pages() for dax mappings",
    version="v4.5", confidence="CONFIRMED",
    replaces="get_user_pages() could not return pages of a dax (devmap) mapping",
)


@PATCH.define
def follow_devmap_page(k, pfn: int, flags: int = FOLL_GET):
    """GUP-slow on a devmap PTE: the page, with a reference if FOLL_GET; None (-EFAULT) if the
    pgmap is gone or dying."""
    pgmap = None
    if flags & FOLL_GET:
        pgmap = k.get_dev_pagemap(pfn)
        if pgmap is None:
            return None
    page = k.pfn_to_page(pfn)
    if flags & FOLL_GET:
        k.get_page(page)
        k.put_dev_pagemap(pgmap)
    return page


@PATCH.define
def page_cache_get_speculative(k, page) -> bool:
    """``get_page_unless_zero()`` on the head: no pgmap reference in any era."""
    return k.page_ref_add_unless(page.head, 1, 0, "page_cache_get_speculative")
