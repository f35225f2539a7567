"""Kiryl Shutsemau, "mm/huge_memory: carry pmd_swp_uffd_wp() in change_non_present_huge_pmd()"
(2026, Fixes: 368076f52ebe, Cc: stable; posted for mm-new in a series of six uffd fixes, merge
UNCONFIRMED), as a patch for the kernels that have 368076f52ebe (v6.19 .. newest):

    zonedev check scenarios/k2026.py::f24_uffd_wp_lost_on_mprotect --kernel newest \\
        --patch scenarios/patches/f24_carry_uffd_wp.py

"The PTE-level change_softleaf_pte() does this correctly; mirror that here, matching what
copy_huge_pmd() does for the fork path": the readable device-private PMD keeps
``pmd_swp_uffd_wp``.
"""

import zonedev
from zonedev.linux.mm.mmap import Pte

PATCH = zonedev.Patch(
    commit="f24-carry-uffd-wp", title="mm/huge_memory: carry pmd_swp_uffd_wp() in change_non_present_huge_pmd()",
    version="v6.19", confidence="UNCONFIRMED", fixes="368076f52ebe", base="newest",
    replaces="a writable device-private PMD made readable lost its uffd-wp marker",
)


@PATCH.define
def change_pte_wrprotect(k, pte):
    """``change_non_present_huge_pmd()`` with the fix: the uffd-wp marker is carried.
    Kernel: mm/huge_memory.c, as the 2026 posting has it."""
    return Pte(pte.kind, pte.page, False, pte.dirty, huge=pte.huge, uffd_wp=pte.uffd_wp)
