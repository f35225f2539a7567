"""The reference ledger: every get and put of a counted reference in a replayed execution, and
the gets nobody put back.

Recorded only when a counterexample is replayed (``rt.replay``: events are on then), so it costs
the exploration nothing.  A ledger entry comes from a model event whose field is a reference
count -- a page's ``_refcount`` or ``_pincount``, a ``percpu_ref`` (the pgmap reference), an
``mm_users``/``mm_count`` or a ``kref`` -- with an integer old and new value: ``new > old`` is a
get of ``new - old`` references, ``new < old`` a put.  Each entry says who: the thread (``setup``
for the scenario's own setup), the schedule step, the kernel function that made the call (the
innermost model frame, ``zone_device_page_init``) and, when that function was working on a page,
the page (a pgmap reference "held by page 0x100000").

Balancing: the references an object had before its first event count as held from the start; a
put is matched with its own thread's latest unmatched get if it has one (a thread puts what it
took), else with the oldest unmatched reference.  The gets left unmatched on an object that still
holds references at the end are the unbalanced ones a leak or a hang lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: event fields that are reference counts (plus every percpu_ref, named ``<pgmap>.ref``)
COUNTED = ("_refcount", "_pincount", "mm_users", "mm_count", "kref", ".refcount")


@dataclass(frozen=True, slots=True)
class Entry:
    obj: str            # "page 0x100000 refcount", "generic@0x100000.ref"
    op: str             # the primitive: page_ref_inc, percpu_ref_tryget_live, set_page_count ...
    delta: int
    thread: str
    step: int           # schedule step (-1: setup)
    function: str       # the kernel function that made the call
    holder: int | None  # the page that function was working on, if any

    def as_dict(self) -> dict[str, Any]:
        return {"object": self.obj, "op": self.op, "thread": self.thread, "step": self.step,
                "function": self.function, "count": self.delta,
                "holder": f"{self.holder:#x}" if self.holder is not None else None}

    def text(self) -> str:
        held = f" held by page {self.holder:#x}" if self.holder is not None and self.holder >= 0 else ""
        n = f"{self.delta} " if self.delta > 1 else ""
        where = "in setup" if self.step < 0 else f"in thread {self.thread} at step {self.step}"
        fn = self.function if self.function == self.op else f"{self.function} ({self.op})"
        return f"{n}{self.obj}{held}, taken by {fn} {where}, never put"


def counted(field: str, old: Any, new: Any) -> bool:
    if type(old) is not int or type(new) is not int:
        return False
    return field in COUNTED or field.endswith(".ref") or any(field.endswith(c) for c in COUNTED)


def object_name(field: str, pfn: int | None) -> str:
    if pfn is not None:
        what = {"_refcount": "refcount", "_pincount": "pincount"}.get(field, field)
        return f"page {pfn:#x} {what}"
    if field.endswith(".ref"):
        return f"pgmap ref {field[:-4]}"
    return field


def entry_of(event: Any, thread: str, step: int, function: str, holder: int | None) -> Entry | None:
    if not counted(event.field, event.old, event.new) or event.new == event.old:
        return None
    holder = None if event.pfn is not None else holder     # a page's own count needs no holder
    return Entry(object_name(event.field, event.pfn), event.func, event.new - event.old, thread, step,
                 function or event.func, holder)


def unbalanced(entries: list[Entry], starts: dict[str, int], ends: dict[str, int]) -> list[Entry]:
    """The gets never put back, on objects still holding references at the end.  ``starts``:
    each object's count before its first entry; ``ends``: after its last."""
    open_: dict[str, list[list]] = {}         # obj -> unmatched units [entry or None, thread, count]
    for e in entries:
        units = open_.setdefault(e.obj, [[None, "", starts.get(e.obj, 0)]] if starts.get(e.obj, 0) > 0 else [])
        if e.delta > 0:
            units.append([e, e.thread, e.delta])
            continue
        left = -e.delta
        # the putting thread's own latest gets first, then the oldest references
        order = [u for u in reversed(units) if u[0] is not None and u[1] == e.thread] + \
                [u for u in units if not (u[0] is not None and u[1] == e.thread)]
        for u in order:
            if not left:
                break
            take = min(left, u[2])
            u[2] -= take
            left -= take
        units[:] = [u for u in units if u[2] > 0]
    out = []
    for obj, units in open_.items():
        if ends.get(obj, 0) <= 0:
            continue
        for e, _, n in units:
            if e is not None:
                out.append(e if n == e.delta else Entry(e.obj, e.op, n, e.thread, e.step, e.function, e.holder))
    return out


def ledger_of(records: list[tuple[Any, str, int, str, int | None]]) -> tuple[list[Entry], dict, dict]:
    """Entries, start counts and end counts from (event, thread, step, function, holder) records."""
    entries: list[Entry] = []
    starts: dict[str, int] = {}
    ends: dict[str, int] = {}
    for ev, thread, step, function, holder in records:
        e = entry_of(ev, thread, step, function, holder)
        if e is None:
            continue
        starts.setdefault(e.obj, ev.old)
        ends[e.obj] = ev.new
        entries.append(e)
    return entries, starts, ends
