"""``hmm_range_fault()`` (mm/hmm.c, the v5.8+ form with ``dev_private_owner``, v5.7 d28c2c9a4873).

Walk [start, end) of the mm and fill ``hmm_pfns`` with (flags, page) pairs:

* a VMA without VM_READ (or VM_IO/VM_PFNMAP) gives HMM_PFN_ERROR entries, or -EFAULT when the
  caller asked to fault (``hmm_vma_walk_test``); an address with no VMA likewise
  (``hmm_vma_walk_hole``);
* ``pte_none``: fault if requested, else 0 (not valid);
* a device-private entry whose pgmap owner is ``dev_private_owner``: VALID (+WRITE) with the
  device page, no fault; any other device-private entry, device-exclusive entry: fault if
  requested, else 0; migration entry: wait, -EBUSY (restart);
* present: VALID (+WRITE if pte_write); fault when WRITE is required and missing.

A fault (``hmm_vma_fault``) calls ``handle_mm_fault`` for each address of the run that needs
it (-EPERM for a write to a VMA without VM_WRITE, -EFAULT on VM_FAULT_ERROR) and returns -EBUSY
so the walk restarts; every restart first checks ``mmu_interval_check_retry`` and returns
-EBUSY to the caller if the range was invalidated.  No page references are taken: the result
is valid only until the notifier sequence changes.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from ...sync import RetryLoop
from .memory import FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_FAULT_ERROR
from .mmap import (PAGE_SHIFT, PAGE_SIZE, PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_MIGRATION,
                   PTE_PRESENT, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, find_vma, walk_inputs)

HMM_PFN_VALID = 1 << 63
HMM_PFN_WRITE = 1 << 62
HMM_PFN_ERROR = 1 << 61
HMM_PFN_REQ_FAULT = HMM_PFN_VALID
HMM_PFN_REQ_WRITE = HMM_PFN_WRITE

HMM_NEED_FAULT = 1
HMM_NEED_WRITE_FAULT = 2


@dataclass
class hmm_range:
    notifier: Any = None
    notifier_seq: int = 0
    start: int = 0
    end: int = 0
    hmm_pfns: list = field(default_factory=list)   # (flags, page) per page
    default_flags: int = 0
    pfn_flags_mask: int = 0
    dev_private_owner: Any = None


def hmm_pfn_to_page(entry):
    return entry[1]


def _need_fault(rng: hmm_range, cpu_flags: int) -> int:
    req = rng.default_flags          # pfn_flags_mask is 0 for every caller modelled
    if not req & HMM_PFN_REQ_FAULT:
        return 0
    need = 0
    if not cpu_flags & HMM_PFN_VALID:
        need = HMM_NEED_FAULT
    if req & HMM_PFN_REQ_WRITE and not cpu_flags & HMM_PFN_WRITE:
        need |= HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT
    return need


class _Busy(Exception):
    pass


def hmm_vma_fault(k, vma, addrs: list, need: int) -> int:
    """``hmm_vma_fault()``: fault each address, then -EBUSY (walk again).  Kernel: mm/hmm.c, v5.8+."""
    flags = FAULT_FLAG_REMOTE
    if need & HMM_NEED_WRITE_FAULT:
        if not vma.vm_flags & VM_WRITE:
            return -errno.EPERM
        flags |= FAULT_FLAG_WRITE
    for addr in addrs:
        if k.handle_mm_fault(vma, addr, flags) & VM_FAULT_ERROR:
            return -errno.EFAULT
    return -errno.EBUSY


def hmm_walk(k, rng: hmm_range, start: int) -> int:
    """One ``walk_page_range`` from ``start``; returns 0, -EBUSY or an error.  Kernel: mm/hmm.c, v5.8+."""
    mm = rng.notifier.mm
    npages = (rng.end - rng.start) >> PAGE_SHIFT
    addr = start
    while addr < rng.end:
        i = (addr - rng.start) >> PAGE_SHIFT
        vma = find_vma(mm, addr, "walk_page_range")
        if vma is None or vma.vm_start > addr:                # hmm_vma_walk_hole, no vma
            hole_end = rng.end if vma is None else min(rng.end, vma.vm_start)
            if _need_fault(rng, 0):
                return -errno.EFAULT
            for a in range(addr, hole_end, PAGE_SIZE):
                rng.hmm_pfns[(a - rng.start) >> PAGE_SHIFT] = (HMM_PFN_ERROR, None)
            addr = hole_end
            continue
        end = min(rng.end, vma.vm_end)
        if vma.vm_flags & (VM_IO | VM_PFNMAP) or not vma.vm_flags & VM_READ:   # hmm_vma_walk_test
            if _need_fault(rng, 0):
                return -errno.EFAULT
            for a in range(addr, end, PAGE_SIZE):
                rng.hmm_pfns[(a - rng.start) >> PAGE_SHIFT] = (HMM_PFN_ERROR, None)
            addr = end
            continue
        while addr < end:
            i = (addr - rng.start) >> PAGE_SHIFT
            pt = mm.pgtable(addr)
            pte = pt.pte(addr).get("ptep_get") if pt is not None else None   # hmm walks locklessly
            if pte is None:                                   # hmm_vma_handle_pte: pte_none
                need = _need_fault(rng, 0)
                if need:
                    return k.hmm_vma_fault(vma, [addr], need)
                rng.hmm_pfns[i] = (0, None)
            elif pte.kind != PTE_PRESENT:
                if pte.kind == PTE_DEVICE_PRIVATE and pte.page.pgmap.owner is rng.dev_private_owner:
                    rng.hmm_pfns[i] = (HMM_PFN_VALID | (HMM_PFN_WRITE if pte.write else 0), pte.page)
                else:
                    need = _need_fault(rng, 0)
                    if not need:
                        rng.hmm_pfns[i] = (0, None)
                    elif pte.kind in (PTE_DEVICE_PRIVATE, PTE_DEVICE_EXCLUSIVE):
                        return k.hmm_vma_fault(vma, [addr], need)
                    elif pte.kind == PTE_MIGRATION:
                        from .memory import vm_fault
                        k.migration_entry_wait(vm_fault(vma, addr, 0, orig_pte=pte))
                        return -errno.EBUSY
                    else:
                        return -errno.EFAULT
            else:
                cpu = HMM_PFN_VALID | (HMM_PFN_WRITE if pte.write else 0)
                need = _need_fault(rng, cpu)
                if need:
                    return k.hmm_vma_fault(vma, [addr], need)
                rng.hmm_pfns[i] = (cpu, pte.page)
            addr += PAGE_SIZE
    return 0


def hmm_range_fault(k, rng: hmm_range) -> int:
    """Returns 0 or a negative errno (-EBUSY: the caller must retry with a new sequence).
    Kernel: mm/hmm.c, v5.8+."""
    npages = (rng.end - rng.start) >> PAGE_SHIFT
    if len(rng.hmm_pfns) < npages:
        rng.hmm_pfns.extend([(0, None)] * (npages - len(rng.hmm_pfns)))
    loop = RetryLoop("hmm_range_fault: walk again (-EBUSY)")
    while True:
        if k.mmu_interval_check_retry(rng.notifier, rng.notifier_seq):
            return -errno.EBUSY
        ret = k.hmm_walk(rng, rng.start)
        if ret != -errno.EBUSY:
            return ret
        # the walk faulted (or waited on a migration entry) and starts again: fairly, once the
        # notifier sequence or something the walk looked at changed
        loop.retry([rng.notifier.invalidate_seq] + walk_inputs(rng.notifier.mm, rng.start, rng.end))


FUNCTIONS = (hmm_vma_fault, hmm_walk, hmm_range_fault)
