"""The PMD level of an address space, as far as device-private THP migration needs it
(mm/huge_memory.c, mm/pgtable-generic.c, include/linux/oom.h; v6.19+).

* A PMD entry per 2 MiB of an mm (``pmd_entry``), locked by ``pmd_lock`` -- the model uses
  ``mm->page_table_lock``, the lock ``pmd_lock`` is without split PMD locks.
* Page-table pages: ``pte_alloc_one`` (a page of its own), ``pte_free``, and
  ``pgtable_trans_huge_deposit`` (kept with a huge PMD for a later split).  ``pgtables_in_flight``
  counts the ones allocated and neither freed nor deposited: anything left at the end leaked.
* ``check_stable_address_space`` (include/linux/oom.h): -EFAULT once the OOM reaper marked the mm
  MMF_UNSTABLE (``mm_set_unstable``).

Only the states the THP insertion path reads are modelled: a PMD is ``None`` (pmd_none), the
huge zero page, or a mapped huge entry.

**Anonymous THP and PMD-mapped folios in the address space** (mm/huge_memory.c, every kernel since
v2.6.38; the device-private kinds from the v6.19 series): a PMD mapping is kept in the PTE page
as the model keeps fsdax PMDs -- one entry per base page of the aligned range, each with
``huge = HPAGE_PMD_ORDER``, the head page's entry holding the mapping's folio reference and
mapcount (the kernel's entire mapcount), the others none.  ``pmd_none`` is "every entry of the
range is none".  The kinds: a present THP (``PTE_PRESENT``), the huge zero folio, a
device-private PMD entry (``PTE_DEVICE_PRIVATE``, v6.19) and a PMD migration entry
(``PTE_MIGRATION``).

**Scale.** ``HPAGE_PMD_ORDER`` is 9 (512 pages) as on x86-64; a model run may set
``k.thp_pmd_order`` lower (the hmm-tests port uses 3: 8-page "PMDs") -- every rule reads the
order from ``hpage_pmd_order(k)``, never the constant, and a huge range never crosses a PTE page.
"""

from __future__ import annotations

import errno

from ...sync import Var
from .mmap import PMD_SHIFT

HUGE_ZERO = "huge_zero"
HPAGE_PMD_ORDER = 9
MADV_HUGEPAGE = 14
VM_HUGEPAGE = 0x20000000


def hpage_pmd_order(k) -> int:
    """``HPAGE_PMD_ORDER`` of this model run (9 unless the run scaled it down).
    Kernel: include/linux/huge_mm.h, v4.5+."""
    return k.__dict__.get("thp_pmd_order", HPAGE_PMD_ORDER)


def hpage_pmd_nr(k) -> int:
    """``HPAGE_PMD_NR``. Kernel: include/linux/huge_mm.h, v4.5+."""
    return 1 << hpage_pmd_order(k)


def hpage_pmd_size(k) -> int:
    """``HPAGE_PMD_SIZE`` (what hmm-tests' ``read_pmd_pagesize()`` reads from sysfs).
    Kernel: include/linux/huge_mm.h, v4.5+."""
    from .mmap import PAGE_SIZE
    return hpage_pmd_nr(k) * PAGE_SIZE


def huge_zero_folio(k):
    """``mm_get_huge_zero_folio()``: the huge zero folio, allocated once, never counted in rmap.
    Kernel: mm/huge_memory.c, v4.5+."""
    hz = k.__dict__.get("_huge_zero")
    if hz is None or hz.order != hpage_pmd_order(k):
        hz = k._huge_zero = k.alloc_pages(hpage_pmd_order(k), 0, "get_huge_zero_page")
        for i in range(hpage_pmd_nr(k)):            # __GFP_ZERO
            k.memmap[hz.pfn + i].data.set(None, "clear_page")
    return hz


def is_huge_zero_page(k, page) -> bool:
    """``is_huge_zero_folio()``. Kernel: include/linux/huge_mm.h, v4.5+."""
    hz = k.__dict__.get("_huge_zero")
    return page is not None and hz is not None and page.head is hz


