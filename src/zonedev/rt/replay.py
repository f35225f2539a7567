"""Replaying a schedule step by step with the event log on: the raw material of counterexamples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .engine import Finding, Runner
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


def _caller(runner: Runner, t: int) -> str:
    """The innermost model function of thread ``t``'s pending step (outside zonedev.sync / rt)."""
    f = runner.pool[t].gr_frame
    while f is not None:
        fn = f.f_code.co_filename
        if "/zonedev/sync/" not in fn and "/zonedev/rt/" not in fn:
            return f.f_code.co_name
        f = f.f_back
    return ""


def replay(runner: Runner, schedule: str | list[int],
           on_step: Callable[[Step, Runner], None] | None = None) -> Trace:
    """Run ``schedule`` exactly (events recorded); raise :class:`BadSchedule` if it names a
    thread that is finished or blocked at that point."""
    sched = parse_schedule(schedule) if isinstance(schedule, str) else list(schedule)
    runner.begin(record=True)
    world = runner.world
    names = list(runner.names)
    steps: list[Step] = []
    findings: list[Finding] = list(runner.start_findings() or ())
    enab: list[int] = []
    nev = len(world.events)
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
            st = Step(i, p, names[p], runner.p_label[p], _caller(runner, p), getattr(obj, "name", str(obj)))
            st.preempted = bool(i and sched[i - 1] != p and em >> sched[i - 1] & 1)
            runner.step(p)
            st.events = [str(e) for e in world.events[nev:]]
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
        for f in findings:
            f.schedule = schedule_string(sched)
            f.names = names
            f.steps = len(sched)
        return Trace(names, steps, findings, schedule_string(sched), preemptions_of(sched, enab), complete, waiting)
    finally:
        runner.end()
