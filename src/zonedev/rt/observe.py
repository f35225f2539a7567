"""Observed footprints: which sync objects a step really read and wrote.

A step announces one object (``world.point(obj, kind, ...)``, plus ``reads``), but model code may
also look at other objects between two points without announcing them (``page._refcount.peek()``
in a check, ``ref.count`` in a warning).  DPOR's dependence relation must cover those accesses or
it can treat dependent steps as independent and skip interleavings.

While an :class:`Observer` is installed, the value fields of every sync-object class are wrapped
in descriptors that record the ``oid`` of each object read or written while recording is on.  The
DPOR explorer turns recording on only while a thread runs one step, and adds what it saw to the
step's footprint.  Plain attributes of model objects (``page.memmap_live``) are not sync objects
and stay invisible: the stateful search, which does not rely on dependence, covers those.

The descriptors cost on every field access, and only the steps an exploration runs for the first
time are recorded (a replayed prefix reuses what its first run saw).  So (``FAST``) the classes
themselves are left alone: each has a *watched twin*, a subclass with the same name and layout
whose slots are the recording descriptors, and an execution's sync objects become twins (a
``__class__`` assignment each) when recording is first switched on in it; objects made after
that are born twins.  The setup and the replayed prefix run on the plain slots, and the classes'
attribute caches stay valid (putting descriptors on a class and taking them off again would
throw away the interpreter's specialisations for it every execution).
``zonedev.sync.world.FAST = False`` restores the previous path (descriptors on the classes for
the observer's whole lifetime), for benchmarks/run.py's before/after.
"""

from __future__ import annotations

from typing import Any

from ..sync import world as _world
from ..sync.world import SyncObject

_SKIP = {"name", "oid", "world", "wver", "wlast", "release", "release_name"}


class _Watch:
    __slots__ = ("md", "obs")

    def __init__(self, md: Any, obs: "Observer") -> None:
        self.md = md
        self.obs = obs

    def __get__(self, obj: Any, typ: Any = None) -> Any:
        if obj is None:
            return self.md
        obs = self.obs
        if obs._on and obj is not obs.own:
            obs.r.add(obj.oid)
        return self.md.__get__(obj, typ)

    def __set__(self, obj: Any, value: Any) -> None:
        obs = self.obs
        if obs._on and obj is not obs.own:
            obs.w.add(obj.oid)
        self.md.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.md.__delete__(obj)


def _classes() -> list[type]:
    out, todo = [], [SyncObject]
    while todo:
        c = todo.pop()
        if c.__dict__.get("_zd_twin_of") is not None:
            continue
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def _watched(cls_list: list[type]) -> list[tuple[type, str, Any]]:
    """(class, slot name, slot descriptor) of every recorded field, base classes' included."""
    out = []
    for cls in cls_list:
        slots = cls.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for name in slots:
            if name in _SKIP:
                continue
            md = cls.__dict__.get(name)
            if md is None or isinstance(md, _Watch):
                continue
            out.append((cls, name, md))
    return out


#: class -> its watched twin (made once per process; the twins' descriptors point at the
#: observer in use, ``_TWIN_WATCHES``)
_TWINS: dict[type, type] = {}
_TWIN_WATCHES: list[_Watch] = []


#: the FAST observers entered and not exited, innermost last: the twins record for it
_ACTIVE: list["Observer"] = []


class _Off:
    """Where the twins point when no observer is entered: never recording."""
    _on = False
    own = None


def _point_twins() -> None:
    obs = _ACTIVE[-1] if _ACTIVE else _Off
    for wt in _TWIN_WATCHES:
        wt.obs = obs


def _twin(cls: type, watched: list[tuple[type, str, Any]]) -> type:
    tw = _TWINS.get(cls)
    if tw is None:
        ns: dict[str, Any] = {"__slots__": (), "_zd_twin_of": cls, "__module__": cls.__module__,
                              "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
        for base, name, md in watched:
            if base in cls.__mro__ and name not in ns:
                w = _Watch(md, _Off)
                _TWIN_WATCHES.append(w)
                ns[name] = w
        tw = _TWINS[cls] = type(cls)(cls.__name__, (cls,), ns)
    return tw


class Observer:
    """Install with ``with Observer() as obs:``; ``obs.on`` switches recording."""

    def __init__(self) -> None:
        self.r: set[int] = set()
        self.w: set[int] = set()
        self._on = False
        #: FAST: the object the running step announced (the explorer has it already; not
        #: recording it spares the explorer sorting it out of almost every step's accesses)
        self.own: Any = None
        self.saved: list[tuple[type, str, Any]] = []
        self.twins: dict[type, type] | None = None      # FAST: class -> watched twin
        self.world: Any = None                          # FAST: the world whose objects are twins
        self.reg: Any = None                            # FAST: the register it gave that world

    @property
    def on(self) -> bool:
        return self._on

    @on.setter
    def on(self, value: bool) -> None:
        if value and self.arm():
            w = _world._current
            if w is not None:
                sched = w.scheduler
                p_obj = getattr(sched, "p_obj", None)
                self.own = p_obj[sched.cur] if p_obj is not None else None
        self._on = value

    def arm(self) -> bool:
        """Ready to record in the current world: FAST, its sync objects made watched twins if
        they are not yet (a new world, or the same copy put back as the setup left it, its own
        ``register`` gone: :meth:`~zonedev.rt.snapshot.Plan.again`).  True when the
        announced object is to be left out (``own``: FAST).  The DPOR explorer calls it once
        an execution, before its first recorded step, and then switches recording with
        ``_on`` and ``own`` itself."""
        if self.twins is None:
            return False
        w = _world._current
        if w is not None and (w is not self.world or w.__dict__.get("register") is not self.reg):
            self._watch_world(w)
        return True

    def _watch_world(self, w: Any) -> None:
        """Make every sync object of ``w`` a watched twin, and the objects ``w`` gets from now
        on too (the first recorded step of an execution)."""
        twins = self.twins
        for o in w.objects:
            tw = twins.get(type(o))
            if tw is not None:
                o.__class__ = tw
        objects = w.objects

        def register(obj: SyncObject) -> int:
            tw = twins.get(type(obj))
            if tw is not None:
                obj.__class__ = tw
            objects.append(obj)
            return len(objects) - 1

        w.register = register
        self.reg = register
        self.world = w

    def __enter__(self) -> "Observer":
        classes = _classes()
        if _world.FAST:
            watched = _watched(classes)
            self.twins = {c: _twin(c, watched) for c in classes}
            _ACTIVE.append(self)
            _point_twins()
            return self
        for cls, name, md in _watched(classes):
            self.saved.append((cls, name, md))
            setattr(cls, name, _Watch(md, self))
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, md in reversed(self.saved):
            setattr(cls, name, md)
        self.saved = []
        self.on = False
        if self.twins is not None:
            self.twins = None
            self.world = None
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            _point_twins()
