"""The kernel primitives the checker intercepts.

Each method performs exactly one shared access, announced to the world first (see
``zonedev.sync.world``), so a kernel function written with them reads as ordinary sequential
code and can still be interleaved with others at every access that matters.  A compound kernel
operation that is atomic in the kernel (``page_ref_dec_and_test``, ``percpu_ref_tryget_live``) is
one method here; one that is not (a plain read followed by a plain write) is two calls, and the
checker may run other threads in between.

Kernel sources: include/linux/atomic.h (atomic_t), include/linux/bitops.h and
include/asm-generic/bitops (page-flag bitops), kernel/locking (spinlock, mutex),
kernel/sched/completion.c, kernel/sched/wait_bit.c (wait_var_event / wake_up_var),
lib/percpu-refcount.c (percpu_ref).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .world import ACQUIRE, READ, WRITE, SyncObject

RELEASE = "rel"   # giving a lock back: ordered after its acquire, independent of other accesses


#: names of atomics that are reference counts the checker's ledger follows (mm_users, mm_count,
#: a kref'ed ``refcount``); page refcounts log their own events (include/page_ref)
LEDGER_SUFFIXES = ("mm_users", "mm_count", ".refcount", ".kref")


class Atomic(SyncObject):
    """``atomic_t``: every method is one indivisible access.

    An atomic named like a reference count (``LEDGER_SUFFIXES``) logs each change as an event
    when events are recorded (counterexample replays only), for the reference ledger."""

    __slots__ = ("value",)

    def _log(self, label: str, old: int) -> None:
        w = self.world
        if w.record_events and old != self.value and self.name.endswith(LEDGER_SUFFIXES):
            w.event(label, None, self.name, old, self.value)

    def __init__(self, value: int = 0, name: str = "atomic") -> None:
        super().__init__(name)
        self.value = value

    def _zd_state(self) -> int:
        return self.value

    def read(self, label: str = "atomic_read") -> int:
        self.world.point(self, READ, label)
        return self.value

    def set(self, value: int, label: str = "atomic_set") -> int:
        """Set and return the old value (the caller logs ``old -> new``)."""
        self.world.point(self, WRITE, label)
        old, self.value = self.value, value
        self._log(label, old)
        return old

    def add_return(self, n: int, label: str = "atomic_add_return") -> int:
        self.world.point(self, WRITE, label)
        self.value += n
        self._log(label, self.value - n)
        return self.value

    def sub_return(self, n: int, label: str = "atomic_sub_return") -> int:
        return self.add_return(-n, label)

    def add_unless(self, n: int, unless: int, label: str = "atomic_add_unless") -> bool:
        """Add ``n`` unless the value is ``unless``; True if it added."""
        self.world.point(self, WRITE, label)
        if self.value == unless:
            return False
        self.value += n
        self._log(label, self.value - n)
        return True

    def cmpxchg(self, old: int, new: int, label: str = "atomic_cmpxchg") -> int:
        """Store ``new`` if the value is ``old``; return the value found."""
        self.world.point(self, WRITE, label)
        found = self.value
        if found == old:
            self.value = new
            self._log(label, found)
        return found

    def peek(self) -> int:
        """Read without a scheduling point: for reports and checks, never for model logic."""
        return self.value


class Var(SyncObject):
    """A plain (non-atomic) field holding immutable plain data.

    ``get`` and ``set`` are separate accesses, so a read-modify-write written with them is not
    atomic, exactly like C code on a plain field.  ``peek`` reads without a scheduling point; use
    it only for fields that cannot change while the caller holds what it holds (a page's pgmap
    while the page is referenced) or for reports.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any = None, name: str = "var") -> None:
        super().__init__(name)
        self.value = value

    def _zd_state(self) -> Any:
        return _plain(self.value)

    def get(self, label: str = "READ_ONCE") -> Any:
        self.world.point(self, READ, label)
        return self.value

    def set(self, value: Any, label: str = "WRITE_ONCE") -> Any:
        self.world.point(self, WRITE, label)
        old, self.value = self.value, value
        return old

    def peek(self) -> Any:
        return self.value


