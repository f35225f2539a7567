"""Following real pages through a modelled kernel's rules.

``check_trace(records, kernel)`` walks the parsed records of a trace (``formats``) in order,
keeps each ZONE_DEVICE page's last known refcount, and reports what the modelled kernel's own
rules forbid, with the line that shows it:

* a put that takes a page below the refcount its type rests at (``put_on_free_page``): an idle
  fsdax page going 1 -> 0 on 6.1 (fsdax pages rest at 1 until v6.15, 38607c62b34b);
* a page_ref_mod that raises a page of a 0-based type from 0 (``get_on_free_page``): from v6.1
  (ef233450898f) a free device-private page is at 0 and only ``zone_device_page_init``
  (``set_page_count``, a page_ref_set line) may take it to 1;
  (both only where the modelled kernel's own lifecycle of that type never makes the change: the
  v5.18 free path passes through 0, older teardowns put each base reference 1 -> 0, and a v6.15
  DAX mapping takes an fsdax page from 0);
* a free-path call (``free_zone_device_page``/``_folio`` kprobe) entered with references left
  (``page_free_while_referenced``), and any count below 0 (``refcount_underflow``);
* a kprobe on a function the modelled kernel does not have (``trace_from_other_kernel``):
  ``__put_devmap_managed_*_refs`` exists until v6.14;
* at the end, each page still above its type's resting refcount: a leak report with the pfn, the
  count, and the last records that raised it (who and line).

The resting refcount per type is the modelled kernel's fact ``free_refcount``; the type of a
pfn comes from zdsnap's ``pgmap=... type=N range=[...]`` lines (the kernel's enum value, read
per era), zonedev's own ``# zonedev: pgmap`` export header, or ``--type``/``--pfns``.  A
page_ref line alone does not say that a pfn is ZONE_DEVICE (kernel_traces.md §1.1): such pages
are counted and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .formats import Record

PUTS = ("page_ref_mod_and_test", "page_ref_mod_and_return", "page_ref_mod")


@dataclass
class Problem:
    line: int
    kind: str
    pfn: int | None
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "kind": self.kind, "pfn": self.pfn, "message": self.message}


@dataclass
class Leak:
    pfn: int
    count: int
    rests_at: int
    type: str
    holders: list[str]

    def as_dict(self) -> dict:
        return {"pfn": self.pfn, "count": self.count, "rests_at": self.rests_at, "type": self.type,
                "last_holders": self.holders}


@dataclass
class TraceReport:
    kernel: str
    note: str = ""
    records: int = 0
    pages: int = 0
    other_pages: int = 0
    problems: list[Problem] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    bulk_leaks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.leaks or self.bulk_leaks)

    def as_dict(self) -> dict:
        return {"kernel": self.kernel, "note": self.note, "records": self.records, "pages": self.pages,
                "other_pages": self.other_pages, "ok": self.ok,
                "problems": [p.as_dict() for p in self.problems],
                "leaks": [x.as_dict() for x in self.leaks] + [{"summary": s} for s in self.bulk_leaks]}


def enum_types(k: Any) -> dict[int, str]:
    """The kernel's ``enum memory_type`` values for this era: 0 is HOST before v4.18 and reserved
    after it (include/linux/memremap.h; v6.0 inserts COHERENT at 2)."""
    types = list(k.fact("memory_types", ()))
    base = 0 if types and types[0].endswith("HOST") else 1
    return {i + base: t for i, t in enumerate(types)}


class _Follower:
    def __init__(self, k: Any, report: TraceReport, ranges: list[tuple[int, int, str]]) -> None:
        self.k = k
        self.r = report
        self.free = dict(k.fact("free_refcount", {}))
        self.enum = enum_types(k)
        self.ranges = list(ranges)
        self.count: dict[int, int] = {}
        self.holders: dict[int, list[str]] = {}
        self.others: set[int] = set()
        self.lives: dict[str, set] = {}
        #: the last whole-range snapshot: (record, type, pages above rest, rest, counts by level,
        #: first pfn, end pfn), reported in finish()
        self.snapshot: tuple | None = None

    def seen(self, t: str, old: int, new: int, is_set: bool) -> bool:
        """Does the modelled kernel itself take a page of type ``t`` from ``old`` to ``new`` in
        a page's life (memremap, allocate, get, pin, put, unpin, free, memunmap)?  Some drops
        below the resting count are the kernel's own: v5.18-v6.0 free_zone_device_page takes a
        device-private page through 0 and sets it back to 1; before v5.18 memunmap puts each
        pfn's base reference 1 -> 0; from v6.15 a DAX mapping takes an fsdax page 0 -> 1."""
        if t not in self.lives:
            kinds = {v: name for name, v in self.k.fact("type_names", {}).items()}
            self.lives[t] = _lifecycle_transitions(self.r.kernel, kinds[t]) if t in kinds else set()
        return (old, new, is_set) in self.lives[t]

    def type_of(self, pfn: int | None) -> str | None:
        if pfn is None:
            return None
        for lo, hi, t in self.ranges:
            if lo <= pfn < hi:
                return t
        return None

    def short(self, t: str) -> str:
        return t.replace("MEMORY_DEVICE_", "").lower().replace("fs_dax", "fsdax").replace("pci_p2pdma", "p2pdma")

    def problem(self, rec: Record, kind: str, pfn: int | None, msg: str) -> None:
        self.r.problems.append(Problem(rec.line, kind, pfn, msg))

    def on(self, rec: Record) -> None:
        getattr(self, f"_{rec.kind}")(rec)

    def _pgmap(self, rec: Record) -> None:
        t = self.enum.get(rec.fields["type"])
        if t is None:
            self.problem(rec, "trace_from_other_kernel", None,
                         f"pgmap type {rec.fields['type']} is no memory_type of {self.r.kernel} "
                         f"({', '.join(f'{v}={self.short(n)}' for v, n in self.enum.items())})")
            return
        span = (rec.fields["start_pfn"], rec.fields["end_pfn"], t)
        if span not in self.ranges:
            self.ranges.append(span)

    def _set(self, rec: Record, pfn: int, count: int, raised: bool) -> None:
        self.count[pfn] = count
        if raised:
            self.holders.setdefault(pfn, []).append(f"line {rec.line}" + (f" ({rec.who})" if rec.who else ""))
            self.holders[pfn] = self.holders[pfn][-3:]

    def _page_ref(self, rec: Record) -> None:
        f = rec.fields
        pfn, count, ev = f["pfn"], f["count"], f["event"]
        t = self.type_of(pfn)
        if t is None:
            self.others.add(pfn)
            return
        rests = self.free.get(t, 1)
        name = self.short(t)
        val = f.get("val", 0)
        if count < 0:
            self.problem(rec, "refcount_underflow", pfn, f"pfn {pfn:#x}: {name} page refcount {count} (below 0)")
        elif ev in PUTS and val < 0 and count < rests and not self.seen(t, count - val, count, False):
            self.problem(rec, "put_on_free_page", pfn,
                         f"pfn {pfn:#x}: {name} page {count - val} -> {count}, below the refcount it rests at on "
                         f"{self.r.kernel} ({rests}): a put on an idle page")
        elif ev == "page_ref_mod" and val > 0 and count - val == 0 and rests == 0 and not self.seen(t, 0, count, False):
            self.problem(rec, "get_on_free_page", pfn,
                         f"pfn {pfn:#x}: {name} page 0 -> {count} by page_ref_mod: on {self.r.kernel} a free "
                         f"{name} page is at 0 and only zone_device_page_init (set_page_count) allocates it")
        self._set(rec, pfn, count, val > 0 or ev == "page_ref_set" and count > rests)

    def _dump_page(self, rec: Record) -> None:
        f = rec.fields
        pfn = f.get("pfn")
        t = self.type_of(pfn)
        if t is None:
            if pfn is not None:
                self.others.add(pfn)
            return
        rests = self.free.get(t, 1)
        if f["count"] < rests:
            self.problem(rec, "put_on_free_page", pfn,
                         f"pfn {pfn:#x}: {self.short(t)} page at refcount {f['count']} "
                         f"(dump_page), below the {rests} it rests at on {self.r.kernel}")
        self._set(rec, pfn, f["count"], f["count"] > self.count.get(pfn, rests))

    def _snapshot_page(self, rec: Record) -> None:
        f = rec.fields
        t = self.enum.get(f["type"]) or self.type_of(f["pfn"])
        if t is None:
            return
        rests = self.free.get(t, 1)
        if f["count"] < rests:
            self.problem(rec, "put_on_free_page", f["pfn"],
                         f"pfn {f['pfn']:#x}: {self.short(t)} page at refcount {f['count']}, below the {rests} it "
                         f"rests at on {self.r.kernel}")
        self._set(rec, f["pfn"], f["count"], f["count"] > rests)

    def _snapshot(self, rec: Record) -> None:
        f = rec.fields
        t = self.type_of(f["first_pfn"])
        if t is None:
            return
        rests = self.free.get(t, 1)
        name = self.short(t)
        by = {0: f["ref0"], 1: f["ref1"], 2: f["ref2"]}
        below = sum(n for c, n in by.items() if c < rests)
        if below:
            self.problem(rec, "put_on_free_page", None,
                         f"{below} {name} pages at refcount {'0' if rests == 1 else '<' + str(rests)}: on "
                         f"{self.r.kernel} an idle {name} page rests at {rests}")
        lo, hi = f["first_pfn"], f["first_pfn"] + f["nr"]
        above = sum(n for c, n in by.items() if c > rests) + f["ref_other"]
        level = [c for c, n in by.items() if n == f["zone_device"]]
        if level:                  # every page of the range is at one count: the pages followed too
            for pfn in [p for p in self.count if lo <= p < hi]:
                self.count[pfn] = level[0]
        self.snapshot = (rec, t, above, rests, by, lo, hi)

    def _kprobe(self, rec: Record) -> None:
        f = rec.fields
        fn = f["function"]
        if fn.startswith("__put_devmap_managed"):
            if not self.k.has("put_devmap_managed_page"):
                self.problem(rec, "trace_from_other_kernel", None,
                             f"{fn} does not exist on {self.r.kernel} (the devmap-managed put is gone from v6.15, "
                             f"38607c62b34b): this trace comes from an older kernel")
                return
            rests = self.free.get("MEMORY_DEVICE_FS_DAX", 1)
            ref, refs = f.get("ref"), f.get("refs", 1)
            if ref is not None and ref - refs < rests:
                self.problem(rec, "put_on_free_page", None,
                             f"{fn}: refcount {ref} -> {ref - refs}, below the {rests} an fsdax page rests at on "
                             f"{self.r.kernel}")
        elif fn.startswith("free_zone_device"):
            ref = f.get("ref")
            if ref is not None and ref != 0 and self.k.has("__folio_put"):
                self.problem(rec, "page_free_while_referenced", None,
                             f"{fn} entered at refcount {ref}: on {self.r.kernel} the free path runs once the count is 0")

    def finish(self) -> None:
        rec, st, above, srests, by, lo, hi = self.snapshot or (None, None, 0, 0, {}, 0, 0)
        for pfn, count in sorted(self.count.items()):
            t = self.type_of(pfn)
            if t is None or above and lo <= pfn < hi:
                continue           # reported with the whole range below
            rests = self.free.get(t, 1)
            if count > rests:
                self.r.leaks.append(Leak(pfn, count, rests, self.short(t), self.holders.get(pfn, [])))
        if above:
            levels = ", ".join(f"{n} at {c}" for c, n in by.items() if c > srests and n)
            self.r.bulk_leaks.append(
                f"line {rec.line}: {above} {self.short(st)} pages still referenced at the last snapshot "
                f"({levels}); on {self.r.kernel} an idle {self.short(st)} page rests at {srests}")
        self.r.pages = len(self.count)
        self.r.other_pages = len(self.others)


def _lifecycle_transitions(kernel: str, kind: str) -> set:
    """{(old, new, is_set)} of the refcount changes in the model's lifecycle of a ``kind`` page."""
    from ..lifecycle import lifecycle
    from .export import SETS
    keep: dict = {}
    try:
        out = lifecycle(kernel, kind, keep=keep)
    except Exception:      # a type the example driver cannot run here: no transition is known
        return set()
    if out.get("absent") or "world" not in keep:
        return set()
    return {(e.old, e.new, e.func in SETS) for e in keep["world"].events
            if e.field == "_refcount" and isinstance(e.old, int) and isinstance(e.new, int)}


def check_trace(records: Iterable[Record], k: Any, kernel: str, note: str = "",
                ranges: Iterable[tuple[int, int, str]] = ()) -> TraceReport:
    """Follow ``records`` through the modelled kernel ``k`` (named ``kernel``)."""
    records = list(records)
    report = TraceReport(kernel, note, len(records))
    fol = _Follower(k, report, list(ranges))
    for rec in records:
        fol.on(rec)
    fol.finish()
    return report
