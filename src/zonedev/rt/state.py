"""State keys for the stateful search: the model's state plus every thread's position.

A suspended thread's position is read from its greenlet's frame chain: for each frame, the code,
the instruction offset and the local variables, canonicalised (plain values as they are, sync
objects by ``oid``, model objects by ``_zd_key()``, the kernel as one token, closures by code and
canonicalised cells).  A value that cannot be canonicalised makes the state uncacheable (it is
then explored without pruning, which is sound).

Symmetry: threads are interchangeable when their whole stacks are equal, so the key sorts the
threads' position keys; thread names that appear in shared state or locals (a lock's owner) are
renamed to the rank of their thread in that order, consistently.

Limitation (documented in docs/checker.md): values a thread holds on the interpreter's value
stack across a scheduling point (``a.get() + b.get()``) are invisible; model code keeps such
values in local variables.
"""

from __future__ import annotations

import types
from typing import Any

from ..sync.world import SyncObject, World
from .engine import POINT_CODE, Runner

_PLAIN = (int, str, bool, float, bytes, type(None))


class Uncacheable(Exception):
    pass


def _skip_codes() -> set:
    from ..sync import world as w
    return {Runner.point.__code__, w.World.point.__code__, POINT_CODE}


class StateKeys:
    def __init__(self, runner: Runner, symmetry: bool = True) -> None:
        self.runner = runner
        self.symmetry = symmetry
        self.skip = _skip_codes()
        self.stop = Runner._body.__code__
        self.pk: list[Any] = []
        self.names: dict[str, Any] = {}
        self.named = True
        self.dirty: set = set()
        self.slot_names: dict[type, list | None] = {}
        #: position -> its rank, in the order positions were first seen: the symmetric order of
        #: threads (a process-independent order, unlike ``hash``, so a checkpoint resumes in kind)
        self.rank: dict[Any, int] = {}
        try:
            from ..linux.kernel import Kernel
            self.kernel_cls: type | None = Kernel
        except Exception:  # pragma: no cover
            self.kernel_cls = None

    def save(self) -> dict:
        """What a checkpoint keeps (see :mod:`zonedev.rt.checkpoint`)."""
        return {"rank": self.rank}

    def restore(self, saved: dict) -> None:
        self.rank = saved["rank"]

    def reset(self) -> None:
        self.pk = [None] * self.runner.n
        self.dirty = set(range(self.runner.n))

    def moved(self, t: int) -> None:
        self.dirty.add(t)

    # -- canonicalisation -------------------------------------------------------------------
    def canon(self, v: Any, depth: int = 0) -> Any:
        t = type(v)
        if t in _PLAIN:
            if t is str and v in self.names:
                return self.names[v]
            return v
        if depth > 6:
            raise Uncacheable
        if isinstance(v, SyncObject):
            return ("o", v.oid)
        if t is tuple or t is list:
            return tuple(self.canon(x, depth + 1) for x in v)
        if t is dict:
            return ("d",) + tuple(sorted(((self.canon(a, depth + 1), self.canon(b, depth + 1)) for a, b in v.items()), key=repr))
        if t is types.FunctionType:
            cells = v.__closure__
            return ("f", v.__code__,
                    tuple(self.canon(c.cell_contents, depth + 1) for c in cells) if cells else (),
                    tuple(self.canon(d, depth + 1) for d in v.__defaults__) if v.__defaults__ else ())
        if t is types.MethodType:
            return ("m", v.__func__.__code__, self.canon(v.__self__, depth + 1))
        key = getattr(v, "_zd_key", None) if t is not type else None    # a class is not an instance
        if key is not None and callable(key):
            return (key(), self._plain_slots(v, t))
        if self.kernel_cls is not None and isinstance(v, self.kernel_cls):
            return ("kernel",)
        op = self.runner.run.opaque.get(id(v))
        if op is not None:
            return ("opaque", op)
        if t in (frozenset, set):
            return ("s",) + tuple(sorted((self.canon(x, depth + 1) for x in v), key=repr))
        if t in (type, types.BuiltinFunctionType, types.ModuleType) or t is types.CodeType:
            return v
        if isinstance(v, World):
            return ("world",)
        if t is range:
            return ("range", v.start, v.stop, v.step)
        raise Uncacheable

    def _plain_slots(self, v: Any, t: type) -> tuple:
        """A model object's plain fields (``page.memmap_live``): hidden state the world's sync
        objects do not hold.  Sync-object and object-valued fields are covered elsewhere."""
        names = self.slot_names.get(t)
        if names is None:
            names = []
            for klass in t.__mro__:
                names.extend(getattr(klass, "__slots__", ()))
            if hasattr(v, "__dict__"):
                names = None
            self.slot_names[t] = names
        if names is None:
            items = sorted(vars(v).items())
        else:
            items = [(n, getattr(v, n, None)) for n in names]
        return tuple(x for n, x in items if type(x) in _PLAIN)

    def position(self, t: int) -> Any:
        r = self.runner
        if r.fin[t]:
            return ("done",)
        f = r.pool[t].gr_frame
        parts = []
        skip = self.skip
        stop = self.stop
        while f is not None:
            code = f.f_code
            if code is stop:
                break
            if code not in skip:
                loc = f.f_locals
                parts.append((code, f.f_lasti,
                              tuple((k, self.canon(x)) for k, x in loc.items() if k != "self" or type(x) is not Runner)))
            f = f.f_back
        return tuple(parts)

    def key(self) -> Any:
        r = self.runner
        n = r.n
        self.names = {}
        self.named = True
        try:
            pk = self.pk
            for t in self.dirty:
                pk[t] = self.position(t)
            self.dirty = set()
            run = r.run
            state = r.world.state()
            if self.symmetry and run.symmetric and n > 1:
                rank = self.rank
                order = sorted(range(n), key=lambda t: rank.setdefault(pk[t], len(rank)))
                tnames = set(r.names)
                self.named = any(x in tnames for x in _strings(state))
                if self.named:
                    self.names = {r.names[t]: ("T", rank) for rank, t in enumerate(order)}
                    positions = tuple(self.canon(pk[t]) for t in order)
                else:
                    positions = tuple(pk[t] for t in order)
            else:
                positions = tuple(pk)
            state = self.canon(state)
            extra = self.canon(run.state()) if run.state is not None else None
            return (state, positions, extra)
        except Uncacheable:
            self.dirty = set(range(n))
            self.named = True
            return None
        finally:
            self.names = {}

    def dedupe(self, options: list[int]) -> list[int]:
        """Among enabled threads with equal positions, keep one (their moves are symmetric).
        Not done when thread names appear in the shared state."""
        r = self.runner
        if not (self.symmetry and r.run.symmetric) or self.named:
            return options
        out: list[int] = []
        pk = self.pk
        for t in options:
            k = pk[t]
            if k is None or all(pk[u] != k for u in out):
                out.append(t)
        return out


def _strings(v: Any):
    t = type(v)
    if t is str:
        yield v
    elif t is tuple or t is list or t is frozenset:
        for x in v:
            yield from _strings(x)