class Flags(SyncObject):
    """A word of flag bits with the kernel's bitops (``page->flags``)."""

    __slots__ = ("bits",)

    def __init__(self, bits: int = 0, name: str = "flags") -> None:
        super().__init__(name)
        self.bits = bits

    def _zd_state(self) -> int:
        return self.bits

    def test_bit(self, nr: int, label: str = "test_bit") -> bool:
        self.world.point(self, READ, label)
        return bool(self.bits >> nr & 1)

    def set_bit(self, nr: int, label: str = "set_bit") -> None:
        self.world.point(self, WRITE, label)
        self.bits |= 1 << nr

    def clear_bit(self, nr: int, label: str = "clear_bit") -> None:
        self.world.point(self, WRITE, label)
        self.bits &= ~(1 << nr)

    def test_and_set_bit(self, nr: int, label: str = "test_and_set_bit") -> bool:
        self.world.point(self, WRITE, label)
        old = bool(self.bits >> nr & 1)
        self.bits |= 1 << nr
        return old

    def test_and_clear_bit(self, nr: int, label: str = "test_and_clear_bit") -> bool:
        self.world.point(self, WRITE, label)
        old = bool(self.bits >> nr & 1)
        self.bits &= ~(1 << nr)
        return old

    def wait_and_set_bit(self, nr: int, label: str = "wait_on_bit_lock") -> None:
        """Sleep until bit ``nr`` is clear, then set it (``lock_page``'s bit lock)."""
        self.world.point(self, WRITE, label, lambda: not self.bits >> nr & 1)
        self.bits |= 1 << nr

    def peek(self, nr: int) -> bool:
        return bool(self.bits >> nr & 1)


class Lock(SyncObject):
    """A sleeping or spinning lock (spinlock_t, struct mutex, the PTL); not recursive."""

    __slots__ = ("owner",)

    def __init__(self, name: str = "lock") -> None:
        super().__init__(name)
        self.owner: str | None = None

    def _zd_state(self) -> Any:
        return self.owner

    def lock(self, label: str = "lock") -> None:
        self.world.point(self, ACQUIRE, label, self._free)
        self.owner = self.world.thread_name()

    def trylock(self, label: str = "trylock") -> bool:
        self.world.point(self, ACQUIRE, label)
        if self.owner is not None:
            return False
        self.owner = self.world.thread_name()
        return True

    def unlock(self, label: str = "unlock") -> None:
        self.world.point(self, RELEASE, label)
        me = self.world.thread_name()
        if self.owner != me:
            raise AssertionError(f"{label}: {self.name} held by {self.owner}, released by {me}")
        self.owner = None

    def is_locked(self) -> bool:
        return self.owner is not None

    def _free(self) -> bool:
        return self.owner is None

    def __enter__(self) -> "Lock":
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()


class Completion(SyncObject):
    """``struct completion`` (kernel/sched/completion.c)."""

    __slots__ = ("done",)

    def __init__(self, name: str = "completion") -> None:
        super().__init__(name)
        self.done = 0

    def _zd_state(self) -> int:
        return self.done

    def complete(self, label: str = "complete") -> None:
        self.world.point(self, WRITE, label)
        self.done += 1

    def complete_all(self, label: str = "complete_all") -> None:
        self.world.point(self, WRITE, label)
        self.done = _COMPLETE_ALL

    def wait_for_completion(self, label: str = "wait_for_completion") -> None:
        self.world.point(self, WRITE, label, self._ready)
        if self.done != _COMPLETE_ALL:
            self.done -= 1

    def completion_done(self, label: str = "completion_done") -> bool:
        self.world.point(self, READ, label)
        return self.done > 0

    def _ready(self) -> bool:
        return self.done > 0


_COMPLETE_ALL = 1 << 30


class WaitQueue(SyncObject):
    """A wait queue with wake-up counting, for ``wait_var_event`` / ``wake_up_var``.

    A waiter checks its condition and, if false, sleeps until a wake-up arrives *after* that
    check, then checks again.  Because the check and the registration are one step (as
    ``prepare_to_wait`` before the condition test makes them in the kernel), no wake-up is lost
    to ordering; a wake-up that is never sent leaves the waiter asleep for good, which the
    checker reports as a hang.
    """

    __slots__ = ("wakeups",)

    def __init__(self, name: str = "waitqueue") -> None:
        super().__init__(name)
        self.wakeups = 0

    def _zd_state(self) -> int:
        return self.wakeups

    def wait_event(self, condition: Callable[[], bool], reads: Iterable[SyncObject] = (),
                   label: str = "wait_var_event") -> None:
        reads = tuple(reads)
        world = self.world
        while True:
            world.point(self, READ, label, None, reads)
            if condition():
                return
            seen = self.wakeups
            world.point(self, READ, label + " (sleeping)", lambda: self.wakeups != seen)

    def wake_up(self, label: str = "wake_up_var") -> None:
        self.world.point(self, WRITE, label)
        self.wakeups += 1


