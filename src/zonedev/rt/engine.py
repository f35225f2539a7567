"""Running one execution of a scenario under a controlled schedule.

Threads are greenlets from a pool that lives as long as the :class:`Runner` (creating a greenlet
costs ~8 us, switching ~0.5 us).  A thread runs until the model calls ``world.point(...)``; the
runner's :meth:`Runner.point` records the pending step (object, kind, label, ready, reads) and
switches back to the checker.  The checker then picks a thread with :meth:`Runner.step`: the
thread performs its pending access and runs on to its next point (or returns).

The runner knows nothing about pages: it sees sync objects, kinds of access, and labels.
"""

from __future__ import annotations

import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from greenlet import GreenletExit, getcurrent, greenlet

from . import snapshot as _snapshot
from .guard import Interrupted, StepTimeout
from .scenario import Run, Scenario
from ..sync.retry import RETRY_LABELS
from ..sync import world as _world_mod
from ..sync.world import IDLE_LABELS, Scheduler, World, set_world

READ, WRITE, ACQUIRE, RELEASE = "r", "w", "acq", "rel"


class Abort(BaseException):
    """Raised in a suspended thread to unwind it when an execution is cut short (a point raises
    it when resumed with :attr:`Runner.aborting` set)."""


class SetupError(Exception):
    """The scenario function itself failed (not a finding: the scenario is broken)."""


#: finding kinds that list the references nobody put back (``rt.ledger``)
LEDGER_KINDS = frozenset({"hang", "leak", "livelock"})


def attach_unbalanced(f: "Finding", held: list) -> None:
    """Give a leak/hang/livelock finding the unbalanced gets of its replay (text and JSON):
    the gets threads made first (the usual suspects), then those of the setup."""
    held = sorted(held, key=lambda e: (e.step < 0, e.step))
    f.extra["unbalanced"] = [e.as_dict() for e in held]
    text = "; ".join(e.text() for e in held) if held else "no counted reference left unbalanced"
    base = f.extra.setdefault("detail0", f.detail)
    f.detail = f"{base}; unbalanced: {text}" if base else f"unbalanced: {text}"


class Finding:
    """Something wrong found in one execution."""

    __slots__ = ("kind", "message", "step", "thread", "detail", "schedule", "preemptions",
                 "steps", "names", "table", "signature", "extra")

    def __init__(self, kind: str, message: str, step: int, thread: str | None,
                 detail: str = "", signature: Any = None) -> None:
        self.kind = kind            # violation kind / hang / leak / invariant / final / exception
        self.message = message
        self.step = step            # index of the step at which it showed (-1: at the end)
        self.thread = thread
        self.detail = detail
        self.schedule = ""          # schedule string (see rt.schedule)
        self.preemptions = 0
        self.steps = 0
        self.names: list[str] = []
        self.table = ""             # the interleaving table (filled in by check)
        self.signature = signature if signature is not None else (kind, message)
        self.extra: dict[str, Any] = {}

    def as_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "message": self.message, "step": self.step,
             "thread": self.thread, "detail": self.detail, "schedule": self.schedule,
             "preemptions": self.preemptions, "steps": self.steps}
        if "unbalanced" in self.extra:
            d["unbalanced"] = self.extra["unbalanced"]
        return d

    def __repr__(self) -> str:
        return f"<Finding {self.kind}: {self.message} @{self.step} [{self.schedule}]>"


def _setup_error(scenario: Scenario, e: BaseException) -> SetupError:
    """``file:line: scenario NAME: Type: message`` for an exception the setup raised: the line
    is the innermost one in the scenario's file (else the scenario's own line)."""
    line = scenario.line
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if fr.filename == scenario.file:
            line = fr.lineno or line
            break
    what = str(e) if isinstance(e, StepTimeout) else f"{type(e).__name__}: {e}".rstrip(": ")
    return SetupError(f"{scenario.file or scenario.name}:{line}: scenario {scenario.name}: {what}")


