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


# ---- THP migration: collection, migrate_vma_pages, finalize (a30b48bf1b24 and its series) --------
#
# Read: the posted series' mm/migrate_device.c ("mm/migrate_device: implement THP migration of
# zone device pages", "mm/migrate_device: handle partially mapped folios during collection",
# "mm/migrate_device: add THP splitting during migration") and the mm tree's migrate_device.c:
# ``migrate_vma_collect_huge_pmd``, ``migrate_vma_collect_hole`` with MIGRATE_VMA_SELECT_COMPOUND,
# ``migrate_vma_split_folio``, ``migrate_vma_split_unmapped_folio``, the compound branches of
# ``__migrate_device_pages`` and ``__migrate_device_finalize``.  A PMD mapping is kept as the
# model keeps one (``linux/mm/huge_memory.py``); other PMD mappings of the folio (a forked child's)
# are unmapped and restored through the rmap (``try_to_migrate``, ``remove_migration_ptes``).

from ..linux.mm.mmap import (PAGE_SHIFT, PAGE_SIZE, PTE_DEVICE_PRIVATE, PTE_MIGRATION, PTE_PRESENT, VM_WRITE,
                             vma_is_anonymous)
from ..linux.mm.migrate_device import (MIGRATE_PFN_COMPOUND, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE,
                                       MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
                                       MIGRATE_VMA_SELECT_SYSTEM, migrate_pfn, migrate_pfn_to_page)
from ..linux.mm.mmu_notifier import MMU_NOTIFY_MIGRATE, mmu_notifier_range


def _append(migrate, mpfn: int) -> None:
    migrate.src.append(mpfn)
    migrate.dst.append(0)
    migrate.npages += 1


