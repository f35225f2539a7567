"""``zonedev.check(scenario, kernel=...)``: explore a scenario, return a :class:`Result`.

Modes:

* ``auto``: ``bounded`` with ``preemptions=N``; else the mode the scenario declares; else the
  stateful search when two or more threads are identical at the start, Optimal-DPOR when not
  (:func:`auto_mode`; ``Result.auto`` and the JSON's ``auto`` say why).
* ``dpor``: exhaustive
  Optimal-DPOR (sleep sets and wakeup trees): one complete execution per Mazurkiewicz trace and,
  on the benchmark programs, no sleep-set-blocked ones.  ``source-dpor``: source sets instead of
  wakeup trees.  Sound when all shared state lives in zonedev.sync objects: announced accesses
  come from the points, and for scenarios on the modelled kernel the unannounced looks model
  code takes between points (checks that peek) are observed and added to the step's footprint.
* ``stateful``: exhaustive DFS over all
  schedules, pruning at visited states (model state + thread positions), with symmetry between
  threads whose stacks are equal.  Best where every step hits one counter (refcount races with
  identical users: the teardown family), hopeless where states rarely repeat (long mm paths).
* ``naive``: every schedule, no reduction (for comparisons).
* ``bounded`` (``preemptions=N``): every schedule with at most N preemptions.
* ``random`` / ``pct`` (``depth=d``): sampled schedules from ``seed``, within a budget.

Budgets (``executions``, ``seconds``, ``memory``) are asked before every execution, so
``executions=N`` runs exactly N (complete plus cut) and ``seconds`` is overshot by at most one
execution; the step guard (:mod:`zonedev.rt.guard`, ``step_timeout``) stops a thread that runs
too long without reaching a sync point.  A stop that a signal asked for
(:func:`~zonedev.rt.outcome.request_stop`) ends the search at the next execution boundary with
the findings so far (``Result.stopped == "interrupted"``).  ``checkpoint``: a file the
exploration's state is saved to (every ``checkpoint_every`` seconds and when it stops early);
``resume``: continue from such a file (:mod:`zonedev.rt.checkpoint`).

When something is found, the counterexample with the fewest preemptions is searched for by
preemption-bounded search with bounds 0, 1, 2, ... (within a budget), then replayed with the
event log on to build the interleaving table.
"""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from .dpor import explore_dpor
from .engine import LEDGER_KINDS, Finding, Runner, SetupError, attach_unbalanced
from .explore import explore_dfs, explore_random, explore_stateful_sleep
from .guard import DEFAULT_STEP_TIMEOUT, Interrupted, step_guard
from .outcome import DEFAULT_MEMORY, Budget, Outcome
from .replay import replay
from .scenario import Scenario, resolve

MODES = ("auto", "dpor", "source-dpor", "stateful", "naive", "bounded", "random", "pct")


