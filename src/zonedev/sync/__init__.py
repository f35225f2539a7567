"""Kernel primitives the checker intercepts, and the world they live in.

See :mod:`zonedev.sync.world` for the interface between the model and the checker.
"""

from .primitives import RELEASE, Atomic, Completion, Flags, Lock, PercpuRef, Var, WaitQueue
from .world import (ACQUIRE, READ, WRITE, Event, Scheduler, SyncObject, Violation, World,
                    WouldBlockForever, current_world, set_world, use_world)

__all__ = [
    "ACQUIRE", "READ", "RELEASE", "WRITE", "Atomic", "Completion", "Event", "Flags", "Lock",
    "PercpuRef", "Scheduler", "SyncObject", "Var", "Violation", "WaitQueue", "World",
    "WouldBlockForever", "current_world", "set_world", "use_world",
]