def _model_frame(tb: Any) -> str:
    """The last frame of a traceback that is model (not checker) code."""
    frames = traceback.extract_tb(tb)
    for fr in reversed(frames):
        if "/zonedev/rt/" not in fr.filename and "/greenlet" not in fr.filename:
            return f"{fr.filename}:{fr.lineno} in {fr.name}: {fr.line or ''}".rstrip()
    return ""


class Runner(Scheduler):
    """Runs executions of one scenario (with fixed parameters) on one kernel."""

    def __init__(self, scenario: Scenario, kernel_proto: Any = None,
                 params: dict[str, Any] | None = None) -> None:
        self.scenario = scenario
        self.kernel_cls = type(kernel_proto) if kernel_proto is not None else None
        self.params = scenario.with_params(params)
        self.fn = scenario.fn
        self.main = getcurrent()
        self.pool: list[greenlet] = []
        self.world: World | None = None
        self.run: Run | None = None
        self.n = 0
        self.names: list[str] = []
        self.cur = 0
        self.aborting = False
        self.record = False
        # per-thread pending step
        self.p_obj: list[Any] = []
        self.p_kind: list[str] = []
        self.p_label: list[str] = []
        self.p_ready: list[Any] = []
        self.p_reads: list[tuple] = []
        self.fin: list[bool] = []
        self.exc: list[Any] = []
        self.fns: list[Callable[[], Any]] = []
        self.prev_world: World | None = None
        self.invariants: list = []
        self.nviol = 0
        self.in_setup = False         # the scenario function is running (the step guard looks)
        self.killed = False           # our greenlets are being killed (GreenletExit from switch)
        self.timed_out = False        # the step guard stopped a thread in this execution
        # a prefix being replayed (:meth:`replay`): the schedule, the next step, the end
        self.rsched: list[int] = []
        self.rp = 0
        self.rend = 0
        # the setup's copier (rt.snapshot), why there is none ("" once built, None: not tried
        # yet), and the seconds fresh setups have taken
        self._plan: Any = None
        #: executions may start from the same copy of the post-setup world, put back as the
        #: setup left it (:meth:`~zonedev.rt.snapshot.Plan.again`): set by :meth:`reusing`
        #: for a search that keeps nothing of an execution after :meth:`end`
        self.reuse = False
        self._plan_why: str | None = None
        self._setup_time = 0.0
        #: installed as each new world's ``on_event`` (the replay's reference ledger)
        self.on_event: Callable[[Any], None] | None = None
        self._order: list[int] = []      # 0 .. n - 1 (begin's schedule)
        self._replay_point: Callable[..., None] | None = None   # this execution's, for replay

    # -- the scheduler interface the world calls -------------------------------------------------
    def point(self, obj: Any, kind: str, label: str, ready: Any, reads: tuple) -> None:
        if self.aborting:
            raise Abort
        t = self.cur
        self.p_obj[t] = obj
        self.p_kind[t] = kind
        self.p_label[t] = label
        self.p_ready[t] = ready
        self.p_reads[t] = reads
        self.main.switch()
        if self.aborting:
            raise Abort

    def _make_point(self, world: World) -> Callable[..., None]:
        """``world.point`` for one execution: :meth:`World.point` and :meth:`point` in one frame."""
        runner = self
        p_obj, p_kind, p_label, p_ready, p_reads = self.p_obj, self.p_kind, self.p_label, self.p_ready, self.p_reads
        switch = self.main.switch
        names = self.names

        def point(obj: Any, kind: str, label: str, ready: Any = None, reads: tuple = ()) -> None:
            world.steps += 1
            if runner.aborting:
                raise Abort
            t = runner.cur
            p_obj[t] = obj
            p_kind[t] = kind
            p_label[t] = label
            p_ready[t] = ready
            p_reads[t] = reads
            try:
                switch()
            except GreenletExit:      # the pool is being collected, not model code raising it
                runner.killed = True
                raise
            if runner.aborting:
                raise Abort
            if kind != "r":
                obj.wver += 1      # performed: a fair retry waiting on obj may go on
                obj.wlast = names[t]

        return point

    def _make_replay_point(self, world: World, normal: Callable[..., None]) -> Callable[..., None]:
        """``world.point`` while :meth:`replay` runs a prefix: the thread that reached its point
        hands over to the thread that performs the next step of the schedule (itself: it just
        goes on), without the checker in between; the last one switches back to the checker
        and puts ``normal`` back."""
        runner = self
        p_obj, p_kind, p_label, p_ready, p_reads = self.p_obj, self.p_kind, self.p_label, self.p_ready, self.p_reads
        switch = self.main.switch
        names = self.names
        pool = self.pool

        def point(obj: Any, kind: str, label: str, ready: Any = None, reads: tuple = ()) -> None:
            world.steps += 1
            if runner.aborting:
                raise Abort
            t = runner.cur
            p_obj[t] = obj
            p_kind[t] = kind
            p_label[t] = label
            p_ready[t] = ready
            p_reads[t] = reads
            i = runner.rp
            try:
                if i < runner.rend:
                    q = runner.rsched[i]
                    runner.rp = i + 1
                    if q != t:
                        runner.cur = q
                        pool[q].switch()
                else:
                    world.point = normal
                    switch()
            except GreenletExit:      # the pool is being collected, not model code raising it
                runner.killed = True
                raise
            if runner.aborting:
                raise Abort
            if kind != "r":
                obj.wver += 1      # performed: a fair retry waiting on obj may go on
                obj.wlast = names[t]

        return point

    def replay(self, sched: list[int], n: int) -> None:
        """Perform the first ``n`` steps of the schedule ``sched`` (thread indexes), from the
        state :meth:`begin` left: what the explorer's replay of a prefix does with
        ``cur = p; step(p)`` for each step, with the threads handing over to each other
        directly (``FAST``) instead of through the checker."""
        if n <= 0:
            return
        pool = self.pool
        if not _world_mod.FAST:
            for i in range(n):
                p = sched[i]
                self.cur = p
                pool[p].switch()
            return
        world = self.world
        normal = world.point
        self.rsched = sched
        self.rp = 1
        self.rend = n
        world.point = self._replay_point
        p = sched[0]
        self.cur = p
        try:
            pool[p].switch()
        finally:
            world.point = normal
            self.rend = 0

    def thread_name(self) -> str:
        return self.names[self.cur] if self.world is not None and self.world.scheduler is self else "setup"

    @contextmanager
    def reusing(self, on: bool = True) -> Iterator[None]:
        """Executions inside start (``on``) or do not start from one copy of the post-setup
        world, put back each time (``reuse``).  ``check`` searches inside it: a search reads
        nothing of an execution's world once it has ended, or reads it only through what the
        put-back keeps (the stateful search's positions at its stack's nodes name the copy's
        own objects, found again by key).  The random walk steps out (``on=False``): its
        distinct final states may hold model objects, which compare by identity, and a copy
        put back would merge states that new copies keep apart."""
        was = self.reuse
        self.reuse = on
        try:
            yield
        finally:
            self.reuse = was

    # -- executions ------------------------------------------------------------------------------
    def _body(self, t: int) -> None:
        main = self.main
        while True:
            try:
                self.fns[t]()
            except Abort:
                pass
            except Interrupted:
                raise
            except GreenletExit as e:
                if self.killed:
                    raise
                self.exc[t] = e
            except BaseException as e:  # model code failed (SystemExit too): a finding, not a crash
                self.exc[t] = e
                if type(e) is StepTimeout:
                    self.timed_out = True
            self.fin[t] = True
            i = self.rp
            if i < self.rend:          # finished inside a replayed prefix: hand over (replay)
                q = self.rsched[i]
                self.rp = i + 1
                self.cur = q
                self.pool[q].switch()
            else:
                main.switch()

    def begin(self, record: bool = False) -> None:
        """Fresh world, kernel and scenario objects; every thread run to its first point.

        ``FAST``, without the event log: once the setup has cost ``snapshot.AFTER`` seconds, a
        :class:`~zonedev.rt.snapshot.Plan` is read from it (when the setup allows: see there),
        and later executions start from a copy of the post-setup world instead of running the
        setup again."""
        self.record = record
        self.timed_out = False
        self.prev_world = _world_mod._current
        plan = self._plan
        self.in_setup = True
        try:
            if plan is not None and not record and self.on_event is None and _world_mod.FAST:
                world, k, run = plan.again() if self.reuse else plan.clone()
                self.world = world
                set_world(world)
            elif (not record and self.on_event is None and _world_mod.FAST and self._plan_why is None
                  and self._setup_time >= _snapshot.AFTER):
                self._plan, made, why = _snapshot.build(lambda: self._fresh(record), lambda m: m)
                self._plan_why = why
                world, k, run = made
            else:
                t0 = time.perf_counter()
                world, k, run = self._fresh(record)
                self._setup_time += time.perf_counter() - t0
        except Interrupted:
            set_world(self.prev_world)
            self.world = None
            raise
        except BaseException as e:   # SystemExit, KeyboardInterrupt from the scenario too
            set_world(self.prev_world)
            self.world = None
            raise _setup_error(self.scenario, e) from None
        finally:
            self.in_setup = False
        if not isinstance(run, Run):
            set_world(self.prev_world)
            self.world = None
            raise SetupError(f"{self.scenario.file}:{self.scenario.line}: scenario {self.scenario.name} "
                             f"returned {type(run).__name__}, not zonedev.Run")
        self.run = run
        n = len(run.fns)
        if n != self.n:
            self.n = n
            self.p_obj = [None] * n
            self.p_kind = [""] * n
            self.p_label = [""] * n
            self.p_ready = [None] * n
            self.p_reads = [()] * n
            self.fin = [False] * n
            self.exc = [None] * n
            self._falses = [False] * n
            self._nones = [None] * n
            main = self.main
            while len(self.pool) < n:
                t = len(self.pool)
                self.pool.append(greenlet(run=lambda t=t: self._body(t), parent=main))
        else:
            self.fin[:] = self._falses
            self.exc[:] = self._nones
            self.p_obj[:] = self._nones
        self.names = run.names
        self.fns = run.fns
        self.invariants = run.invariants
        self.nviol = 0
        self.aborting = False
        world.scheduler = self
        # the world's door, bypassed: the world's own point (count the step, call the scheduler)
        # and the runner's, in one call
        world.point = point = self._make_point(world)
        self._replay_point = self._make_replay_point(world, point)
        # every thread to its first point, in thread order: as a replayed schedule 0, 1, ..,
        # n - 1, each thread starting the next one where it stops (one switch per thread, not
        # two through this one)
        if len(self._order) != n:
            self._order = list(range(n))
        self.replay(self._order, n)

    def _fresh(self, record: bool) -> tuple:
        """Run the setup: a new world (made current), kernel and the scenario's Run."""
        world = World()
        world.record_events = record
        world.on_event = self.on_event
        self.world = world
        set_world(world)
        k = self.kernel_cls() if self.kernel_cls is not None else None
        return world, k, self.fn(k, **self.params)

    def start_findings(self) -> list[Finding] | None:
        """Violations during setup and exceptions before a thread's first point."""
        out = None
        for t in range(self.n):
            if self.exc[t] is not None:
                out = (out or []) + (self.findings_after_step(0, t) or [])
        if out is None and len(self.world.violations) > self.nviol:
            out = self.findings_after_step(0, 0)
        return out

    def step(self, t: int) -> None:
        """Let thread ``t`` perform its pending step and run to its next point."""
        self.cur = t
        self.pool[t].switch()

    def enabled(self, t: int) -> bool:
        if self.fin[t]:
            return False
        r = self.p_ready[t]
        return r is None or r()

    def enabled_mask(self) -> int:
        m = 0
        fin = self.fin
        ready = self.p_ready
        for t in range(self.n):
            if not fin[t]:
                r = ready[t]
                if r is None or r():
                    m |= 1 << t
        return m

    def unfinished(self) -> list[int]:
        return [t for t in range(self.n) if not self.fin[t]]

    def end(self) -> None:
        """Unwind threads that have not finished, and restore the previous world."""
        if self.world is None:
            return
        self.aborting = True
        main_is_cur = getcurrent() is self.main
        for t in (range(self.n) if main_is_cur and not all(self.fin) else ()):
            if not self.fin[t] and main_is_cur:
                self.cur = t
                g = self.pool[t]
                try:
                    if g:
                        # suspended at a point, which raises Abort itself now that aborting is
                        # set: a plain raise costs ~1.7 us a thread, greenlet's throw ~5 us
                        g.switch()
                    else:
                        g.throw(Abort)
                except Abort:
                    pass
                if not self.fin[t]:   # pragma: no cover - model swallowed Abort
                    self.pool[t] = greenlet(run=lambda t=t: self._body(t), parent=self.main)
                    self.fin[t] = True
        self.aborting = False
        self.world.scheduler = None
        self.world.__dict__.pop("point", None)
        set_world(self.prev_world)
        self.world = None

    # -- findings --------------------------------------------------------------------------------
    def findings_after_step(self, i: int, t: int) -> list[Finding] | None:
        """Violations, exceptions and invariant failures the step ``i`` by ``t`` produced."""
        out = None
        w = self.world
        if len(w.violations) > self.nviol:
            out = []
            for v in w.violations[self.nviol:]:
                where = f" pfn {v.pfn:#x}" if v.pfn is not None else ""
                f = Finding(v.kind, f"{v.kind}{where}: {v.words}", i, self.names[t], v.detail,
                            signature=("violation", v.kind))
                out.append(f)
            self.nviol = len(w.violations)
        e = self.exc[t]
        if e is not None:
            self.exc[t] = None
            out = out or []
            where = _model_frame(e.__traceback__)
            if type(e) is StepTimeout:
                f = Finding("step_timeout", str(e), i, self.names[t], e.where,
                            signature=("step_timeout", self.names[t], e.where))
            else:
                f = Finding("exception", f"{type(e).__name__}: {e}".rstrip(": "), i, self.names[t], where,
                            signature=("exception", type(e).__name__, where))
            f.extra["traceback"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            out.append(f)
        for c in self.invariants:
            msg = c.failure()
            if msg is not None:
                out = out or []
                out.append(Finding(c.kind, msg, i, self.names[t], c.name,
                                   signature=(c.kind, c.name)))
        return out

    def findings_at_end(self, nsteps: int) -> list[Finding]:
        """Hang or livelock (some thread unfinished and none can go on), or failed final checks.

        A thread blocked at an idle point (a grace-period kthread with no callbacks, see
        ``IDLE_LABELS``) is not waiting for anything that should have happened.  If a blocked
        thread waits in a retry loop (``RetryLoop``: nothing it read changes any more) the
        finding is a ``livelock`` naming the loops: in the kernel those CPUs spin for ever."""
        out: list[Finding] = []
        if self.timed_out:     # a thread was stopped by the step guard: the rest would be noise
            return out
        labels = self.p_label
        unfinished = [t for t in self.unfinished() if labels[t] not in IDLE_LABELS]
        if unfinished:
            waits = []
            loops = []
            for t in unfinished:
                obj = self.p_obj[t]
                if labels[t] in RETRY_LABELS:
                    loops.append(f"{self.names[t]} retries in {labels[t]} (nothing it reads changes)")
                else:
                    waits.append(f"{self.names[t]} waits in {labels[t]} on {getattr(obj, 'name', obj)}")
            sig = tuple(sorted((self.names[t], labels[t]) for t in unfinished))
            if loops:
                f = Finding("livelock", "no thread can make progress: " + "; ".join(loops + waits), -1, None,
                            signature=("livelock", sig))
                f.extra["loops"] = loops
            else:
                f = Finding("hang", "all unfinished threads are blocked: " + "; ".join(waits), -1, None,
                            signature=("hang", sig))
            f.extra["waiting"] = waits
            out.append(f)
            return out
        for c in self.run.finals:
            try:
                msg = c.failure()
            except Exception as e:  # a final check that itself crashes
                msg = f"{type(e).__name__}: {e}"
            if msg is not None:
                out.append(Finding(c.kind, msg, -1, None, c.name, signature=(c.kind, c.name)))
        return out


#: the code of the ``world.point`` a runner installs (frames the state keys skip)
POINT_CODE = next(c for c in Runner._make_point.__code__.co_consts
                  if getattr(c, "co_name", None) == "point")
