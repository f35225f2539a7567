"""bbcbf045d6c7 "powerpc/64s: Fix unmap race with PMD migration entries" (Ritesh Harjani, v2 posted
9 Mar 2026; in torvalds/linux master 15 Apr 2026, v7.1-rc1; Fixes: 75358ea359e7 and a30b48bf1b24).
Failure F25.

Read: the v2 posting (arch/powerpc/include/asm/book3s/64/pgtable.h ``pmdp_huge_get_and_clear``,
arch/powerpc/mm/book3s64/pgtable.c ``pmdp_huge_get_and_clear_full``) with its two-CPU race: CPU A
(migration) sets a PMD migration entry under the PMD lock and drops the lock for the copy; CPU B
(munmap) reaches ``zap_huge_pmd``, whose ``__pmd_trans_huge_lock`` accepts the non-present PMD,
and ``pmdp_huge_get_and_clear_full`` hits ``VM_BUG_ON(!pmd_present(*pmdp))``.  "commit
a30b48bf1b24 enabled migration for device-private PMD entries. Hence this is one other path."
The fix: a non-present PMD is read and cleared (``pmd_clear``), no TLB flush.

The model runs powerpc book3s64 rules only where a run says so (``k.uname_m = "ppc64le"``).
"""

from ._patch import Patch

PATCH = Patch(
    commit="bbcbf045d6c7", title="powerpc/64s: Fix unmap race with PMD migration entries",
    version="v7.1", confidence="CONFIRMED", fixes="a30b48bf1b24",
    replaces="powerpc's pmdp_huge_get_and_clear_full BUGged on a non-present PMD (F25)",
)


@PATCH.define
def pmdp_huge_get_and_clear_full(k, vma, addr: int, pmd) -> None:
    """``pmdp_huge_get_and_clear_full()`` with the fix: ``VM_BUG_ON(was_present &&
    !pmd_trans_huge(*pmdp))`` only; a migration or device-private PMD is cleared (the model's
    entries are always huge when present here, so nothing is reported).
    Kernel: arch/powerpc/mm/book3s64/pgtable.c, as bbcbf045d6c7 (v7.1) has it."""
    return None