@dataclass
class Result:
    """What :func:`check` found for one scenario on one kernel."""

    scenario: str
    kernel: str
    mode: str
    params: dict = field(default_factory=dict)
    verdict: str = "ok"              # ok | found | error
    findings: list[Finding] = field(default_factory=list)
    executions: int = 0
    blocked: int = 0
    pruned: int = 0
    steps: int = 0
    states: int = 0
    traces: int = 0
    exhaustive: bool = False
    elapsed: float = 0.0
    error: str = ""
    note: str = ""
    seed: int | None = None
    spec: str = ""                   # FILE::SCENARIO, for replay commands
    stopped: str = ""                # what stopped the search early: time, executions, memory, interrupted, step guard
    bound: int | None = None         # bounded search: the preemption bound
    covered: bool = False            # bounded search: every schedule within the bound was explored
    truncated: int = 0               # executions cut at max_steps: their tails were not explored
    auto: str = ""                   # mode auto: why it ran this search (see :func:`auto_mode`)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def coverage(self) -> str:
        parts = [f"{self.executions} executions"]
        if self.blocked:
            parts.append(f"{self.blocked} sleep-set-blocked" if "dpor" in self.mode else f"{self.blocked} cut")
        if self.mode == "stateful":
            parts.append(f"{self.states} distinct states, {self.pruned} ended at a visited state")
        if self.mode in ("random", "pct") or self.mode.startswith("pct"):
            parts.append(f"{self.traces} distinct traces, {self.states} distinct final states, seed {self.seed}")
        parts.append(self.extent())
        return ", ".join(parts)

    def extent(self) -> str:
        """How much of the space the verdict covers, in words: "exhaustive" only when every
        execution (every Mazurkiewicz trace for DPOR, every state for stateful) was explored to
        its end; a bounded search that finished says "exhaustive up to N preemptions"; anything
        else says what stopped it."""
        if self.exhaustive and not self.truncated:
            return "exhaustive"
        if self.truncated:
            return (f"NOT exhaustive: {self.truncated} execution{'s' if self.truncated != 1 else ''} cut at the "
                    f"step limit (a spin loop or a livelock that keeps changing state)")
        if self.bound is not None and self.covered:
            return f"exhaustive up to {self.bound} preemption{'s' if self.bound != 1 else ''}"
        if self.stopped:
            what = {"time": "the time budget", "executions": "the execution budget", "memory": "the memory budget",
                    "interrupted": "an interrupt"}.get(self.stopped, self.stopped)
            return f"NOT exhaustive: stopped by {what} after {self.executions} executions"
        if self.mode in ("random", "pct") or self.mode.startswith("pct"):
            return "NOT exhaustive: sampled schedules"
        return "NOT exhaustive"

    def summary(self) -> str:
        if self.verdict == "error":
            return f"{self.scenario}  {self.kernel}  ERROR  {self.error}"
        if self.verdict == "ok":
            head = f"no violation, {self.executions} executions"
        else:
            kinds = sorted({f.kind for f in self.findings})
            head = f"FOUND {len(self.findings)} ({', '.join(kinds)})"
        return (f"{self.scenario}  {self.kernel}  {head}  [{self.mode}: {self.coverage()}]  "
                f"steps {self.steps}  {self.elapsed:.2f}s")

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "kernel": self.kernel, "mode": self.mode, "params": self.params,
            "verdict": self.verdict, "executions": self.executions, "blocked": self.blocked,
            "pruned": self.pruned, "steps": self.steps, "states": self.states, "traces": self.traces,
            "exhaustive": self.exhaustive, "seconds": round(self.elapsed, 4), "error": self.error,
            "note": self.note, "seed": self.seed, "coverage": self.coverage(), "stopped": self.stopped,
            "extent": self.extent(), "bound": self.bound,
            "exhaustive_up_to": self.bound if self.bound is not None and self.covered and not self.truncated
            and not self.exhaustive else None,
            "truncated": self.truncated, "auto": self.auto or None,
            "findings": [dict(f.as_dict(), table=f.table, names=f.names) for f in self.findings],
        }


