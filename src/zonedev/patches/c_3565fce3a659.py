"""3565fce3a659 "mm, x86: get_user_pages() for dax mappings" (v4.5).

mm/gup.c ``follow_page_pte`` for a devmap PTE [kernel_eras §1, M30: CONFIRMED]: look up the
pgmap (``get_dev_pagemap``), take the page reference (``get_page``, which in this era takes
another pgmap reference), drop the lookup reference (``put_dev_pagemap``).  A pgmap is looked up
only with FOLL_GET, and only then is a page returned at all: "Only return device mapping pages in
the FOLL_GET case since they are only valid while holding the pgmap reference" (follow_page_pte);
``follow_devmap_pmd``/``follow_devmap_pud`` return ``ERR_PTR(-EEXIST)`` without FOLL_GET ("device
mapped pages can only be returned if the caller will manage the page reference count").  Read in
the 3565fce3a659 diff (mm/gup.c, mm/huge_memory.c, v4.5); from v5.7 (3faa52c03f44) the test is
``FOLL_GET | FOLL_PIN`` (v5.7+ follow_devmap_pmd), which the model applies from here on since no
caller passes FOLL_PIN before it existed.  [kernel_2025_2026 §1 C5: the model used to return the
page without a reference]

Also modelled here: ``page_cache_get_speculative()`` (include/linux/pagemap.h), the way the
generic GUP-fast takes a page reference.  It bypasses ``get_zone_device_page()``; when x86
switched to the generic GUP-fast in the v4.12 cycle the matching ``put_page()`` still dropped a
pgmap reference, and the pmem pgmap ref underflowed (F1; revert 6dd29b3df975, fixed for good by
71389703839e).
"""

from ..linux.drivers.dax import device
from ..linux.include.mm import FOLL_GET, FOLL_PIN
from ._patch import Patch

PATCH = Patch(
    commit="3565fce3a659", title="mm, x86: get_user_pages() for dax mappings",
    version="v4.5", confidence="CONFIRMED",
    replaces="get_user_pages() could not return pages of a dax (devmap) mapping",
)
PATCH.set(gup_pgmap_lookup=True, pfn_t=True)
# device-dax, the user of these mappings (drivers/dax/device.c; linux/drivers/dax/device.py)
for _fn in device.FUNCTIONS:
    PATCH.define(_fn)


@PATCH.define
def follow_devmap_page(k, pfn: int, flags: int = FOLL_GET):
    """GUP-slow on a devmap PTE/PMD: the page with a reference; None without FOLL_GET (-EEXIST
    from follow_devmap_pmd, no page from follow_page_pte), when the pgmap is gone or dying
    (-EFAULT), or when a FOLL_PIN grab is refused (``try_grab_page`` false: -ENOMEM,
    follow_devmap_pmd v5.7+).

    Kernel: mm/gup.c, as 3565fce3a659 (v4.5) has it."""
    if not flags & (FOLL_GET | FOLL_PIN):
        return None
    pgmap = k.get_dev_pagemap(pfn)
    if pgmap is None:
        return None
    page = k.pfn_to_page(pfn)
    if flags & FOLL_PIN:
        if not k.try_grab_page(page, flags):     # v5.7+: ERR_PTR(-ENOMEM), nothing held
            page = None
    else:
        k.get_page(page)
    k.put_dev_pagemap(pgmap)
    return page


@PATCH.define
def page_cache_get_speculative(k, page) -> bool:
    """``get_page_unless_zero()`` on the head: no pgmap reference in any era.
    Kernel: include/linux/pagemap.h, as 3565fce3a659 (v4.5) has it."""
    return k.page_ref_add_unless(page.head, 1, 0, "page_cache_get_speculative")