def thp_vma_allows(k, vma, haddr: int) -> bool:
    """``thp_vma_allowable_order()`` for an anonymous VMA with MADV_HUGEPAGE (the "madvise"
    sysfs mode): the whole aligned range lies inside the VMA.
    Kernel: mm/huge_memory.c, v6.8+ (transhuge_vma_suitable before)."""
    from .mmap import vma_is_anonymous
    return bool(vma.vm_flags & VM_HUGEPAGE) and vma_is_anonymous(vma) and \
        vma.vm_start <= haddr and haddr + hpage_pmd_size(k) <= vma.vm_end


def pmd_none_range(k, pt, haddr: int) -> bool:
    """``pmd_none()`` in the model: no entry of the aligned range is set.
    Kernel: include/linux/pgtable.h, v4.5+."""
    from .mmap import PAGE_SIZE
    return all(pt.pte(haddr + i * PAGE_SIZE).get("pmd_none") is None for i in range(hpage_pmd_nr(k)))


def set_pmd_entries(k, pt, haddr: int, kind: str, folio, write: bool, func: str = "set_pmd_at") -> None:
    """``set_pmd_at()``: the PMD mapping of ``folio`` (one entry per base page, see above).
    Kernel: include/linux/pgtable.h, v4.5+."""
    from .mmap import PAGE_SIZE, Pte
    order = hpage_pmd_order(k)
    for i in range(hpage_pmd_nr(k)):
        pt.pte(haddr + i * PAGE_SIZE).set(Pte(kind, k.memmap[folio.pfn + i], write, write and kind == "present",
                                              huge=order), func)


def do_huge_pmd_anonymous_page(k, vmf) -> int:
    """``do_huge_pmd_anonymous_page()``: a read fault maps the huge zero folio (``use_zero_page``
    is on by default), a write fault a new zeroed THP (``__do_huge_pmd_anonymous_page``: folio
    alloc, clear, ``folio_add_new_anon_rmap``, ``set_pmd_at``).
    Kernel: mm/huge_memory.c, v4.5+."""
    from .memory import FAULT_FLAG_WRITE
    from .mmap import PTE_PRESENT, VM_WRITE
    vma = vmf.vma
    haddr = vmf.address & ~(hpage_pmd_size(k) - 1)
    order = hpage_pmd_order(k)
    if not vmf.flags & FAULT_FLAG_WRITE:
        hz = huge_zero_folio(k)
        vmf.ptl.lock("pmd_lock")
        if pmd_none_range(k, vmf.pt, haddr):
            set_pmd_entries(k, vmf.pt, haddr, PTE_PRESENT, hz, False, "set_huge_zero_folio")
        vmf.ptl.unlock("spin_unlock")
        return 0
    folio = k.folio_alloc(0, order, "vma_alloc_anon_folio_pmd")
    for i in range(1 << order):
        k.memmap[folio.pfn + i].data.set(None, "folio_zero_user")
    vmf.ptl.lock("pmd_lock")
    if not pmd_none_range(k, vmf.pt, haddr):
        vmf.ptl.unlock("spin_unlock")
        k.put_page(folio)
        return 0
    k.page_add_new_anon_rmap(folio, vma, haddr)
    set_pmd_entries(k, vmf.pt, haddr, PTE_PRESENT, folio, bool(vma.vm_flags & VM_WRITE))
    vmf.ptl.unlock("spin_unlock")
    return 0


