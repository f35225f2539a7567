"""Kernel primitives the checker intercepts, and the world they live in.

See :mod:`zonedev.sync.world` for the interface between the model and the checker.
"""

from .primitives import RELEASE, Atomic, Completion, Flags, Lock, PercpuRef, Var, WaitQueue
from .cpu import Cpu, Work, Worker, flush_work, lru_add_drain_all, queue_work_on
from .rcu import Rcu
from .retry import RETRY_LABELS, RetryLoop
from .world import (ACQUIRE, IDLE_LABELS, READ, WRITE, Event, Scheduler, SyncObject, Violation, World,
                    WouldBlockForever, current_world, set_world, use_world)

__all__ = [
    "ACQUIRE", "Cpu", "IDLE_LABELS", "Work", "Worker", "flush_work", "lru_add_drain_all", "queue_work_on", "READ", "RETRY_LABELS", "Rcu", "RetryLoop", "RELEASE", "WRITE", "Atomic", "Completion", "Event", "Flags", "Lock",
    "PercpuRef", "Scheduler", "SyncObject", "Var", "Violation", "WaitQueue", "World",
    "WouldBlockForever", "current_world", "set_world", "use_world",
]
