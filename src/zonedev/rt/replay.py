"""Replaying a schedule step by step with the event log on: the raw material of counterexamples."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from .engine import LEDGER_KINDS, Finding, Runner, attach_unbalanced
from .ledger import ledger_of, unbalanced
from .outcome import BadSchedule, parse_schedule, preemptions_of, schedule_string


@dataclass
class Step:
    index: int
    thread: int
    name: str
    label: str          # the primitive's label (the kernel operation)
    func: str           # the model function that called the primitive
    obj: str            # the sync object's name
    events: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    preempted: bool = False
    #: the ``Event`` objects behind ``events`` (for the counterexample table)
    raw_events: list = field(default_factory=list, repr=False)

    def text(self) -> str:
        head = self.label if not self.func or self.func == self.label else f"{self.func}: {self.label}"
        return head


@dataclass
class Trace:
    names: list[str]
    steps: list[Step]
    findings: list[Finding]           # everything found along the replay (step and end findings)
    schedule: str
    preemptions: int
    complete: bool                    # every thread finished or blocked by the end
    waiting: dict = field(default_factory=dict)   # thread index -> what it waits in, at the end
    #: the reference gets never put back (``rt.ledger``), on objects still holding references
    unbalanced: list = field(default_factory=list)


_kernel_names: dict[type, frozenset[str]] = {}

#: functions the model installs on a kernel that the kernel has no function of that name for
#: (bookkeeping and event helpers): a step taken in one is charged to the kernel function that
#: called it
MODEL_HELPERS = frozenset({
    "set_page_field", "SetPageFlag", "ClearPageFlag", "PageFlag", "check_page_alive", "call_page_free",
    "percpu_ref_exit_pgmap", "pgmap_register", "pgmap_unregister", "pgmap_percpu_ref", "pincount_add",
    "get_dev_pagemap_rcu", "wake_up_var_refcount", "page_waitqueue", "pgmap_heads_of", "get_user_page_ref",
    "release_pages_devmap_put", "pagemap_range_get_refs", "free_zone_device_put_pgmap", "gup_undo_refs",
})


def kernel_function_names(cls: type | None) -> frozenset[str]:
    """The names of the kernel functions of a modelled kernel class (every patch's ``functions``)."""
    if cls is None:
        return frozenset()
    names = _kernel_names.get(cls)
    if names is None:
        names = _kernel_names[cls] = frozenset(n for p in getattr(cls, "patches", ()) for n in p.functions
                                               if n not in MODEL_HELPERS and not n.startswith("zd_"))
    return names


def _caller(runner: Runner, t: int) -> str:
    """The kernel function of thread ``t``'s pending step: the innermost frame (outside
    zonedev.sync / rt) whose function is a kernel function of the running kernel; failing that
    the innermost frame with a plain name (a scenario's thread function), never a lambda or a
    model helper (``_dec``)."""
    f = runner.pool[t].gr_frame
    names = kernel_function_names(runner.kernel_cls)
    plain = ""
    while f is not None:
        fn = f.f_code.co_filename
        if "/zonedev/sync/" not in fn and "/zonedev/rt/" not in fn:
            name = f.f_code.co_name
            if name in names:
                return name
            if not plain and name.isidentifier() and not name.startswith("_"):
                plain = name
        f = f.f_back
    return plain


def _origin() -> tuple[str, int | None]:
    """The kernel function an event comes from (the innermost model frame that is neither a
    private helper such as ``_inc`` nor a page_ref.h accessor) and the pfn of the page/folio
    it works on, if any."""
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        name = f.f_code.co_name
        if "/zonedev/sync/" not in fn and "/zonedev/rt/" not in fn and not fn.endswith("page_ref.py") and \
                name.isidentifier() and not (name.startswith("_") and not name.startswith("__")):
            loc = f.f_locals
            for var in ("page", "folio", "head"):
                pfn = getattr(loc.get(var), "pfn", None)
                if type(pfn) is int:
                    return name, pfn
            return name, None
        f = f.f_back
    return "", None


def replay(runner: Runner, schedule: str | list[int],
           on_step: Callable[[Step, Runner], None] | None = None) -> Trace:
    """Run ``schedule`` exactly (events recorded); raise :class:`BadSchedule` if it names a
    thread that is finished or blocked at that point."""
    sched = parse_schedule(schedule) if isinstance(schedule, str) else list(schedule)
    origins: dict[int, tuple[str, int | None]] = {}

    def note(ev: Any) -> None:
        origins[id(ev)] = _origin()

    runner.on_event = note
    try:
        runner.begin(record=True)
    finally:
        runner.on_event = None
    world = runner.world
    names = list(runner.names)
    steps: list[Step] = []
    findings: list[Finding] = list(runner.start_findings() or ())
    enab: list[int] = []
    nev = len(world.events)
    records = [(ev, "setup", -1, *origins.get(id(ev), (ev.func, None))) for ev in world.events]
    try:
        for i, p in enumerate(sched):
            if p < 0 or p >= runner.n:
                raise BadSchedule(f"step {i}: no thread {p} (threads 0..{runner.n - 1})")
            em = runner.enabled_mask()
            if not em >> p & 1:
                why = "finished" if runner.fin[p] else f"blocked in {runner.p_label[p]}"
                raise BadSchedule(f"step {i}: thread {p} ({names[p]}) cannot run: {why}")
            enab.append(em)
            obj = runner.p_obj[p]
            label = runner.p_label[p]
            func = _caller(runner, p)
            if func != label and label in kernel_function_names(runner.kernel_cls):
                func = label    # a helper's step done on behalf of the kernel function it names
            st = Step(i, p, names[p], label, func, getattr(obj, "name", str(obj)))
            st.preempted = bool(i and sched[i - 1] != p and em >> sched[i - 1] & 1)
            runner.step(p)
            st.raw_events = list(world.events[nev:])
            st.events = [str(e) for e in st.raw_events]
            records.extend((ev, names[p], i, *origins.get(id(ev), (ev.func, None))) for ev in st.raw_events)
            nev = len(world.events)
            fs = runner.findings_after_step(i, p)
            if fs:
                st.findings = fs
                findings.extend(fs)
            steps.append(st)
            if on_step is not None:
                on_step(st, runner)
        em = runner.enabled_mask()
        complete = em == 0
        waiting = {t: f"blocked in {runner.p_label[t]} on {getattr(runner.p_obj[t], 'name', '?')}"
                   for t in runner.unfinished() if not em >> t & 1}
        if complete:
            findings.extend(runner.findings_at_end(len(sched)))
        entries, starts, ends = ledger_of(records)
        held = unbalanced(entries, starts, ends)
        for f in findings:
            f.schedule = schedule_string(sched)
            f.names = names
            f.steps = len(sched)
            if f.kind in LEDGER_KINDS:
                attach_unbalanced(f, held)
        return Trace(names, steps, findings, schedule_string(sched), preemptions_of(sched, enab), complete,
                     waiting, held)
    finally:
        runner.end()