class Results(list):
    """What :func:`check` returns for several kernels: one :class:`Result` per kernel."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self)

    def verdicts(self) -> dict[str, list[str] | str]:
        """{kernel: "safe" or the sorted finding kinds} (``error`` for a run that could not start)."""
        from .expect import verdict_of
        return {r.kernel: ("error" if r.verdict == "error" else verdict_of(f.kind for f in r.findings)) for r in self}

    def summary(self) -> str:
        return "\n".join(r.summary() for r in self)


def build_kernel(scenario: Scenario, kernel: Any, patches: tuple = (), without: tuple = ()) -> tuple[Any, str]:
    """The kernel prototype (None for kernel-free scenarios) and its label.  ``kernel`` is a
    kernel name, or a kernel already built (``zonedev.patches.kernel_at``: the series up to one
    patch), which is used as it is."""
    if not scenario.kernel:
        return None, "-"
    if kernel is not None and not isinstance(kernel, str):
        return kernel, kernel.name
    from ..patches import kernel as make_kernel
    from ..sync.world import World, use_world
    name = kernel or (scenario.kernels[0] if scenario.kernels else "newest")
    with use_world(World()):       # the prototype's world is its own, not the caller's (a REPL's)
        proto = make_kernel(name, without=tuple(without), extra=tuple(patches))
    return proto, getattr(proto, "name", name) or name


def _merge(into: dict, f: Finding) -> None:
    old = into.get(f.signature)
    if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
        into[f.signature] = f


def check(scenario: Scenario | str, kernel: Any = None, *, params: dict | None = None,
          mode: str = "auto", patches: tuple | list = (), without: tuple | list = (),
          preemptions: int | None = None, seed: int = 0, depth: int = 3,
          executions: int | None = None, seconds: float | None = None, minimize: bool = True,
          stop_first: bool = False, symmetry: bool = True, tables: bool = True,
          progress: Callable[[int], None] | None = None, max_steps: int = 20000,
          observe: bool | None = None, memory: int | None = DEFAULT_MEMORY,
          step_timeout: float | None = DEFAULT_STEP_TIMEOUT, checkpoint: str | None = None,
          checkpoint_every: float = 60.0, resume: str | None = None, jobs: int = 1,
          backend: str = "process", address: str | None = None,
          on_finding: Callable[[Finding, int, float], None] | None = None) -> Result:
    """Explore ``scenario`` on ``kernel``; see the module docstring for the modes.

    ``on_finding(finding, executions, seconds)`` is called once, at the end of the execution
    that found the first finding (before the search goes on and the counterexample is
    minimised): what a user waiting for a bug wants to see first.

    ``kernel`` takes what ``--kernel`` takes: a modelled name or a version as people write it
    (``6.12``, ``6.1.0-56-amd64``), and then a :class:`Result` comes back; or a comma list, a
    list, or ``all``, and then :class:`Results` (one Result per modelled kernel, in order)."""
    if isinstance(kernel, (list, tuple)) or isinstance(kernel, str) and ("," in kernel or kernel.strip() == "all"):
        from ..patches import resolve_list
        if checkpoint or resume:
            raise ValueError("checkpoint: a checkpoint is of one scenario on one kernel")
        return Results(check(scenario, r.name, params=params, mode=mode, patches=patches, without=without,
                             preemptions=preemptions, seed=seed, depth=depth, executions=executions,
                             seconds=seconds, minimize=minimize, stop_first=stop_first, symmetry=symmetry,
                             tables=tables, progress=progress, max_steps=max_steps, observe=observe,
                             memory=memory, step_timeout=step_timeout, jobs=jobs, backend=backend,
                             address=address, on_finding=on_finding)
                       for r in resolve_list(list(kernel) if isinstance(kernel, (list, tuple)) else [kernel]))
    entered = time.perf_counter()          # the time budget covers building the kernel too
    spec = ""
    if isinstance(scenario, str):
        spec = scenario
        found = resolve(scenario)
        if len(found) != 1:
            raise ValueError(f"{scenario} names {len(found)} scenarios; say FILE::NAME")
        scenario = found[0]
    else:
        spec = f"{scenario.file}::{scenario.name}" if scenario.file else scenario.name
    if executions is not None and (not isinstance(executions, int) or executions < 1):
        raise ValueError(f"executions={executions!r}: need at least 1")
    if seconds is not None and not (isinstance(seconds, (int, float)) and 0 < seconds < float("inf")):
        raise ValueError(f"seconds={seconds!r}: need a finite number of seconds > 0")
    if preemptions is not None and (not isinstance(preemptions, int) or preemptions < 0):
        raise ValueError(f"preemptions={preemptions!r}: need 0 or more")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    why = ""
    if mode == "auto":
        mode = "bounded" if preemptions is not None else (
            scenario.mode if scenario.mode != "auto" else "")
        why = "--preemptions given" if preemptions is not None else (
            "the scenario declares it" if mode else "")
    if mode == "bounded" and preemptions is None:
        preemptions = 2
    proto, klabel = build_kernel(scenario, kernel, tuple(patches), tuple(without))
    runner = Runner(scenario, proto, params)
    # (auto's own choice is made under the step guard, below: it runs the setup once)
    res = Result(scenario.name, klabel, mode or "auto", dict(runner.params), spec=spec)
    res.auto = why
    from .checkpoint import Checkpoints
    cps = Checkpoints(checkpoint, resume, identity=dict(
        scenario=spec, kernel=klabel, mode=mode or "auto", params=res.params, preemptions=preemptions,
        seed=seed, depth=depth, symmetry=symmetry, max_steps=max_steps))
    if on_finding is not None:
        progress = _first_finding_hook(progress, on_finding)
    budget = Budget(executions, seconds, progress, stop_first, max_steps, memory=memory,
                    checkpoint=cps.save if checkpoint else None, checkpoint_every=checkpoint_every,
                    resume=cps.load())
    if on_finding is not None:
        progress.budget = budget
    if seconds:
        budget.deadline = entered + seconds
    t0 = time.perf_counter()
    first: Outcome | None = None      # auto's Optimal-DPOR, when it went on as the stateful search
    try:
        # a step longer than the whole time budget is past the budget too
        guard = min(step_timeout, seconds) if step_timeout and seconds else step_timeout
        with step_guard(runner, guard, budget), worlds_die_young(), runner.reusing():
            if not mode:
                mode, why = auto_mode(runner, symmetry)
                res.mode, res.auto = mode, why
            out = None
            if mode == "dpor" and why == AUTO_DIFFERENT and executions is None and observe is not False and not (
                    checkpoint or resume) and scenario.kernel:
                # auto, threads that differ: Optimal-DPOR (split with --jobs: its budget in
                # executions stays exact), but a search it has not finished after AUTO_SWITCH
                # executions goes to the stateful search (docs/scale.md)
                budget.executions = AUTO_SWITCH
                if jobs > 1 or backend != "process":
                    from .parallel import explore_parallel
                    first = explore_parallel(runner, budget, True, jobs, backend, address,
                                             _job(spec, klabel, proto, res.params, patches, without),
                                             step_timeout=step_timeout)
                else:
                    from .observe import Observer
                    with Observer() as obs:
                        first = explore_dpor(runner, budget, obs, optimal=True)
                budget.executions = None
                if first.exhaustive or budget.reason != "executions" or (first.findings and stop_first):
                    out = first
                    first = None
                else:
                    budget.reason = ""
                    mode = "stateful"
                    res.mode = mode
                    res.auto = why = (f"no two threads identical: Optimal-DPOR, not finished after "
                                      f"{AUTO_SWITCH:,} executions: the stateful search")
            if out is not None:
                pass                                  # auto's Optimal-DPOR above was the whole search
            elif mode in ("dpor", "source-dpor"):
                if observe is None:
                    observe = scenario.kernel
                optimal = mode == "dpor"
                split_why = _unsplittable(mode, checkpoint, resume) if (
                    jobs > 1 or backend != "process") else "one job"
                if not split_why:
                    from .parallel import explore_parallel
                    out = explore_parallel(runner, budget, bool(observe), jobs, backend, address,
                                           _job(spec, klabel, proto, res.params, patches, without),
                                           step_timeout=step_timeout)
                elif observe:
                    from .observe import Observer
                    with Observer() as obs:
                        out = explore_dpor(runner, budget, obs, optimal=optimal)
                else:
                    out = explore_dpor(runner, budget, optimal=optimal)
            elif mode == "stateful":
                if scenario.kernel and SLEEP_SETS and not (checkpoint or resume) and identical_threads(runner) == []:
                    from .observe import Observer
                    with Observer() as obs:
                        out = explore_stateful_sleep(runner, budget, obs, symmetry=symmetry)
                else:
                    out = explore_dfs(runner, budget, stateful=True, symmetry=symmetry)
            elif mode == "naive":
                out = explore_dfs(runner, budget)
            elif mode == "bounded":
                out = explore_dfs(runner, budget, bound=preemptions)
                res.mode = f"bounded({preemptions})"
            elif mode in ("random", "pct"):
                pct = depth if mode == "pct" else None
                split_why = _unsplittable(mode, checkpoint, resume) if (
                    jobs > 1 or backend != "process") else "one job"
                if not split_why:
                    from .ranges import explore_random_parallel
                    out = explore_random_parallel(runner, budget, seed, pct, jobs, backend, address,
                                                  _job(spec, klabel, proto, res.params, patches, without),
                                                  step_timeout=step_timeout)
                else:
                    out = explore_random(runner, budget, seed=seed, pct_depth=pct)
                res.seed = seed
                if pct is not None:
                    res.mode = f"pct(d={depth})"
            if first is not None:        # what Optimal-DPOR found before the switch counts too
                _after_switch(out, first)
                first = None
            findings = dict(out.findings)
            if findings and minimize and budget.reason in ("", "executions"):
                _minimize(runner, findings, out, seconds, budget.deadline)
            res.findings = sorted(findings.values(), key=lambda f: (f.preemptions, f.steps))
            for f in res.findings:
                if f.kind == "step_timeout":          # its replay would spin as long again
                    continue
                if tables:
                    _tabulate(runner, f)
                elif f.kind in LEDGER_KINDS:
                    attach_unbalanced(f, replay(runner, f.schedule).unbalanced)
    except SetupError as e:
        res.verdict = "error"
        res.error = str(e)
        res.elapsed = time.perf_counter() - t0
        return res
    except Interrupted:      # a second signal: what the explorer had, without tables
        out = budget.out or Outcome(mode or "auto")
        if first is not None and out is not first:
            _after_switch(out, first)
        budget.reason = "interrupted"
        res.findings = sorted(out.findings.values(), key=lambda f: (f.preemptions, f.steps))
    res.elapsed = time.perf_counter() - t0
    res.executions, res.blocked, res.pruned = out.executions, out.blocked, out.pruned
    res.steps, res.states, res.traces = out.steps, out.states, out.traces
    res.exhaustive, res.note = out.exhaustive and not out.truncated, out.note
    res.covered, res.truncated = out.covered, out.truncated
    if mode == "bounded":
        res.bound = preemptions
    res.stopped = budget.reason if not out.exhaustive else ""
    if checkpoint and out.exhaustive:      # nothing left to resume
        cps.remove()
    if res.stopped and budget.note():
        res.note = "; ".join(x for x in (budget.note(), res.note) if x)
    res.verdict = "found" if res.findings else "ok"
    return res


#: the collector's youngest generation during a search (CPython's default: 700 allocations)
YOUNG = 5000


@contextmanager
def worlds_die_young() -> Any:
    """During a search, the garbage collector's first generation holds ``YOUNG`` objects
    before it is collected (the caller's thresholds come back after).  Every execution starts
    from a new copy of the post-setup world, a graph of reference cycles that only the collector
    frees; with CPython's 700 most copies were still alive at a first-generation collection,
    moved to the second, and freed there at a higher cost: the collector took 19 % of
    ``release_vs_fault``'s Optimal-DPOR search, and the search runs 6-8 % faster with 5,000
    (``fault_vs_migrate`` likewise; no change on ``getput`` or the stateful search)."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], YOUNG), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _after_switch(out: Outcome, first: Outcome) -> None:
    """The stateful search's outcome ``out`` takes what auto's Optimal-DPOR (``first``) found
    before the switch (by :meth:`Outcome.add`'s rule) and its steps, and says it ran."""
    for sig, f in first.findings.items():
        old = out.findings.get(sig)
        if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
            out.findings[sig] = f
    out.steps += first.steps
    ran = f"Optimal-DPOR ran {first.executions:,} executions first" + (
        f" (and {first.blocked:,} sleep-set-blocked)" if first.blocked else "")
    out.note = "; ".join(x for x in (ran, out.note) if x)


def _job(spec: str, klabel: str, proto: Any, params: dict, patches: Any, without: Any) -> dict:
    """What a Ray worker needs to rebuild the runner (:mod:`zonedev.rt.backends.ray_backend`)."""
    return dict(spec=spec, kernel=klabel if proto is not None else None, params=params,
                patches=[str(x) for x in patches], without=list(without))


def auto_mode(runner: Runner, symmetry: bool = True) -> tuple[str, str]:
    """What ``auto`` runs when neither the scenario nor ``--preemptions`` decides: the stateful
    search with symmetry when two or more threads are *identical* -- equal at the start (the
    same function, equal captured values: ``Run([user] * 3)``, users made in a loop) so that
    the search may treat them as interchangeable -- and the start state gets a key; otherwise
    Optimal-DPOR.  Returns (mode, why).

    Why this rule (docs/checker.md, docs/scale.md): identical threads doing gets and puts on one
    refcount are DPOR's worst case (every pair of steps races, every order is a new trace) and
    the stateful search's best (their orders reach few states, and permutations of identical
    threads are one state).  Threads that differ are DPOR's: measured on the library, DPOR
    needs 8-75x fewer executions than the stateful search (with its sleep sets) wherever threads
    differ, even when all they share is a refcount (scenarios/shapes.py::fork_exit_vs_unbind: 12
    against 907), because wakeup trees reverse only races while sleep sets only skip diamonds.
    One setup decides (about a millisecond); a setup that fails raises :class:`SetupError`, the
    run's error (call it under the step guard)."""
    if not symmetry:
        return "dpor", "symmetry is off: Optimal-DPOR"
    same = identical_threads(runner)
    if same is None:
        return "dpor", "the start state has no key: Optimal-DPOR"
    if runner.n < 2:
        return "dpor", "one thread: Optimal-DPOR"
    if same and runner.run.symmetric:
        return "stateful", (f"identical threads ({', '.join(runner.names[t] for t in same)}): "
                            f"the stateful search with symmetry")
    if same:
        return "dpor", "Run(symmetric=False): Optimal-DPOR"
    return "dpor", AUTO_DIFFERENT


#: auto's reason for Optimal-DPOR on threads that differ; such a search, if it has not finished
#: after AUTO_SWITCH executions, goes on as the stateful search (with sleep sets), which finishes
#: the long HMM races DPOR does not (docs/scale.md: the 3-thread HMM shape)
AUTO_DIFFERENT = "no two threads identical: Optimal-DPOR"
AUTO_SWITCH = 20_000


#: the stateful search uses sleep sets when the threads differ (``explore_stateful_sleep``);
#: False restores the plain search (for benchmarks comparing the two in one run)
SLEEP_SETS = True


def identical_threads(runner: Runner) -> list[int] | None:
    """The threads equal at the start to another thread (same function, equal captured values),
    from one setup; None when the start state has no key."""
    from .state import StateKeys
    runner.begin()                 # a setup that fails raises SetupError: the run's error
    try:
        keys = StateKeys(runner, True)
        keys.reset()
        if keys.key() is None:
            return None
        return keys.identical()
    finally:
        runner.end()


def _first_finding_hook(progress: Callable[[int], None] | None,
                        on_finding: Callable[[Finding, int, float], None]) -> Callable[[int], None]:
    """A progress callback (asked at every execution boundary) that also reports the first
    finding of the exploration the budget it is given to watches (``hook.budget``)."""
    t0 = time.perf_counter()
    told = []

    def hook(execs: int) -> None:
        out = hook.budget.out if hook.budget is not None else None
        if not told and out is not None and out.findings:
            told.append(1)
            on_finding(next(iter(out.findings.values())), execs, time.perf_counter() - t0)
        if progress is not None:
            progress(execs)

    hook.budget = None
    return hook


def _unsplittable(mode: str, checkpoint: str | None, resume: str | None) -> str:
    """Why an exploration runs in one process although jobs were asked for ("" when it can be
    split).  Optimal-DPOR splits by leaves of its wakeup trees (:mod:`zonedev.rt.parallel`),
    random and PCT by index ranges (:mod:`zonedev.rt.ranges`, where a budget in executions stays
    exact)."""
    if mode not in ("dpor", "random", "pct"):
        return f"{mode} runs in one process"
    if checkpoint or resume:
        return "checkpoints are of one process"
    return ""


def _minimize(runner: Runner, findings: dict, out: Outcome, seconds: float | None,
              deadline: float | None = None) -> None:
    """Search with preemption bounds 0, 1, ... for counterexamples with fewer preemptions
    (within 10 s, and within what is left of the time budget)."""
    worst = max(f.preemptions for f in findings.values())
    left = 50000
    limit = time.perf_counter() + (min(10.0, seconds) if seconds else 10.0)
    if deadline is not None:
        limit = min(limit, deadline)
    for bound in range(worst):
        if all(f.preemptions <= bound for f in findings.values()):
            break
        remaining = limit - time.perf_counter()
        if remaining <= 0 or left <= 0:
            break
        o = explore_dfs(runner, Budget(executions=left, seconds=remaining), bound=bound)
        left -= o.executions + o.blocked
        for f in o.findings.values():
            _merge(findings, f)


def _tabulate(runner: Runner, f: Finding) -> None:
    from ..report.table import render
    trace = replay(runner, f.schedule)
    again = [g for g in trace.findings if g.signature == f.signature]
    marks = {f.step} if f.step >= 0 else set()
    upto = f.step if 0 <= f.step < len(trace.steps) - 13 else None
    f.table = render(trace, marks, upto)
    if f.kind in LEDGER_KINDS:
        attach_unbalanced(f, trace.unbalanced)
    if not again:
        f.extra["replay"] = "the replay did not reproduce this finding"
