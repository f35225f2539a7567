"""a30b48bf1b24 "mm/migrate_device: implement THP migration of zone device pages" (Balbir Singh,
device-private THP series, v6.19) -- the part the model has: ``migrate_vma_insert_huge_pmd_page``,
which maps a compound destination folio at an empty PMD (the hole case of ``migrate_vma_pages``
with MIGRATE_PFN_COMPOUND), following ``__do_huge_pmd_anonymous_page``.  The PMD level is
``linux/mm/huge_memory.py``.

Read: ``migrate_vma_insert_huge_pmd_page`` in a stored mm/migrate_device.c that carries both 2026
fixes (its ``unlock_abort:``/``free_abort:``/``abort:`` labels), the posted series, and the
titles of the fixes 63451de16e0a "mm/migrate_device: fix spinlock leak in
migrate_vma_insert_huge_pmd_page" and 2c6f81d58741 "mm/migrate_device: fix pgtable leak in
migrate_vma_insert_huge_pmd_page" (mm-hotfixes, May 2026 -> v7.1).  The form before them is
INFERRED from the fixed code and the titles: the ``check_stable_address_space`` failure jumped
to ``abort`` with the PMD lock held (F22), and no abort path freed the preallocated page-table
page (F23).

Steps: charge the folio, mark it uptodate, ``pte_alloc_one`` (outside the lock, it may sleep),
build the entry (device-private: a device-private PMD swap entry; system or coherent: a
present huge PMD), ``pmd_lock``, ``check_stable_address_space``, ``userfaultfd_missing`` (not
modelled), the PMD must be none (or the huge zero page, replaced with a flush), then rmap, a folio
reference for the mapping, deposit the page-table page (or free it when replacing the zero page),
``set_pmd_at``, unlock.  Any failure clears MIGRATE_PFN_MIGRATE on all HPAGE_PMD_NR source
entries and returns 0.
"""

from ..linux.mm import huge_memory
from ..linux.mm.huge_memory import HUGE_ZERO
from ..linux.mm.migrate_device import MIGRATE_PFN_MIGRATE
from ._patch import Patch

PATCH = Patch(
    commit="a30b48bf1b24", title="mm/migrate_device: implement THP migration of zone device pages",
    version="v6.19", confidence="INFERRED",
    replaces="a compound destination could not be mapped: THP migration split everything to base pages",
)
for _fn in huge_memory.FUNCTIONS:
    PATCH.define(_fn)
PATCH.set(thp_migration=True)


@PATCH.define
def migrate_vma_insert_huge_pmd_page(k, migrate, addr: int, folio, src: list, pmd) -> int:
    """``migrate_vma_insert_huge_pmd_page()``: install a device THP at a PMD: a page-table page to
    deposit, the PMD lock, the stable-address-space and empty-PMD checks, rmap and the mapping's
    reference.  Kernel: mm/migrate_device.c, as a30b48bf1b24 "mm/migrate_device: implement THP
    migration of zone device pages" (v6.19) has it."""
    vma = migrate.vma
    mm = vma.vm_mm
    nr = 1 << folio.order
    pgtable = k.pte_alloc_one(mm)
    ptl = k.pmd_lock(mm, pmd)
    if k.check_stable_address_space(mm):
        return k.migrate_vma_huge_pmd_abort(src, nr, mm, pgtable, ptl, locked=True, csa=True)
    cur = pmd.get("pmdp_get")
    flush = cur == HUGE_ZERO
    if cur is not None and not flush:
        return k.migrate_vma_huge_pmd_abort(src, nr, mm, pgtable, ptl, locked=True, csa=False)
    k.page_add_new_anon_rmap(folio, vma, addr)
    k.get_page(folio)                                   # the mapping's reference
    if flush:
        k.pte_free(mm, pgtable)
    else:
        k.pgtable_trans_huge_deposit(mm, pmd, pgtable)
    pmd.set(("device_private" if k.is_device_private_page(folio) else "huge", folio.pfn), "set_pmd_at")
    ptl.unlock("spin_unlock")
    return 0


@PATCH.define
def migrate_vma_huge_pmd_abort(k, src: list, nr: int, mm, pgtable, ptl, locked: bool, csa: bool) -> int:
    """The failure labels of a30b48bf1b24: ``unlock_abort:`` unlocks, ``abort:`` clears the
    MIGRATE bits.  The stable-address-space failure jumps straight to ``abort:`` (the PMD lock
    stays held: F22) and no label frees the page-table page (F23).

    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    if locked and not csa:
        ptl.unlock("spin_unlock")                       # unlock_abort:
    for i in range(min(nr, len(src))):                  # abort:
        src[i] &= ~MIGRATE_PFN_MIGRATE
    return 0
