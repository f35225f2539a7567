"""2c6f81d58741 "mm/migrate_device: fix pgtable leak in migrate_vma_insert_huge_pmd_page" (May
2026, mm-hotfixes, merged next to mm-hotfixes-stable-2026-05-25 before 7.1-rc6; Fixes:
a30b48bf1b24; v7.1, INFERRED).  Failure F23.

Read: the fixed ``migrate_vma_insert_huge_pmd_page``: ``unlock_abort:`` falls through to a new
``free_abort:`` label, ``pte_free(vma->vm_mm, pgtable)``, before ``abort:``.  Before it every
failure after ``pte_alloc_one`` leaked the preallocated page-table page.
"""

from ..linux.mm.migrate_device import MIGRATE_PFN_MIGRATE
from ._patch import Patch

PATCH = Patch(
    commit="2c6f81d58741", title="mm/migrate_device: fix pgtable leak in migrate_vma_insert_huge_pmd_page",
    version="v7.1", confidence="INFERRED", fixes="a30b48bf1b24",
    replaces="an aborted THP insertion leaked its preallocated page-table page (F23)",
)


@PATCH.define
def migrate_vma_huge_pmd_abort(k, src: list, nr: int, mm, pgtable, ptl, locked: bool, csa: bool) -> int:
    """``unlock_abort:`` -> ``free_abort:`` (``pte_free``) -> ``abort:``.
    Kernel: mm/migrate_device.c, as 2c6f81d58741 (v7.1) has it."""
    if locked:
        ptl.unlock("spin_unlock")
    k.pte_free(mm, pgtable)
    for i in range(min(nr, len(src))):
        src[i] &= ~MIGRATE_PFN_MIGRATE
    return 0