def pmdp_huge_get_and_clear_full(k, vma, addr: int, pmd) -> None:
    """``pmdp_huge_get_and_clear_full()`` as ``zap_huge_pmd`` calls it.  Generic (x86 and the
    model's default): clear the PMD, whatever it holds.  powerpc book3s64 (the run's
    ``k.uname_m == "ppc64le"``; arch/powerpc/mm/book3s64/pgtable.c since 75358ea359e7, v5.8):
    ``VM_BUG_ON((pmd_present(*pmdp) && !pmd_trans_huge(*pmdp)) || !pmd_present(*pmdp))`` -- a PMD
    migration entry or a device-private PMD (v6.19) is a kernel BUG (F25) until bbcbf045d6c7.
    Kernel: arch/powerpc/mm/book3s64/pgtable.c, v5.8+ (generic: include/linux/pgtable.h)."""
    from .mmap import PTE_PRESENT
    if k.__dict__.get("uname_m") == "ppc64le" and pmd.kind != PTE_PRESENT:
        k.world.violate("pmd_not_present_bug",
                        "kernel BUG at arch/powerpc/mm/book3s64/pgtable.c: VM_BUG_ON(!pmd_present(*pmdp)) "
                        f"in pmdp_huge_get_and_clear_full (a {pmd.kind} PMD)", pmd.page.pfn, "zap_huge_pmd")


def __split_huge_pmd_locked(k, vma, pt, haddr: int) -> None:
    """``__split_huge_pmd_locked()`` (PMD lock held): the PMD mapping becomes PTE mappings of the
    same folio -- the huge zero folio becomes small zero-page PTEs; a present THP, a
    device-private PMD (v6.19, "mm/huge_memory: implement device-private THP splitting") and a
    PMD migration entry become one entry per page; a mapped folio gets ``HPAGE_PMD_NR - 1``
    more references and each tail page a mapcount (the head's carries over from the PMD).
    Kernel: mm/huge_memory.c, v6.19 (anon THP: every kernel)."""
    from .mmap import PAGE_SIZE, PTE_MIGRATION, Pte
    head = pt.pte(haddr).get("pmd_trans_huge")
    if head is None or not head.huge:
        return
    nr = 1 << head.huge
    folio = head.page.head
    if k.has("zap_deposited_table"):
        k.zap_deposited_table(vma.vm_mm)             # pgtable_trans_huge_withdraw
    if is_huge_zero_page(k, folio):
        zp = k.zero_page()
        for i in range(nr):
            pt.pte(haddr + i * PAGE_SIZE).set(Pte("present", zp, False), "__split_huge_zero_page_pmd")
        return
    if head.kind != PTE_MIGRATION:
        k.page_ref_add(folio, nr - 1, "folio_ref_add")
    for i in range(nr):
        v = pt.pte(haddr + i * PAGE_SIZE)
        e = v.get("__split_huge_pmd_locked")
        if head.kind != PTE_MIGRATION and i:
            k.page_dup_rmap(e.page)
        v.set(Pte(e.kind, e.page, e.write, e.dirty, uffd_wp=e.uffd_wp), "set_ptes")


def split_huge_pmd_address(k, vma, address: int) -> None:
    """``split_huge_pmd_address()`` / ``__split_huge_pmd()``: split the PMD mapping covering
    ``address`` if there is one (VMA split, partial munmap/mprotect/mremap/madvise).
    Kernel: mm/huge_memory.c, v4.5+."""
    from .mmap import PAGE_MASK, PAGE_SHIFT
    mm = vma.vm_mm
    pt = mm.pgtable(address)
    if pt is None:
        return
    e = mm.peek_pte(address & PAGE_MASK)
    if e is None or not e.huge:
        return
    haddr = address & ~(((1 << e.huge) << PAGE_SHIFT) - 1)
    pt.ptl.lock("pmd_lock")
    __split_huge_pmd_locked(k, vma, pt, haddr)
    pt.ptl.unlock("spin_unlock")


def split_huge_pmd_range(k, vma, start: int, end: int) -> None:
    """``vma_adjust_trans_huge()``: split the PMD mappings straddling ``start`` and ``end``
    (a range that covers a PMD mapping only in part).
    Kernel: mm/huge_memory.c, v4.5+."""
    size = hpage_pmd_size(k)
    for a in (start, end):
        if a & (size - 1):
            split_huge_pmd_address(k, vma, a)