@PATCH.define
def migrate_vma_collect(k, migrate) -> None:
    """``migrate_vma_collect()`` with the v6.19 PMD step: a PMD-mapped range the caller selected
    with MIGRATE_VMA_SELECT_COMPOUND and that lies wholly in [start, end) is collected as one
    compound entry (``migrate_vma_collect_huge_pmd``; an empty or huge-zero PMD as a compound
    hole, ``migrate_vma_collect_hole``); any other PMD mapping is split to PTEs, and a PTE-mapped
    large folio is split (``migrate_vma_split_folio``, "handle partially mapped folios during
    collection") before its PTE is collected.
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    vma = migrate.vma
    mm = vma.vm_mm
    rng = mmu_notifier_range(MMU_NOTIFY_MIGRATE, mm, migrate.start, migrate.end, vma=vma,
                             owner=migrate.pgmap_owner)
    k.mmu_notifier_invalidate_range_start(rng)
    size = k.hpage_pmd_size()
    addr = migrate.start
    while addr < migrate.end:
        whole = migrate.flags & MIGRATE_VMA_SELECT_COMPOUND and not addr & (size - 1) and \
            addr + size <= migrate.end
        pt = mm.pgtable(addr)
        e = mm.peek_pte(addr)
        zero = e is not None and e.huge and k.is_huge_zero_page(e.page)
        if whole and vma_is_anonymous(vma) and (pt is None or k.pmd_none_range(pt, addr) or
                                                (zero and migrate.flags & MIGRATE_VMA_SELECT_SYSTEM)):
            k.migrate_vma_collect_hole_compound(migrate, addr)   # the huge zero PMD too
            addr += size
            continue
        if zero:
            k.split_huge_pmd_address(vma, addr)
            e = mm.peek_pte(addr)
        if e is not None and e.huge and not e.devmap and not k.is_huge_zero_page(e.page):
            if whole and k.migrate_vma_collect_huge_pmd(migrate, addr):
                addr += size
                continue
            k.split_huge_pmd_address(vma, addr)
            e = mm.peek_pte(addr)
        if e is not None and e.page.head.order and e.kind in (PTE_PRESENT, PTE_DEVICE_PRIVATE) and \
                not k.is_huge_zero_page(e.page) and not e.devmap:
            k.migrate_vma_split_folio(migrate, e.page)
        k.migrate_vma_collect_pte(migrate, vma, addr)
        addr += PAGE_SIZE
    k.mmu_notifier_invalidate_range_end(rng)
    migrate.end = migrate.start + (migrate.npages << PAGE_SHIFT)


@PATCH.define
def migrate_vma_collect_hole_compound(k, migrate, addr: int) -> None:
    """``migrate_vma_collect_hole()`` with MIGRATE_VMA_SELECT_COMPOUND over an aligned PMD range:
    one MIGRATE|COMPOUND entry, the rest skipped (kept as holes "in case we need to split
    later"); one collected page.
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    _append(migrate, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND)
    migrate.cpages += 1
    for _ in range(k.hpage_pmd_nr() - 1):
        _append(migrate, 0)


@PATCH.define
def migrate_vma_collect_huge_pmd(k, migrate, addr: int) -> bool:
    """``migrate_vma_collect_huge_pmd()``: a present THP (MIGRATE_VMA_SELECT_SYSTEM) or this
    owner's device-private PMD (MIGRATE_VMA_SELECT_DEVICE_PRIVATE): take a reference, trylock the
    folio, replace the PMD by a PMD migration entry, drop the mapping's rmap and reference, and
    record one MIGRATE|COMPOUND entry.  False if not selected (the caller splits).
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    vma = migrate.vma
    mm = vma.vm_mm
    pt = mm.pgtable(addr)
    pt.ptl.lock("pmd_lock")
    e = pt.pte(addr).get("pmdp_get")
    folio = e.page.head if e is not None else None
    ok = e is not None and e.huge and folio is e.page and (
        (e.kind == PTE_PRESENT and migrate.flags & MIGRATE_VMA_SELECT_SYSTEM and
         not k.is_zone_device_page(folio)) or
        (e.kind == PTE_DEVICE_PRIVATE and migrate.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE and
         folio.pgmap.owner is migrate.pgmap_owner))
    if not ok:
        pt.ptl.unlock("spin_unlock")
        return False
    k.get_page(folio)
    if not k.migrate_vma_trylock(migrate, folio):
        k.put_page(folio)
        pt.ptl.unlock("spin_unlock")
        return False
    write = e.write
    k.set_pmd_entries(pt, addr, PTE_MIGRATION, folio, write, "set_pmd_migration_entry")
    k.page_remove_rmap(folio, vma)
    k.put_page(folio)
    pt.ptl.unlock("spin_unlock")
    _append(migrate, migrate_pfn(folio.pfn) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND |
            (MIGRATE_PFN_WRITE if write else 0))
    migrate.cpages += 1
    for _ in range(k.hpage_pmd_nr() - 1):
        _append(migrate, 0)
    return True


@PATCH.define
def migrate_vma_split_folio(k, migrate, page) -> None:
    """``migrate_vma_split_folio()``: a large folio mapped by PTEs (partly unmapped, or one
    collection does not select whole) is split before collection; the fault folio is already
    locked, any other is referenced, trylocked, split and released.
    Kernel: mm/migrate_device.c, as "mm/migrate_device: handle partially mapped folios during
    collection" (v6.19 series) has it."""
    folio = page.head
    fault = migrate.fault_page
    if fault is not None and fault.head is folio:
        k.split_folio(folio, lock_at=fault)
        return
    k.get_page(folio)
    if not k.trylock_page(folio):
        k.put_page(folio)
        return
    k.split_folio(folio, lock_at=page)
    k.unlock_page(page)
    k.put_page(page)


@PATCH.define
def migrate_vma_check_page(k, page, fault_page=None) -> bool:
    """``migrate_vma_check_page()`` without the large-folio refusal (the THP series removed it):
    references beyond the expected ones must be mappings.
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    folio = page.head
    extra = 1 + (k.migrate_vma_fault_extra(None, page) if fault_page is page else 0)
    if k.is_zone_device_page(folio):
        extra += 1
    m = folio.mapping.get("page_mapping")
    if m is not None and not getattr(m, "anon", False):
        extra += 1
    return folio._refcount.read("folio_ref_count") - extra <= k.page_mapcount(folio)


@PATCH.define
def migrate_vma_split_unmapped_folio(k, migrate, idx: int, folio) -> None:
    """``migrate_vma_split_unmapped_folio()`` ("mm/migrate_device: add THP splitting during
    migration"): the destination is not compound, so the collected source folio is split to
    order 0 (the PMD migration entry becomes PTE migration entries first) and its entries become
    per-page source entries.
    Kernel: mm/migrate_device.c, as "mm/migrate_device: add THP splitting during migration"
    (v6.19 series) has it."""
    vma = migrate.vma
    addr = migrate.start + idx * PAGE_SIZE
    k.split_huge_pmd_address(vma, addr)              # PMD migration entry -> PTE migration entries
    nr = 1 << folio.order
    flags = migrate.src[idx] & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE)
    mapping = folio.mapping.peek()
    index = folio.index.peek()
    k.__split_unmapped_folio(folio, 0)               # every piece locked, one reference each
    tail1 = k.memmap[folio.pfn + 1]
    if tail1.memcg_data is not None:                 # page[1]'s _nr_pages word: the head's memcg_data
        tail1.memcg_data.set(folio.memcg_data.peek() if folio.memcg_data is not None else 0,
                             "__split_folio_to_order")
    for j in range(nr):
        if j:
            p = k.memmap[folio.pfn + j]
            k.set_page_field(p, "mapping", mapping, "__split_folio_to_order")
            if index is not None:
                k.set_page_field(p, "index", index + j, "__split_folio_to_order")
        migrate.src[idx + j] = migrate_pfn(folio.pfn + j) | flags


@PATCH.define
def migrate_vma_pages(k, migrate) -> None:
    """``migrate_vma_pages()`` -> ``__migrate_device_pages()`` with compound entries: a compound
    source whose destination is compound migrates as one folio (a hole: ``migrate_vma_insert_huge_pmd_page``);
    a compound source with order-0 destinations is split first (a hole: its entries become
    order-0 holes); everything else as before.
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    from ..linux.mm import migrate_device as md
    src, dst = migrate.src, migrate.dst
    nr = k.hpage_pmd_nr()
    i = 0
    while i < migrate.npages:
        if not (src[i] & MIGRATE_PFN_COMPOUND and src[i] & MIGRATE_PFN_MIGRATE):
            i += 1
            continue
        folio = migrate_pfn_to_page(k, src[i])
        if dst[i] & MIGRATE_PFN_COMPOUND:
            newf = migrate_pfn_to_page(k, dst[i])
            if folio is None:
                k.migrate_vma_insert_huge_pmd(migrate, i, newf)
            elif k.folio_migrate_mapping(None, newf, folio, k.migrate_vma_fault_extra(migrate, folio)
                                         if migrate.fault_page is folio else 0):
                src[i] &= ~MIGRATE_PFN_MIGRATE
            i += nr
            continue
        if folio is None:                                # a compound hole migrated as base pages:
            addr = migrate.start + i * PAGE_SIZE         # a huge zero PMD is split first
            e = migrate.vma.vm_mm.peek_pte(addr)
            if e is not None and e.huge and k.is_huge_zero_page(e.page):
                k.split_huge_pmd_address(migrate.vma, addr)
            for j in range(nr):
                src[i + j] = MIGRATE_PFN_MIGRATE
        elif dst[i] & MIGRATE_PFN_VALID:
            k.migrate_vma_split_unmapped_folio(migrate, i, folio)
        else:
            src[i] &= ~MIGRATE_PFN_MIGRATE
        i += nr
    plain = [s if not s & MIGRATE_PFN_COMPOUND else 0 for s in src]
    keep = list(src)
    md.__migrate_device_pages(k, plain, dst, migrate.npages, migrate)
    for j in range(migrate.npages):
        if keep[j] & MIGRATE_PFN_COMPOUND:
            src[j] = keep[j]
        else:
            src[j] = plain[j]


@PATCH.define
def migrate_vma_insert_huge_pmd(k, migrate, i: int, folio) -> None:
    """The hole case of a compound destination: ``migrate_vma_insert_huge_pmd_page`` on the PMD
    of the entry, then the PMD mapping in the page table (a device-private PMD entry for a
    device-private folio, else a present huge PMD).
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    vma = migrate.vma
    mm = vma.vm_mm
    addr = migrate.start + i * PAGE_SIZE
    pt = mm.pgtable(addr, alloc=True)
    pmd = k.pmd_entry(mm, addr)
    e = pt.pte(addr).get("pmdp_get")
    cur = None if e is None else (HUGE_ZERO if e.huge and k.is_huge_zero_page(e.page) else ("mapped", e.page.pfn))
    pmd.set(cur, "pmdp_get")
    nr = k.hpage_pmd_nr()
    sl = migrate.src[i:i + nr]
    k.migrate_vma_insert_huge_pmd_page(migrate, addr, folio, sl, pmd)
    migrate.src[i:i + nr] = sl
    if sl[0] & MIGRATE_PFN_MIGRATE:
        pt.ptl.lock("pmd_lock")
        kind = PTE_DEVICE_PRIVATE if k.is_device_private_page(folio) else PTE_PRESENT
        k.set_pmd_entries(pt, addr, kind, folio, bool(vma.vm_flags & VM_WRITE), "set_pmd_at")
        pt.ptl.unlock("spin_unlock")


@PATCH.define
def migrate_vma_finalize(k, migrate) -> None:
    """``migrate_vma_finalize()`` -> ``__migrate_device_finalize()`` with compound entries: the
    PMD migration entry becomes the new folio's PMD mapping (``remove_migration_pmd``), or the old
    folio's again when the migration failed; then unlock and drop the migration's references.
    Kernel: mm/migrate_device.c, as a30b48bf1b24 (v6.19) has it."""
    from ..linux.mm import migrate_device as md
    src, dst = migrate.src, migrate.dst
    plain_src = list(src)
    plain_dst = list(dst)
    for i in range(migrate.npages):
        if not src[i] & MIGRATE_PFN_COMPOUND:
            continue
        plain_src[i] = plain_dst[i] = 0
        folio = migrate_pfn_to_page(k, src[i])
        newf = migrate_pfn_to_page(k, dst[i]) if dst[i] & MIGRATE_PFN_COMPOUND else None
        if folio is None:
            if newf is not None:
                k.unlock_page(newf)
                k.put_page(newf)
            continue
        if not src[i] & MIGRATE_PFN_MIGRATE or newf is None:
            if newf is not None:
                k.unlock_page(newf)
                k.put_page(newf)
            newf = folio
        k.remove_migration_pmd(migrate, i, folio, newf)
        k.migrate_device_unlock_src(folio, migrate.fault_page)
        k.put_page(folio)
        if newf is not folio:
            k.unlock_page(newf)
            k.put_page(newf)
    md.__migrate_device_finalize(k, plain_src, plain_dst, migrate.npages, migrate.fault_page)


@PATCH.define
def remove_migration_pmd(k, migrate, i: int, src, new) -> None:
    """``remove_migration_ptes()`` for a compound entry: every PMD migration entry of ``src``
    (found through the rmap, so a forked child's too) becomes a PMD mapping of ``new`` (a
    device-private PMD for a device-private folio), with a reference and rmap
    (``remove_migration_pmd``).
    Kernel: mm/huge_memory.c, v6.19 (device-private: a30b48bf1b24)."""
    k.remove_migration_ptes(src, new)

@PATCH.define
def do_huge_pmd_device_private(k, vmf) -> int:
    """``do_huge_pmd_device_private()`` ("mm/memory/fault: add THP fault handling for zone device
    private pages", v6.19 series; id not found in the stored sources): under the PMD lock,
    re-check the entry; trylock the folio, take a reference, drop the lock and call the driver's
    ``migrate_to_ram`` with ``vmf->pte`` NULL (the driver migrates the whole folio); a lost
    trylock returns and the fault is retried.
    Kernel: mm/huge_memory.c, as the v6.19 series has it."""
    haddr = vmf.address & ~(k.hpage_pmd_size() - 1)
    v = vmf.pt.pte(haddr)
    vmf.ptl.lock("pmd_lock")
    cur = v.get("pmd_same")
    head = vmf.pt.pte(vmf.address).get("pmd_same")
    if cur is None or not cur.huge or cur.kind != PTE_DEVICE_PRIVATE or not vmf.orig_pte.same(head):
        vmf.ptl.unlock("spin_unlock")
        return 0
    folio = cur.page
    vmf.page = folio
    vmf.pmd = True                                      # vmf->pte = NULL
    if k.trylock_page(folio, "folio_trylock"):
        k.get_page(folio)
        vmf.ptl.unlock("spin_unlock")
        ret = folio.pgmap.ops.migrate_to_ram(vmf)
        k.unlock_page(folio, "folio_unlock")
        k.put_page(folio)
        return ret
    vmf.ptl.unlock("spin_unlock")
    return 0