class PercpuRef(SyncObject):
    """``struct percpu_ref`` (lib/percpu-refcount.c), in the states the pgmap code relies on.

    live (tryget_live succeeds) -> killed (``percpu_ref_kill``: dead, switched to atomic, the
    initial reference dropped) -> drained (count 0: ``release`` fires) -> exited
    (``percpu_ref_exit``: the percpu memory is freed).

    The per-CPU sum is kept as one number.  The kernel only notices a count that went to zero or
    below when it switches to atomic mode at kill time ("percpu ref (...) <= 0 (...) after
    switching to atomic"); after that an underflow is a put past zero.  Both are reported as
    ``percpu_ref_underflow`` and the model goes on.  Any use after exit is
    ``percpu_ref_use_after_exit`` (freed percpu memory).
    """

    __slots__ = ("count", "dead", "exited", "released", "release", "release_name")

    def __init__(self, release: Callable[["PercpuRef"], None] | None = None,
                 name: str = "percpu_ref", release_name: str = "release") -> None:
        super().__init__(name)
        self.count = 1          # percpu_ref_init: the initial reference
        self.dead = False
        self.exited = False
        self.released = False
        self.release = release
        self.release_name = release_name

    def _zd_state(self) -> tuple:
        return (self.count, self.dead, self.exited, self.released)

    def _check_alive(self, op: str) -> bool:
        if self.exited:
            self.world.violate("percpu_ref_use_after_exit",
                               "BUG: KASAN: use-after-free in percpu_ref (percpu memory freed by percpu_ref_exit)",
                               detail=f"{op} on {self.name}")
            return False
        return True

    def _dropped(self, n: int, op: str) -> None:
        old = self.count
        self.count -= n
        self.world.event(op, None, self.name, old, self.count)
        if self.dead and self.count < 0:
            self.world.violate("percpu_ref_underflow",
                               f"percpu ref ({self.release_name}) <= 0 ({self.count}) after switching to atomic",
                               detail=f"{op} on {self.name}")
        elif self.dead and self.count == 0 and not self.released:
            self._fire_release()

    def _fire_release(self) -> None:
        self.released = True
        if self.release is not None:
            self.release(self)

    def get_many(self, n: int, op: str = "percpu_ref_get_many") -> None:
        self.world.point(self, WRITE, op)
        if self._check_alive(op):
            old = self.count
            self.count += n
            self.world.event(op, None, self.name, old, self.count)

    def get(self, op: str = "percpu_ref_get") -> None:
        self.get_many(1, op)

    def put_many(self, n: int, op: str = "percpu_ref_put_many") -> None:
        self.world.point(self, WRITE, op)
        if self._check_alive(op):
            self._dropped(n, op)

    def put(self, op: str = "percpu_ref_put") -> None:
        self.put_many(1, op)

    def tryget_many(self, n: int, op: str = "percpu_ref_tryget_many") -> bool:
        """Succeeds while the count is above zero, dead or not."""
        self.world.point(self, WRITE, op)
        if not self._check_alive(op) or self.count <= 0 or self.released:
            return False
        old = self.count
        self.count += n
        self.world.event(op, None, self.name, old, self.count)
        return True

    def tryget(self, op: str = "percpu_ref_tryget") -> bool:
        return self.tryget_many(1, op)

    def tryget_live(self, op: str = "percpu_ref_tryget_live", n: int = 1) -> bool:
        """Fails once the ref has been killed."""
        self.world.point(self, WRITE, op)
        if not self._check_alive(op) or self.dead:
            return False
        old = self.count
        self.count += n
        self.world.event(op, None, self.name, old, self.count)
        return True

    def kill(self, op: str = "percpu_ref_kill") -> None:
        self.world.point(self, WRITE, op)
        if not self._check_alive(op):
            return
        if self.dead:
            self.world.violate("percpu_ref_double_kill",
                               f"percpu_ref_kill_and_confirm called more than once on {self.release_name}!")
            return
        self.dead = True
        self.world.event(op, None, self.name + ".dead", False, True)
        if self.count <= 0:   # the atomic switch sums the per-CPU counts and checks them
            self.world.violate("percpu_ref_underflow",
                               f"percpu ref ({self.release_name}) <= 0 ({self.count}) after switching to atomic",
                               detail=f"{op} on {self.name}")
        self._dropped(1, op)   # the initial reference

    def exit(self, op: str = "percpu_ref_exit") -> None:
        self.world.point(self, WRITE, op)
        if self._check_alive(op):
            self.exited = True
            self.world.event(op, None, self.name + ".exited", False, True)

    def is_dying(self, op: str = "percpu_ref_is_dying") -> bool:
        self.world.point(self, READ, op)
        return self.dead

    def peek(self) -> int:
        return self.count


def _plain(value: Any) -> Any:
    """Plain, hashable form of a field's value: model objects by their key."""
    if value is None or type(value) in (int, str, bool, float, bytes):
        return value
    key = getattr(value, "_zd_key", None)
    if key is not None:
        return key()
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((_plain(k), _plain(v)) for k, v in value.items()))
    return value
