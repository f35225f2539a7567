"""fd2825b0760a "mm/gup: remove pXX_devmap usage from get_user_pages()" (Alistair Popple; 5/14
of "mm: Remove pXX_devmap page table bit and pfn_t type", v3 posted 19 Jun 2025; merged for
v6.17 with the MM updates for 6.17-rc1).  kernel_2025_2026.md §2 v6.17, kernel_eras §9.3.

Read: the v3 posting's mm/gup.c hunk (``follow_huge_pud`` loses its ``pud_devmap`` branch with
``get_dev_pagemap``; ``follow_devmap_pmd`` is deleted) and the later references to this id as
upstream ("follow_devmap_pmd() has already been dropped by the commit fd2825b0760a", Anshuman
Khandual, Sep 2025; Alistair Popple's follow-up removing the dead ``put_dev_pagemap`` calls).

The rationale: since v6.15 device pages mapped into user page tables are refcounted like any
other page, and a driver must not offline pages GUP can still find, so GUP need not hold a pgmap
reference to keep ``pfn_to_page`` valid.  The rest of the series (folded in here; its ids are in
the same mm merge): PFN_DEV/PFN_MAP and ``pfn_t`` go, ``vmf_insert_mixed`` uses ``pte_special``
instead of ``pte_devmap``, FS_DAX_LIMITED is removed, the pXX_devmap bits are gone.

Model: ``follow_devmap_page`` (the devmap branch of GUP-slow with its
``get_dev_pagemap``/``put_dev_pagemap`` pair, v4.5-v6.16) is deleted; a device page reached by a
page-table walk is taken with ``try_grab_folio`` alone, and no GUP path touches ``pgmap->ref``.
"""

from ._patch import Patch

PATCH = Patch(
    commit="fd2825b0760a", title="mm/gup: remove pXX_devmap usage from get_user_pages()",
    version="v6.17", confidence="CONFIRMED",
    replaces="GUP-slow looked up the pgmap (get_dev_pagemap) of a devmap entry and held it across the grab",
)
PATCH.remove("follow_devmap_page")
PATCH.set(gup_pgmap_lookup=False, pfn_t=False)
