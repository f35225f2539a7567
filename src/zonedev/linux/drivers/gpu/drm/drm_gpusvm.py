"""DRM GPU SVM (drivers/gpu/drm/drm_gpusvm.c, v6.15+; 99624bdff867 "drm/gpusvm: Add support for
GPU Shared Virtual Memory"): the GPU side of shared virtual memory -- an MMU interval notifier
over the mirrored range, ``hmm_range_fault`` to find (or fault in) the pages the GPU maps, and
``drm_gpusvm_range_evict`` to push a range's device pages back to system memory.

Read: the posting of "drm/gpusvm: Fix MM reference leak in drm_gpusvm_range_evict" (Matthew
Brost, 14 Jul 2026; Fixes: 99624bdff867; upstream ids 847b371debf3 / adf0542659c7 in the fixes
branches): the ``drm_gpusvm_range_evict`` hunk, with its context.

``drm_gpusvm_range_evict(gpusvm, range)``: ``mmget_not_zero(mm)`` (-EFAULT if the process is
gone), ``kvmalloc_array`` of the pfn array, then ``hmm_range_fault`` with ``HMM_PFN_REQ_FAULT``
and no ``dev_private_owner`` -- every device-private page of the range faults back to RAM
through the pagemap's ``migrate_to_ram`` -- retried on -EBUSY until a timeout, then ``mmput``.
Before the fix the ``kvmalloc_array`` failure returned -ENOMEM without ``mmput``: the mm's user
count leaks and the address space is never torn down.

Driver version: ``DrmGpuSvm(..., fixes=...)``; fault injection ``fail_kvmalloc``.
"""

from __future__ import annotations

import errno

from ....mm.hmm import HMM_PFN_REQ_FAULT, hmm_range
from .....sync import RetryLoop
from ....mm.mmu_notifier import mmu_interval_notifier
from ....mm.mmap import PAGE_SIZE

FIX_MM_LEAK = "847b371debf3"      # drm/gpusvm: Fix MM reference leak in drm_gpusvm_range_evict
DRM_GPUSVM_FIXES = (FIX_MM_LEAK,)


class DrmGpuSvm:
    """``struct drm_gpusvm`` for one ``mm``, with one notifier over [start, end)."""

    def __init__(self, k, mm, start: int, end: int, fixes=DRM_GPUSVM_FIXES) -> None:
        self.k = k
        self.mm = mm
        self.start, self.end = start, end
        self.fixes = set(fixes)
        self.fail_kvmalloc = False

        def invalidate(mni, rng, cur_seq):
            k.mmu_interval_set_seq(mni, cur_seq)     # the GPU unmaps the range (not modelled)
            return True
        self.notifier = mmu_interval_notifier(mm, start, end - start, invalidate, self)

    def init(self) -> None:
        """``drm_gpusvm_init`` + the range's ``mmu_interval_notifier_insert``."""
        self.k.mmu_interval_notifier_insert(self.notifier)

    def fini(self) -> None:
        self.k.mmu_interval_notifier_remove(self.notifier)


def drm_gpusvm_range_evict(k, gpusvm: DrmGpuSvm, start: int, end: int) -> int:
    """``drm_gpusvm_range_evict()``: fault [start, end) back to system memory."""
    mm = gpusvm.mm
    if not k.mmget_not_zero(mm):
        return -errno.EFAULT
    if gpusvm.fail_kvmalloc:                              # pfns = kvmalloc_array(...)
        if FIX_MM_LEAK in gpusvm.fixes:
            k.mmput(mm)
        return -errno.ENOMEM
    npages = (end - start) // PAGE_SIZE
    rng = hmm_range(notifier=gpusvm.notifier, start=start, end=end, hmm_pfns=[(0, None)] * npages,
                    default_flags=HMM_PFN_REQ_FAULT, dev_private_owner=None)
    # while (!time_after(jiffies, timeout)): the model retries fairly instead of timing out
    # (RetryLoop: again once the notifier sequence changed, which every -EBUSY implies)
    loop = RetryLoop("drm_gpusvm_range_evict: retry (-EBUSY)")
    while True:
        rng.notifier_seq = k.mmu_interval_read_begin(gpusvm.notifier)
        mm.mmap_lock.down_read("mmap_read_lock")
        err = k.hmm_range_fault(rng)
        mm.mmap_lock.up_read("mmap_read_unlock")
        if err != -errno.EBUSY:
            break
        loop.retry([gpusvm.notifier.invalidate_seq])
    k.mmput(mm)
    return err


__all__ = ["DRM_GPUSVM_FIXES", "DrmGpuSvm", "FIX_MM_LEAK", "drm_gpusvm_range_evict"]
