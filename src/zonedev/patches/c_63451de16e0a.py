"""63451de16e0a "mm/migrate_device: fix spinlock leak in migrate_vma_insert_huge_pmd_page"
(May 2026, mm-hotfixes; Fixes: a30b48bf1b24; in the v7.1 cycle, INFERRED from the revlist of 19
May 2026 that carries it with other mm-hotfixes).  Failure F22.

Read: the fixed ``migrate_vma_insert_huge_pmd_page`` (``if (csa_ret) goto unlock_abort;``).
Before it the ``check_stable_address_space()`` failure -- an mm the OOM reaper is tearing down --
returned with the PMD lock held: the next ``pmd_lock`` of that mm spins for ever.
"""

from ..linux.mm.migrate_device import MIGRATE_PFN_MIGRATE
from ._patch import Patch

PATCH = Patch(
    commit="63451de16e0a", title="mm/migrate_device: fix spinlock leak in migrate_vma_insert_huge_pmd_page",
    version="v7.1", confidence="INFERRED", fixes="a30b48bf1b24",
    replaces="the check_stable_address_space() failure returned with the PMD lock held (F22)",
)


@PATCH.define
def migrate_vma_huge_pmd_abort(k, src: list, nr: int, mm, pgtable, ptl, locked: bool, csa: bool) -> int:
    """``unlock_abort:`` for every failure under the lock; still no page-table free (F23).
    Kernel: mm/migrate_device.c, as 63451de16e0a (v7.1) has it."""
    if locked:
        ptl.unlock("spin_unlock")
    for i in range(min(nr, len(src))):
        src[i] &= ~MIGRATE_PFN_MIGRATE
    return 0
