"""The world: where model state lives, and the one door through which a scheduler can step in.

This is the meeting point between the modelled kernel and the checker (``zonedev.rt``), and it is
deliberately small.  The model knows nothing about schedulers; the checker knows nothing about pages.

* Every piece of shared model state lives in a *sync object* (``zonedev.sync``: atomic_t, plain
  fields, page-flag bitops, locks, completions, percpu_ref, wait-var events).  Each sync object
  registers with the current :class:`World` when it is created and gets a small integer ``oid``.
  Its whole value is plain data, returned by ``_zd_state()``: the canonical, hashable state of the
  model is the tuple of those values.

* Before a sync object reads or writes shared state it calls :meth:`World.point` with itself, the
  kind of access (``READ``, ``WRITE`` or ``ACQUIRE``) and a label naming the kernel operation.
  Between two points a thread runs alone, so the access right after ``point`` returns is atomic.
  A blocking access also passes ``ready``: a callable that says whether the thread may go on
  (a free lock, a completed completion, ...).  Without a scheduler ``point`` returns at once
  (the REPL case); with one, the scheduler decides which thread's pending access runs next.

* The model records what happened through :meth:`World.event` (refcount and pgmap changes, the
  raw material of traces and counterexamples) and :meth:`World.violate` (what the real kernel
  would WARN or crash on).  The model keeps running after a violation, as the kernel would.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

READ = "r"
WRITE = "w"
ACQUIRE = "acq"   # taking a lock: dependent with every other acquire of the same lock

#: the real model's fast paths (issue 11): an observer's descriptors only while a new step is
#: recorded, a replayed prefix handed from thread to thread without the checker in between, cheap
#: sync-object and ``struct page`` construction, a scheduler-less ``point`` without the generic
#: detour.  Every one leaves executions, findings and counterexamples as they were; False
#: restores the previous code path, for benchmarks/run.py's before/after in one run.
FAST = True

#: labels of blocking points where a thread waits *idle* for work (a grace-period kthread, a
#: worker): an execution that ends with a thread blocked only there has not hung
IDLE_LABELS: set[str] = set()


class WouldBlockForever(RuntimeError):
    """A blocking primitive was called outside a checker with its condition false.

    Without a scheduler nobody else can make the condition true, so the real kernel would hang
    here.  The checker never raises this: it disables the thread and reports a hang when every
    thread is blocked.
    """


@dataclass(frozen=True, slots=True)
class Event:
    """One refcount or pgmap operation: ``old -> new`` on ``field`` of ``pfn``, in ``func``."""

    step: int
    thread: str
    func: str
    pfn: int | None
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        where = f"pfn {self.pfn:#x} " if self.pfn is not None else ""
        return f"{self.func}: {where}{self.field} {self.old} -> {self.new}"


@dataclass(frozen=True, slots=True)
class Violation:
    """Something the real kernel would warn or crash on.

    ``kind`` is a stable identifier (``refcount_underflow``, ``use_after_free``, ...); ``words``
    are the kernel's own words for it (the WARN or BUG it corresponds to).
    """

    kind: str
    words: str
    pfn: int | None
    step: int
    thread: str
    detail: str = ""

    def __str__(self) -> str:
        where = f" pfn {self.pfn:#x}" if self.pfn is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}{where}: {self.words}{detail} [step {self.step}, {self.thread}]"


class Scheduler(ABC):
    """What a checker plugs into a world.  The REPL runs with none."""

    @abstractmethod
    def point(self, obj: "SyncObject", kind: str, label: str,
              ready: Callable[[], bool] | None, reads: tuple["SyncObject", ...]) -> None:
        """Called before every shared access; returns when the current thread may perform it.

        ``obj`` is accessed with ``kind``; ``reads`` are further objects the step reads (the
        objects a wait condition looks at).  ``ready``, when given, says whether the thread can
        go on now; a thread whose ``ready`` is false is blocked.
        """

    @abstractmethod
    def thread_name(self) -> str:
        """The name of the thread running now."""


class SyncObject:
    """Base of every primitive the checker intercepts.

    Subclasses keep their value in plain attributes and return it, as hashable plain data, from
    ``_zd_state``.  ``name`` is for people (traces, hang reports); ``oid`` is the identity the
    checker uses.
    """

    __slots__ = ("name", "oid", "world", "wver", "wlast")

    def __init__(self, name: str) -> None:
        self.name = name
        self.world = current_world()
        self.oid = self.world.register(self)
        #: how many announced writes (any kind but READ) this object has had, and the thread of
        #: the last one: what a fair retry (``zonedev.sync.RetryLoop``) waits on.  Not model state.
        self.wver = 0
        self.wlast = ""

    def _zd_state(self) -> Any:
        """The object's whole value as plain, hashable data; every subclass defines it."""
        raise TypeError(f"{type(self).__name__} does not define _zd_state")

    def _zd_key(self) -> tuple:
        return ("sync", self.oid)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self._zd_state()!r}>"


@dataclass
class World:
    """All the sync objects, events and violations of one run of the model."""

    scheduler: Scheduler | None = None
    objects: list[SyncObject] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    steps: int = 0
    #: when False, events are not recorded (the checker turns them off for speed and back on
    #: to replay a counterexample)
    record_events: bool = True
    #: the modelled kernel living in this world (one per world; the model's, opaque here)
    kernel: Any = None
    #: called with each recorded event (the checker's reference ledger, on replay only)
    on_event: Callable[[Event], None] | None = None

    def register(self, obj: SyncObject) -> int:
        self.objects.append(obj)
        return len(self.objects) - 1

    def point(self, obj: SyncObject, kind: str, label: str,
              ready: Callable[[], bool] | None = None, reads: tuple = ()) -> None:
        """Announce the next shared access; return when this thread may perform it."""
        self.steps += 1
        sched = self.scheduler
        if sched is not None:
            sched.point(obj, kind, label, ready, reads)
        elif ready is not None and not ready():
            raise WouldBlockForever(f"{label} on {obj.name}: would block forever with no other thread")
        if kind != READ:
            obj.wver += 1
            obj.wlast = self.thread_name()

    def thread_name(self) -> str:
        sched = self.scheduler
        return sched.thread_name() if sched is not None else "main"

    def event(self, func: str, pfn: int | None, field_: str, old: Any, new: Any) -> None:
        if self.record_events:
            ev = Event(self.steps, self.thread_name(), func, pfn, field_, old, new)
            self.events.append(ev)
            if self.on_event is not None:
                self.on_event(ev)

    def violate(self, kind: str, words: str, pfn: int | None = None, detail: str = "") -> Violation:
        v = Violation(kind, words, pfn, self.steps, self.thread_name(), detail)
        self.violations.append(v)
        return v

    def state(self) -> tuple:
        """The canonical state of every sync object, in creation order."""
        return tuple(o._zd_state() for o in self.objects)


_current: World | None = None


def current_world() -> World:
    """The world new objects join; a fresh one is made on first use (the REPL case)."""
    global _current
    if _current is None:
        _current = World()
    return _current


def set_world(world: World | None) -> World | None:
    """Install ``world`` as current and return the previous one (for the checker's hot loop)."""
    global _current
    previous, _current = _current, world
    return previous


@contextmanager
def use_world(world: World | None = None) -> Iterator[World]:
    """Run a block with ``world`` (a new one by default) as the current world."""
    world = world if world is not None else World()
    previous = set_world(world)
    try:
        yield world
    finally:
        set_world(previous)