def split_folio(k, folio, lock_at=None) -> int:
    """``split_folio()`` / ``split_huge_page_to_list_to_order()`` -> ``__folio_split()`` of a
    PTE-mapped (or unmapped) large folio into order-0 folios.  Each new folio keeps its page's
    mapcount and one reference per mapping; the references beyond the mappings (the caller's)
    go to the folio of ``lock_at`` (the head if none), which stays locked -- the other pieces are
    unlocked, and those without a mapping are freed.  A device-private folio announces every new
    folio to the driver (``zone_device_private_split_cb``, v6.19: 56ef39899643).  The kernel
    unmaps the folio to migration entries around the split (``unmap_folio``/``remap_page``);
    the model splits in place under the folio lock: the per-page outcome (refcount, mapcount,
    mapping, index, lock) is the kernel's.  Callers split the PMD mapping first.
    Kernel: mm/huge_memory.c, v6.19 (anon: every kernel)."""
    from ..include.mm_types import PG_head, PG_locked, PG_zd_free
    order = folio.order
    if not order:
        return 0
    lock_at = (lock_at or folio)
    mapping = folio.mapping.peek()
    index = folio.index.peek()
    locked = folio.flags.peek(PG_locked)
    dev = k.is_device_private_page(folio)
    total = folio._refcount.peek()
    maps = {pfn: k.memmap[pfn]._mapcount.peek() + 1 for pfn in range(folio.pfn, folio.pfn + (1 << order))}
    extra = total - sum(maps.values())
    pieces = []
    for pfn in range(folio.pfn + 1, folio.pfn + (1 << order)):
        new = k.memmap[pfn]
        new.head = new
        new.order = 0
        k.set_page_field(new, "mapping", mapping, "__split_folio_to_order")
        if index is not None:
            k.set_page_field(new, "index", index + (pfn - folio.pfn), "__split_folio_to_order")
        refs = maps[pfn] + (extra if new is lock_at else 0)
        new.flags.bits &= ~(1 << PG_zd_free)          # model bookkeeping: the piece is in use
        if locked and new is lock_at:
            new.flags.bits |= 1 << PG_locked
        k.set_page_count(new, max(refs, 1), "folio_ref_unfreeze")
        pieces.append((new, refs))
        if dev:
            k.zone_device_private_split_cb(folio, new)
    folio.order = 0
    folio.flags.bits &= ~(1 << PG_head)
    tail1 = k.memmap[folio.pfn + 1]                  # new_folio->memcg_data = folio->memcg_data:
    if tail1.memcg_data is not None:                 # page[1]'s _nr_pages word (v6.15+) goes
        tail1.memcg_data.set(folio.memcg_data.peek() if folio.memcg_data is not None else 0,
                             "__split_folio_to_order")
    head_refs = maps[folio.pfn] + (extra if folio is lock_at else 0)
    k.set_page_count(folio, max(head_refs, 1), "folio_ref_unfreeze")
    k.world.event("__folio_split", folio.pfn, "order", order, 0)
    if dev:
        k.zone_device_private_split_cb(folio, None)
    if locked and folio is not lock_at:
        k.unlock_page(folio, "__folio_split")
    if not head_refs:
        k.put_page(folio)
    for new, refs in pieces:
        if not refs:                              # unmapped pieces: free_folio_and_swap_cache
            k.put_page(new)
    return 0


def _pmd_state(mm):
    st = mm.__dict__.get("_pmd_state")
    if st is None:
        st = mm._pmd_state = {"pmds": {}, "unstable": Var(False, f"mm{mm.id}.MMF_UNSTABLE"),
                              "pgtables": Var((), f"mm{mm.id} pgtables in flight"),
                              "deposited": Var((), f"mm{mm.id} deposited pgtables")}
    return st


def pmd_entry(k, mm, addr: int) -> Var:
    """The PMD entry covering ``addr`` (``pmd_offset``).  Kernel: include/linux/pgtable.h, v6.19+."""
    pmds = _pmd_state(mm)["pmds"]
    i = addr >> PMD_SHIFT
    v = pmds.get(i)
    if v is None:
        v = pmds[i] = Var(None, f"mm{mm.id}.pmd[{i:#x}]")
    return v


