"""368076f52ebe "mm/huge_memory: add device-private THP support to PMD operations" (Balbir Singh,
device-private THP series, v6.19).

Read: the posted patch (mm/huge_memory.c: ``copy_huge_pmd``, ``zap_huge_pmd``,
``change_huge_pmd``/``change_non_present_huge_pmd``, ``move_huge_pmd``, ``__split_huge_pmd_locked``
accept a device-private PMD entry) and Kiryl Shutsemau's 2026 fix "mm/huge_memory: carry
pmd_swp_uffd_wp() in change_non_present_huge_pmd()" (Fixes: 368076f52ebe, Cc: stable; in a
6-patch series of uffd fixes for mm-new, merge UNCONFIRMED): "change_non_present_huge_pmd()
rewrites a writable device-private PMD swap entry into a readable one without carrying
pmd_swp_uffd_wp() across ... a plain mprotect() over a UFFD_WP-marked device-private THP strips
the bit and the trap is bypassed on swap-in" (F24).

The zap, fork copy, mremap and split of a device-private PMD are the model's generic PMD rules
(``linux/mm/memory.py``, ``mmap.py``, ``huge_memory.py``: one entry per page, the head's holding
the reference) -- they only ever meet a device-private PMD from v6.19.  What this module adds is
the one rule that differs: the write-protect of a *writable device-private* PMD builds a new
readable entry and, as 368076f52ebe wrote it, leaves the uffd-wp marker behind.  The posted fix
is ``scenarios/patches/f24_carry_uffd_wp.py``.
"""

from ..linux.mm.mmap import PTE_DEVICE_PRIVATE, Pte
from ._patch import Patch

PATCH = Patch(
    commit="368076f52ebe", title="mm/huge_memory: add device-private THP support to PMD operations",
    version="v6.19", confidence="INFERRED",
    replaces="PMD operations handled present THPs and PMD migration entries only",
)


@PATCH.define
def change_pte_wrprotect(k, pte):
    """``change_non_present_huge_pmd()`` for a writable device-private PMD:
    ``make_readable_device_private_entry`` and ``swp_entry_to_pmd`` -- the uffd-wp marker is not
    carried (F24); every other entry as before.
    Kernel: mm/huge_memory.c, as 368076f52ebe (v6.19) has it."""
    if pte.kind == PTE_DEVICE_PRIVATE and pte.huge and pte.write:
        return Pte(pte.kind, pte.page, False, pte.dirty, huge=pte.huge)
    return Pte(pte.kind, pte.page, False, pte.dirty, huge=pte.huge, uffd_wp=pte.uffd_wp)
