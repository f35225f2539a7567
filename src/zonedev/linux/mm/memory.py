"""Faults, zap and fork copy (mm/memory.c; arch/x86/mm/fault.c for the user fault entry).

* ``handle_mm_fault`` -> ``handle_pte_fault``: ``do_anonymous_page`` (zero page on read,
  new zeroed page on write), ``do_fault`` (shmem: ``do_read_fault``/``do_shared_fault``/
  ``do_cow_fault``), ``do_wp_page`` (reuse when the page has no other reference -- the v5.9+
  rule, 09854ba94c6a -- else ``wp_page_copy``), ``do_swap_page`` for the non-present entries:
  migration entries wait for the page lock, device-exclusive entries are restored
  (``remove_device_exclusive_entry``, v5.14+), device-private entries call the driver's
  ``migrate_to_ram``.
* ``do_swap_page`` here is the form **before 16ce101db85d** (v4.14-v6.0): the device-private
  branch calls ``page->pgmap->ops->migrate_to_ram(vmf)`` holding no reference on the page and
  without re-checking the PTE under the PTL (v4.14-v5.2 called ``pgmap->page_fault``; same
  race).  ``patches/c_16ce101db85d.py`` installs the fixed form.
* ``unmap_vma_range`` = ``unmap_page_range`` -> ``zap_pte_range``: present pages lose their rmap
  under the PTL and their reference after it (the mmu_gather batch); device-private and
  device-exclusive entries lose rmap and reference under the PTL.
* ``copy_page_range`` (fork, ``copy_pte_range``): present pages and device-private entries are
  duplicated (reference + mapcount), COW mappings write-protect both sides; a device-exclusive
  entry is first restored in the parent (``try_restore_exclusive_pte``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .mmap import (PAGE_MASK, PAGE_SIZE, PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_MIGRATION,
                   PTE_PRESENT, VM_MIXEDMAP, VM_READ, VM_SHARED, VM_WRITE, Pte, find_vma,
                   is_cow_mapping, vma_is_anonymous, walk_inputs)
from ...sync import RetryLoop
from .mmu_notifier import (MMU_NOTIFY_CLEAR, MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFY_PROTECTION_PAGE,
                           MMU_NOTIFY_UNMAP, mmu_notifier_range)

# include/linux/mm_types.h vm_fault_t
VM_FAULT_OOM = 0x000001
VM_FAULT_SIGBUS = 0x000002
VM_FAULT_MAJOR = 0x000004
VM_FAULT_SIGSEGV = 0x000040
VM_FAULT_NOPAGE = 0x000100
VM_FAULT_RETRY = 0x000400
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV

FAULT_FLAG_WRITE = 0x01
FAULT_FLAG_REMOTE = 0x80


class SegmentationFault(Exception):
    """The user access got SIGSEGV/SIGBUS (the process would die)."""


@dataclass
class vm_fault:
    vma: Any
    address: int
    flags: int
    orig_pte: Any = None
    page: Any = None
    pt: Any = None           # the PageTable (its .ptl is vmf->ptl)
    ptev: Any = None         # the PTE Var (vmf->pte)
    pmd: bool = False        # the fault came through a PMD entry (vmf->pte == NULL), v6.19

    @property
    def ptl(self):
        return self.pt.ptl


def zero_page(k):
    """``ZERO_PAGE(0)``: one per kernel, never counted in rmap (vm_normal_page is NULL).
    Kernel: include/linux/pgtable.h, v4.5+."""
    zp = k.__dict__.get("_zero_page")
    if zp is None:
        zp = k.alloc_page()
        k._zero_page = zp
    return zp


def is_zero_page(k, page) -> bool:
    """``is_zero_page()``: the shared zero page. Kernel: include/linux/pgtable.h, v4.5+."""
    return page is not None and page is k.__dict__.get("_zero_page")


def vm_normal_page(k, vma, pte: Pte):
    """``vm_normal_page()``: the struct page behind a present PTE; NULL for the zero page and
    for a special devmap (DAX pfn) PTE.

    Kernel: mm/memory.c, v5.9+."""
    if pte is None or pte.kind != PTE_PRESENT or pte.devmap or is_zero_page(k, pte.page) or \
            k.is_huge_zero_page(pte.page):
        return None
    return pte.page


def handle_mm_fault(k, vma, address: int, flags: int) -> int:
    """``handle_mm_fault()`` -> ``handle_pte_fault()``; mmap_lock held for read.
    Kernel: mm/memory.c, v5.9+."""
    address &= PAGE_MASK
    mm = vma.vm_mm
    pt, ptev = mm.pte(address, alloc=True)       # __pte_alloc under mm->page_table_lock
    vmf = vm_fault(vma, address, flags, pt=pt, ptev=ptev)
    entry = ptev.get("handle_pte_fault")
    vmf.orig_pte = entry
    haddr = address & ~(k.hpage_pmd_size() - 1)
    if entry is None and k.thp_vma_allows(vma, haddr) and k.pmd_none_range(pt, haddr):
        return k.do_huge_pmd_anonymous_page(vmf)          # __handle_mm_fault: pmd_none + THP allowed
    if entry is not None and entry.huge and not entry.devmap:
        if entry.kind == PTE_DEVICE_PRIVATE:
            return k.do_huge_pmd_device_private(vmf)       # v6.19: a device-private PMD
        if entry.kind == PTE_PRESENT and flags & FAULT_FLAG_WRITE and not entry.write:
            # do_huge_pmd_wp_page: the huge zero folio (and, in the model, a shared THP) is split
            # and the write handled on the PTE (the kernel's VM_FAULT_FALLBACK)
            k.split_huge_pmd_address(vma, address)
            entry = ptev.get("handle_pte_fault")
            vmf.orig_pte = entry
    if entry is None:
        if vma_is_anonymous(vma):
            return k.do_anonymous_page(vmf)
        return k.do_fault(vmf)
    if entry.kind != PTE_PRESENT:
        return k.do_swap_page(vmf)
    if flags & FAULT_FLAG_WRITE and not entry.write:
        return k.do_wp_page(vmf)
    return 0


def do_anonymous_page(k, vmf: vm_fault) -> int:
    """``do_anonymous_page()``: a fault on an empty anon PTE: the zero page on read, a new zeroed
    page on write. Kernel: mm/memory.c, v5.9+."""
    vma = vmf.vma
    if vma.vm_flags & VM_SHARED:
        return VM_FAULT_SIGBUS
    if not vmf.flags & FAULT_FLAG_WRITE:
        zp = k.zero_page()
        vmf.ptl.lock("pte_offset_map_lock")
        if vmf.ptev.get("pte_none") is None:
            vmf.ptev.set(Pte(PTE_PRESENT, zp, False), "set_pte_at(zero page)")
        vmf.ptl.unlock("pte_unmap_unlock")
        return 0
    page = k.alloc_page()                       # alloc_zeroed_user_highpage_movable
    page.data.set(None, "clear_user_highpage")
    vmf.ptl.lock("pte_offset_map_lock")
    if vmf.ptev.get("pte_none") is not None:
        vmf.ptl.unlock("pte_unmap_unlock")
        k.put_page(page)                        # release: somebody else mapped it
        return 0
    k.page_add_new_anon_rmap(page, vma, vmf.address)
    vmf.ptev.set(Pte(PTE_PRESENT, page, bool(vma.vm_flags & VM_WRITE), True), "set_pte_at")
    vmf.ptl.unlock("pte_unmap_unlock")
    return 0


def do_fault(k, vmf: vm_fault) -> int:
    """``do_fault()``: file-backed (shmem) VMAs; a VMA without ->fault (the dmirror mixedmap
    mapping) gets SIGBUS.

    Kernel: mm/memory.c, v5.9+."""
    vma = vmf.vma
    fault = getattr(vma.vm_file, "fault", None)
    if fault is not None:                 # the file's own ->fault (a DAX file: dax_iomap_fault)
        return fault(k, vmf)
    if vma.vm_ops != "shmem":
        return VM_FAULT_SIGBUS
    k.shmem_fault(vmf)
    page = vmf.page
    write = bool(vmf.flags & FAULT_FLAG_WRITE)
    if write and not vma.vm_flags & VM_SHARED:           # do_cow_fault
        new = k.alloc_page()
        new.data.set(page.data.get("copy_user_highpage"), "copy_user_highpage")
        k.put_page(page)
        vmf.ptl.lock("pte_offset_map_lock")
        if vmf.ptev.get("pte_none") is not None:
            vmf.ptl.unlock("pte_unmap_unlock")
            k.put_page(new)
            return 0
        k.page_add_new_anon_rmap(new, vma, vmf.address)
        vmf.ptev.set(Pte(PTE_PRESENT, new, True, True), "set_pte_at")
        vmf.ptl.unlock("pte_unmap_unlock")
        return 0
    # do_read_fault / do_shared_fault -> finish_fault -> do_set_pte.  shmem needs no write
    # notification, so a shared writable mapping maps writable even on a read fault.
    writable = bool(vma.vm_flags & VM_SHARED and vma.vm_flags & VM_WRITE)
    vmf.ptl.lock("pte_offset_map_lock")
    if vmf.ptev.get("pte_none") is not None:
        vmf.ptl.unlock("pte_unmap_unlock")
        k.put_page(page)
        return 0
    k.page_add_file_rmap(page, vma)
    vmf.ptev.set(Pte(PTE_PRESENT, page, writable, write), "set_pte_at")
    vmf.ptl.unlock("pte_unmap_unlock")
    return 0


def do_wp_page(k, vmf: vm_fault) -> int:
    """``do_wp_page()``: write fault on a present read-only PTE.  Kernel: mm/memory.c, v5.9+."""
    vma = vmf.vma
    pte = vmf.orig_pte
    page = k.vm_normal_page(vma, pte)
    fault = getattr(vma.vm_file, "fault", None)
    if vma.vm_flags & VM_SHARED and fault is not None:
        return fault(k, vmf)              # wp_pfn_shared / wp_page_shared -> ->pfn_mkwrite (DAX)
    if vma.vm_flags & VM_SHARED and page is not None:
        return wp_page_reuse(k, vmf)
    if page is not None and k.PageAnon(page):
        # v5.9+ (09854ba94c6a "mm: do_wp_page() simplification"): reuse only when ours is the
        # only reference.
        if k.trylock_page(page):
            only = page._refcount.read("page_count") == 1
            k.unlock_page(page)
            if only:
                return wp_page_reuse(k, vmf)
    if page is not None:
        k.get_page(page)
    return k.wp_page_copy(vmf, page)


def wp_page_reuse(k, vmf: vm_fault) -> int:
    vmf.ptl.lock("pte_offset_map_lock")
    cur = vmf.ptev.get("pte_same")
    if vmf.orig_pte.same(cur):
        vmf.ptev.set(Pte(PTE_PRESENT, cur.page, True, True), "wp_page_reuse")
    vmf.ptl.unlock("pte_unmap_unlock")
    return 0


def wp_page_copy(k, vmf: vm_fault, old) -> int:
    """``wp_page_copy()``: copy into a new anon page (from the zero page: a zeroed page; from a
    device-coherent page: straight from device memory), switch the PTE, drop the old page's
    rmap and reference, then the reference ``do_wp_page`` took.

    Kernel: mm/memory.c, v5.9+."""
    vma = vmf.vma
    new = k.alloc_page()
    new.data.set(old.data.get("cow_user_page") if old is not None else None, "cow_user_page")
    rng = mmu_notifier_range(MMU_NOTIFY_CLEAR, vma.vm_mm, vmf.address, vmf.address + PAGE_SIZE, vma=vma)
    k.mmu_notifier_invalidate_range_start(rng)
    vmf.ptl.lock("pte_offset_map_lock")
    cur = vmf.ptev.get("pte_same")
    copied = False
    if vmf.orig_pte.same(cur):
        k.page_add_new_anon_rmap(new, vma, vmf.address)
        vmf.ptev.set(Pte(PTE_PRESENT, new, True, True), "set_pte_at_notify")
        if old is not None:
            k.page_remove_rmap(old, vma)
        copied = True
    vmf.ptl.unlock("pte_unmap_unlock")
    if not copied:
        k.put_page(new)
    elif old is not None:
        k.put_page(old)            # the old mapping's reference ("Free the old page")
    k.mmu_notifier_invalidate_range_end(rng)
    if old is not None:
        k.put_page(old)            # do_wp_page's reference
    return 0


def migration_entry_wait(k, vmf: vm_fault) -> int:
    """``migration_entry_wait()``: sleep until the migrating page is unlocked, then refault.
    Kernel: mm/migrate.c, v4.5+."""
    page = vmf.orig_pte.page
    from ..include.mm_types import PG_locked
    from ...sync import READ
    flags = page.flags
    flags.world.point(flags, READ, "migration_entry_wait_on_locked",
                      lambda: not flags.bits >> PG_locked & 1)
    return 0


def remove_device_exclusive_entry(k, vmf: vm_fault) -> int:
    """``remove_device_exclusive_entry()`` (mm/memory.c, v5.14+): lock the page, invalidate the
    address with MMU_NOTIFY_EXCLUSIVE (so the device drops its atomic mapping) and restore the
    present PTE."""
    page = vmf.orig_pte.page
    vma = vmf.vma
    k.get_page(page)
    k.lock_page(page)
    rng = mmu_notifier_range(MMU_NOTIFY_EXCLUSIVE, vma.vm_mm, vmf.address, vmf.address + PAGE_SIZE,
                             vma=vma, owner=None)
    k.mmu_notifier_invalidate_range_start(rng)
    vmf.ptl.lock("pte_offset_map_lock")
    cur = vmf.ptev.get("pte_same")
    if vmf.orig_pte.same(cur):
        k.restore_exclusive_pte(vma, page, vmf.address, vmf.ptev, cur)
    vmf.ptl.unlock("pte_unmap_unlock")
    k.unlock_page(page)
    k.put_page(page)
    k.mmu_notifier_invalidate_range_end(rng)
    return 0


def do_swap_page_nondevice(k, vmf: vm_fault) -> int | None:
    """The parts of ``do_swap_page`` every era shares: migration and device-exclusive entries.
    Returns None for a device-private entry (the era's own branch handles it).

    Kernel: mm/memory.c, v5.9+."""
    entry = vmf.orig_pte
    if entry.kind == PTE_MIGRATION:
        return k.migration_entry_wait(vmf)
    if entry.kind == PTE_DEVICE_EXCLUSIVE:
        return k.remove_device_exclusive_entry(vmf)
    if entry.kind == PTE_DEVICE_PRIVATE:
        return None
    return VM_FAULT_SIGBUS


def do_swap_page(k, vmf: vm_fault) -> int:
    """``do_swap_page()`` before 16ce101db85d (v4.14-v6.0): the device-private branch calls
    ``migrate_to_ram`` with **no page reference** and no PTE re-check under the PTL, so a
    concurrent migration can free the page (and its ``zone_device_data``) under the callback
    (CVE-2022-3523, failure F9).

    Kernel: mm/memory.c, v5.9+."""
    ret = k.do_swap_page_nondevice(vmf)
    if ret is not None:
        return ret
    vmf.page = vmf.orig_pte.page
    k.zd_check_pgmap_held(vmf.page.pgmap, "migrate_to_ram", vmf.page.pfn)
    return vmf.page.pgmap.ops.migrate_to_ram(vmf)


def vm_insert_page(k, vma, addr: int, page) -> int:
    """``vm_insert_page()`` (VM_MIXEDMAP): map a driver page read-only in a private mapping.
    Kernel: mm/memory.c, v5.9+."""
    mm = vma.vm_mm
    pt, v = mm.pte(addr, alloc=True)
    k.get_page(page)
    pt.ptl.lock("insert_page")
    k.page_add_file_rmap(page, vma)
    v.set(Pte(PTE_PRESENT, page, bool(vma.vm_flags & VM_SHARED and vma.vm_flags & VM_WRITE)), "set_pte_at")
    pt.ptl.unlock("insert_page")
    return 0


def unmap_vma_range(k, vma, start: int, end: int) -> None:
    """``unmap_page_range()`` -> ``zap_pte_range()`` over [start, end) of ``vma``, inside an
    MMU_NOTIFY_UNMAP invalidation.

    Kernel: mm/memory.c, v5.9+."""
    mm = vma.vm_mm
    rng = mmu_notifier_range(MMU_NOTIFY_UNMAP, mm, start, end, vma=vma)
    k.mmu_notifier_invalidate_range_start(rng)
    batch = []
    for addr in range(start, end, PAGE_SIZE):
        pt = mm.pgtable(addr)
        if pt is None or ((addr >> 12) & 511) not in pt.entries:
            continue
        pt.ptl.lock("zap_pte_range")
        v = pt.pte(addr)
        pte = v.get("ptep_get_and_clear_full")
        if pte is not None and pte.huge and not pte.devmap and pte.page is pte.page.head:
            k.pmdp_huge_get_and_clear_full(vma, addr, pte)          # zap_huge_pmd
            if k.has("zap_deposited_table"):
                k.zap_deposited_table(mm)
        if pte is not None:
            v.set(None, "ptep_get_and_clear_full")
            if pte.kind == PTE_PRESENT:
                page = k.vm_normal_page(vma, pte)
                if page is not None and pte.huge and page is not page.head:
                    page = None                    # a tail of a PMD/PUD mapping: the head's entry holds it
                if page is not None:
                    k.page_remove_rmap(page, vma)
                    batch.append(page)             # __tlb_remove_page
            elif pte.huge and pte.page is not pte.page.head:
                pass                               # zap_huge_pmd (v6.19: device-private too): the head's entry
            elif pte.kind in (PTE_DEVICE_PRIVATE, PTE_DEVICE_EXCLUSIVE):
                k.page_remove_rmap(pte.page, vma)
                k.put_page(pte.page)
        pt.ptl.unlock("zap_pte_range")
    for page in batch:                             # tlb_finish_mmu -> free_pages_and_swap_cache
        k.put_page(page)
    k.mmu_notifier_invalidate_range_end(rng)


def copy_page_range(k, dst_vma, src_vma) -> None:
    """``copy_page_range()`` -> ``copy_pte_range()`` (fork).  Only VMAs with anonymous pages
    (an anon_vma) or VM_MIXEDMAP are copied; shared file/shmem VMAs refault in the child.

    Kernel: mm/memory.c, v5.9+."""
    if not (src_vma.vm_flags & VM_MIXEDMAP) and src_vma.anon_vma is None:
        return
    src_mm, dst_mm = src_vma.vm_mm, dst_vma.vm_mm
    cow = is_cow_mapping(src_vma.vm_flags)
    rng = None
    if cow:
        rng = mmu_notifier_range(MMU_NOTIFY_PROTECTION_PAGE, src_mm, src_vma.vm_start, src_vma.vm_end,
                                 vma=src_vma)
        k.mmu_notifier_invalidate_range_start(rng)
    for addr in range(src_vma.vm_start, src_vma.vm_end, PAGE_SIZE):
        spt = src_mm.pgtable(addr)
        if spt is None or ((addr >> 12) & 511) not in spt.entries:
            continue
        dpt, dv = dst_mm.pte(addr, alloc=True)
        dpt.ptl.lock("pte_alloc_map_lock")
        spt.ptl.lock("spin_lock_nested(src_ptl)")
        sv = spt.pte(addr)
        pte = sv.get("ptep_get")
        if pte is not None and pte.kind == PTE_DEVICE_EXCLUSIVE:
            # copy_nonpresent_pte -> -EBUSY -> try_restore_exclusive_pte, then copy as present
            k.restore_exclusive_pte(src_vma, pte.page, addr, sv, pte)
            pte = sv.get("ptep_get")
        # copy_huge_pmd (v6.19 368076f52ebe: device-private PMDs too): only the head's entry
        # takes the folio reference and mapcount; every entry of the range is write-protected
        tail = pte is not None and pte.huge and pte.page is not pte.page.head
        if pte is not None:
            if pte.kind == PTE_PRESENT:
                page = k.vm_normal_page(src_vma, pte)
                if page is not None and not tail:
                    k.get_page(page)
                    k.page_dup_rmap(page)
                if cow and pte.write:
                    pte = Pte(PTE_PRESENT, pte.page, False, pte.dirty, huge=pte.huge)
                    sv.set(pte, "ptep_set_wrprotect")
                dv.set(pte, "set_pte_at")
            elif pte.kind == PTE_DEVICE_PRIVATE:
                if not tail:
                    k.get_page(pte.page)
                    k.page_dup_rmap(pte.page)
                if cow and pte.write:          # "COW mappings require pages in both parent and
                    pte = Pte(PTE_DEVICE_PRIVATE, pte.page, False, huge=pte.huge)   # child to be set to read"
                    sv.set(pte, "set_pte_at(make_readable_device_private_entry)")
                dv.set(pte, "set_pte_at")
            elif pte.kind == PTE_MIGRATION:
                if cow and pte.write:
                    pte = Pte(PTE_MIGRATION, pte.page, False, huge=pte.huge)
                    sv.set(pte, "set_pte_at(make_readable_migration_entry)")
                dv.set(pte, "set_pte_at")
        spt.ptl.unlock("spin_unlock(src_ptl)")
        dpt.ptl.unlock("pte_unmap_unlock")
    if rng is not None:
        k.mmu_notifier_invalidate_range_end(rng)


def do_user_addr_fault(k, mm, address: int, write: bool) -> None:
    """``do_user_addr_fault()`` (arch/x86/mm/fault.c): mmap_lock for read, find the VMA, check
    access, ``handle_mm_fault``; SIGSEGV/SIGBUS raise :class:`SegmentationFault`.

    Kernel: arch/x86/mm/fault.c, v5.1+ (__do_page_fault before)."""
    mm.mmap_lock.down_read("lock_mm_and_find_vma")
    vma = find_vma(mm, address)
    bad = vma is None or vma.vm_start > address or \
        (write and not vma.vm_flags & VM_WRITE) or (not write and not vma.vm_flags & VM_READ)
    if bad:
        mm.mmap_lock.up_read("mmap_read_unlock")
        raise SegmentationFault(f"SIGSEGV at {address:#x}")
    ret = k.handle_mm_fault(vma, address, FAULT_FLAG_WRITE if write else 0)
    mm.mmap_lock.up_read("mmap_read_unlock")
    if ret & VM_FAULT_ERROR:
        raise SegmentationFault(f"{'SIGBUS' if ret & VM_FAULT_SIGBUS else 'SIGSEGV'} at {address:#x} (fault {ret:#x})")


def cpu_access(k, mm, address: int, write: bool):
    """A user load/store: walk the page table as the MMU does (no locks); fault and retry
    until the PTE allows the access (arch/x86/mm/fault.c, v5.1+: a fault that did not fix the
    PTE -- VM_FAULT_RETRY, a lost race, a failed trylock -- returns to user space and the access
    faults again).  The retry is fair (``RetryLoop``): it goes round again once the VMAs, the
    PTE or its page changed; if nothing can change it the checker reports a livelock.
    Returns the page the access lands on."""
    address &= PAGE_MASK
    loop = RetryLoop("cpu access: fault and retry")
    while True:
        vma = find_vma(mm, address, "mmu walk")
        ok_vma = vma is not None and vma.vm_start <= address and \
            vma.vm_flags & (VM_WRITE if write else VM_READ)
        if ok_vma:
            pt = mm.pgtable(address)
            pte = pt.pte(address).get("mmu walk") if pt is not None else None
            if pte is not None and pte.kind == PTE_PRESENT and (pte.write or not write):
                return pte.page
        k.do_user_addr_fault(mm, address, write)
        loop.retry(walk_inputs(mm, address, address + PAGE_SIZE))


FUNCTIONS = (zero_page, is_zero_page, vm_normal_page, handle_mm_fault, do_anonymous_page, do_fault,
             do_wp_page, wp_page_copy, migration_entry_wait, remove_device_exclusive_entry,
             do_swap_page_nondevice, do_swap_page, vm_insert_page, unmap_vma_range, copy_page_range,
             do_user_addr_fault, cpu_access)
