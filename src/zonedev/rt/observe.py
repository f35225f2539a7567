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
"""

from __future__ import annotations

from typing import Any

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
        if obs.on:
            obs.r.add(obj.oid)
        return self.md.__get__(obj, typ)

    def __set__(self, obj: Any, value: Any) -> None:
        obs = self.obs
        if obs.on:
            obs.w.add(obj.oid)
        self.md.__set__(obj, value)

    def __delete__(self, obj: Any) -> None:
        self.md.__delete__(obj)


def _classes() -> list[type]:
    out, todo = [], [SyncObject]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


class Observer:
    """Install with ``with Observer() as obs:``; ``obs.on`` switches recording."""

    def __init__(self) -> None:
        self.r: set[int] = set()
        self.w: set[int] = set()
        self.on = False
        self.saved: list[tuple[type, str, Any]] = []

    def __enter__(self) -> "Observer":
        for cls in _classes():
            slots = cls.__dict__.get("__slots__", ())
            if isinstance(slots, str):
                slots = (slots,)
            for name in slots:
                if name in _SKIP:
                    continue
                md = cls.__dict__.get(name)
                if md is None or isinstance(md, _Watch):
                    continue
                self.saved.append((cls, name, md))
                setattr(cls, name, _Watch(md, self))
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, md in reversed(self.saved):
            setattr(cls, name, md)
        self.saved = []
        self.on = False
