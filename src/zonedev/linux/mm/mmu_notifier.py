"""MMU notifiers: ranges, interval subscriptions and their sequence (mm/mmu_notifier.c, v5.5+).

``mmu_interval_notifier`` (v5.5, 99cb252f5e68) is what dmirror uses: ``insert``/``remove``,
``mmu_interval_read_begin`` (waits while an invalidation of the mm is running, returns the
subscription's sequence), ``mmu_interval_read_retry`` / ``check_retry`` (did an invalidation
set a new sequence since), ``mmu_interval_set_seq`` (called by the driver's ``invalidate``
under its own lock).  The mm's ``invalidate_seq`` is odd while invalidations are active; it and
``active_invalidate_ranges`` change under ``subscriptions->lock`` (``mm.notifier_lock``).
Older kernels (hmm_mirror, v4.14-v5.4) had a different driver interface with the same effect
on these tests; the model uses the interval interface for every era.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ...sync import Var

MMU_NOTIFY_UNMAP = "MMU_NOTIFY_UNMAP"
MMU_NOTIFY_CLEAR = "MMU_NOTIFY_CLEAR"
MMU_NOTIFY_PROTECTION_VMA = "MMU_NOTIFY_PROTECTION_VMA"
MMU_NOTIFY_PROTECTION_PAGE = "MMU_NOTIFY_PROTECTION_PAGE"
MMU_NOTIFY_SOFT_DIRTY = "MMU_NOTIFY_SOFT_DIRTY"
MMU_NOTIFY_RELEASE = "MMU_NOTIFY_RELEASE"
MMU_NOTIFY_MIGRATE = "MMU_NOTIFY_MIGRATE"      # v5.9+
MMU_NOTIFY_EXCLUSIVE = "MMU_NOTIFY_EXCLUSIVE"  # v5.14+


@dataclass
class mmu_notifier_range:
    event: str
    mm: Any
    start: int
    end: int
    vma: Any = None
    owner: Any = None          # mmu_notifier_range_init_owner() (v5.9+)
    blockable: bool = True


class mmu_interval_notifier:
    """``struct mmu_interval_notifier``: [start, start+length) of ``mm`` and ``ops.invalidate``."""

    def __init__(self, mm, start: int, length: int, invalidate: Callable, owner_obj: Any = None) -> None:
        from .mmap import next_id
        self.id = next_id("mni")
        self.mm = mm
        self.start = start
        self.last = start + length - 1
        self.invalidate = invalidate      # ops->invalidate(mni, range, cur_seq) -> bool
        self.owner_obj = owner_obj
        self.invalidate_seq = Var(mm.invalidate_seq.peek() - 1, f"mni{self.id}.invalidate_seq")

    def _zd_key(self) -> tuple:
        return ("mni", self.id)


def mmu_interval_notifier_insert(k, mni: mmu_interval_notifier) -> int:
    """Under ``subscriptions->lock``: link the subscription.
    Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mm = mni.mm
    mm.notifier_lock.lock("spin_lock(&subscriptions->lock)")
    # a new subscription starts "not invalidating": its seq differs from the mm's
    seq = mm.invalidate_seq.get("mmu_interval_notifier_insert")
    mni.invalidate_seq.set(seq - 1 if seq & 1 == 0 else seq - 1, "mmu_interval_notifier_insert")
    subs = mm.notifier_subscriptions.get("mmu_interval_notifier_insert")
    mm.notifier_subscriptions.set(subs + (mni,), "mmu_interval_notifier_insert")
    mm.notifier_lock.unlock("spin_unlock(&subscriptions->lock)")
    return 0


def mmu_interval_notifier_remove(k, mni: mmu_interval_notifier) -> None:
    """Waits for a running invalidation of the mm to finish (as the kernel does), then unlinks.
    Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mm = mni.mm
    mm.notifier_wq.wait_event(lambda: mm.active_invalidate_ranges.peek() == 0,
                              (mm.active_invalidate_ranges,), "mmu_interval_notifier_remove")
    mm.notifier_lock.lock("spin_lock(&subscriptions->lock)")
    subs = mm.notifier_subscriptions.get("mmu_interval_notifier_remove")
    mm.notifier_subscriptions.set(tuple(s for s in subs if s is not mni), "mmu_interval_notifier_remove")
    mm.notifier_lock.unlock("spin_unlock(&subscriptions->lock)")


def mmu_interval_read_begin(k, mni: mmu_interval_notifier) -> int:
    """Wait until no invalidation is running on the mm, then return the subscription's seq.
    Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mm = mni.mm
    mm.notifier_wq.wait_event(lambda: mm.active_invalidate_ranges.peek() == 0,
                              (mm.active_invalidate_ranges,), "mmu_interval_read_begin")
    return mni.invalidate_seq.get("mmu_interval_read_begin")


def mmu_interval_read_retry(k, mni: mmu_interval_notifier, seq: int) -> bool:
    """``mmu_interval_read_retry()``: did an invalidation move the subscription's sequence since
    ``read_begin``? Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    return mni.invalidate_seq.get("mmu_interval_read_retry") != seq


mmu_interval_check_retry = mmu_interval_read_retry


def mmu_interval_set_seq(k, mni: mmu_interval_notifier, cur_seq: int) -> None:
    """``mmu_interval_set_seq()``: the driver's invalidate callback records the new sequence (under
    its own lock). Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mni.invalidate_seq.set(cur_seq, "mmu_interval_set_seq")


def mmu_notifier_invalidate_range_start(k, rng: mmu_notifier_range) -> None:
    """``mn_itree_invalidate``: mark the mm invalidating (odd seq) and call every overlapping
    subscription's ``invalidate`` with the new sequence.

    Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mm = rng.mm
    mm.notifier_lock.lock("spin_lock(&subscriptions->lock)")
    active = mm.active_invalidate_ranges.get("mn_itree_inv_start_range")
    mm.active_invalidate_ranges.set(active + 1, "mn_itree_inv_start_range")
    seq = mm.invalidate_seq.get("mn_itree_inv_start_range")
    if seq & 1 == 0:
        seq += 1
        mm.invalidate_seq.set(seq, "mn_itree_inv_start_range")
    mm.notifier_lock.unlock("spin_unlock(&subscriptions->lock)")
    for mni in mm.notifier_subscriptions.get("mn_itree_invalidate"):
        if mni.last < rng.start or mni.start >= rng.end:
            continue
        mni.invalidate(mni, rng, seq)


def mmu_notifier_invalidate_range_end(k, rng: mmu_notifier_range) -> None:
    """``mn_itree_inv_end``: the last active range makes the seq even and wakes readers.
    Kernel: mm/mmu_notifier.c, v5.5+ (99cb252f5e68)."""
    mm = rng.mm
    mm.notifier_lock.lock("spin_lock(&subscriptions->lock)")
    active = mm.active_invalidate_ranges.get("mn_itree_inv_end") - 1
    mm.active_invalidate_ranges.set(active, "mn_itree_inv_end")
    if active == 0:
        seq = mm.invalidate_seq.get("mn_itree_inv_end")
        if seq & 1:
            mm.invalidate_seq.set(seq + 1, "mn_itree_inv_end")
    mm.notifier_lock.unlock("spin_unlock(&subscriptions->lock)")
    if active == 0:
        mm.notifier_wq.wake_up("wake_up_all(&subscriptions->wq)")


FUNCTIONS = (mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin,
             mmu_interval_read_retry, mmu_interval_set_seq, mmu_notifier_invalidate_range_start,
             mmu_notifier_invalidate_range_end)
ALIASES = {"mmu_interval_check_retry": mmu_interval_read_retry}