def pmd_lock(k, mm, pmd) -> object:
    """``pmd_lock()``: take and return the PMD's lock.  Kernel: include/linux/mm.h, v6.19+."""
    mm.page_table_lock.lock("pmd_lock")
    return mm.page_table_lock


def pte_alloc_one(k, mm):
    """``pte_alloc_one()``: a page-table page (a page of its own, refcount 1).
    Kernel: include/asm-generic/pgalloc.h, v6.19+."""
    pgtable = k.alloc_page(0, "pte_alloc_one")
    st = _pmd_state(mm)["pgtables"]
    st.set(st.get("pte_alloc_one") + (pgtable.pfn,), "pte_alloc_one")
    return pgtable


def pte_free(k, mm, pgtable) -> None:
    """``pte_free()``: give a page-table page back.  Kernel: include/asm-generic/pgalloc.h, v6.19+."""
    st = _pmd_state(mm)["pgtables"]
    st.set(tuple(p for p in st.get("pte_free") if p != pgtable.pfn), "pte_free")
    k.put_page(pgtable)


def pgtable_trans_huge_deposit(k, mm, pmd, pgtable) -> None:
    """``pgtable_trans_huge_deposit()``: the page-table page stays with the huge PMD.
    Kernel: mm/pgtable-generic.c, v6.19+."""
    st = _pmd_state(mm)
    st["pgtables"].set(tuple(p for p in st["pgtables"].get("deposit") if p != pgtable.pfn), "deposit")
    st["deposited"].set(st["deposited"].get("deposit") + (pgtable.pfn,), "pgtable_trans_huge_deposit")


def zap_deposited_table(k, mm) -> None:
    """``zap_deposited_table()`` / ``pgtable_trans_huge_withdraw()``: a PMD mapping that goes
    (zap, or split -- where the kernel reuses it as the PTE page, which the model does not keep
    as a page) gives back a page-table page deposited for it.  The model keeps one deposit list
    per mm: the PMDs that deposited are the ones ``migrate_vma_insert_huge_pmd_page`` mapped.
    Kernel: mm/huge_memory.c, v6.19."""
    st = _pmd_state(mm)["deposited"]
    dep = st.peek()
    if not dep:
        return
    st.set(dep[1:], "pgtable_trans_huge_withdraw")
    k.put_page(k.pfn_to_page(dep[0]))


def pgtables_in_flight(k, mm) -> int:
    """Page-table pages allocated and neither freed nor deposited (model query).
    Kernel: mm/pgtable-generic.c, v6.19+ (model query)."""
    return len(_pmd_state(mm)["pgtables"].peek())


def mm_set_unstable(k, mm) -> None:
    """``mm_set_unstable()`` (the OOM reaper): page faults on this mm must fail from now on.
    Kernel: include/linux/oom.h, v6.19+."""
    _pmd_state(mm)["unstable"].set(True, "mm_set_unstable")


def check_stable_address_space(k, mm) -> int:
    """``check_stable_address_space()``: -EFAULT for an mm the OOM reaper is tearing down.
    Kernel: include/linux/oom.h, v6.19+."""
    return -errno.EFAULT if _pmd_state(mm)["unstable"].get("check_stable_address_space") else 0


FUNCTIONS = (pmd_entry, pmd_lock, pte_alloc_one, pte_free, pgtable_trans_huge_deposit, zap_deposited_table,
             pgtables_in_flight,
             mm_set_unstable, check_stable_address_space)

#: anonymous THP (every kernel; installed by the base series)
THP_FUNCTIONS = (hpage_pmd_order, hpage_pmd_nr, hpage_pmd_size, huge_zero_folio, is_huge_zero_page, thp_vma_allows,
                 pmd_none_range, set_pmd_entries, do_huge_pmd_anonymous_page, pmdp_huge_get_and_clear_full,
                 __split_huge_pmd_locked,
                 split_huge_pmd_address, split_huge_pmd_range, split_folio)
