"""One Optimal-DPOR exploration split across worker processes (``check --jobs N``) or Ray tasks
(``--backend ray``), with the answer of one process: the same executions, sleep-set-blocked
count, steps, findings and counterexamples.

How it is split.  The sequential search (:func:`~zonedev.rt.dpor.explore_dpor`) is cut at a
depth ``D``: a *unit* is the exploration stack right after a backtrack to a node ``j`` (a
replayable schedule prefix, the choices made and the wakeup subtree still to explore there),
and a worker explores everything below the first ``max(j + 1, D)`` events of it, backtracking
only at nodes at or below that floor.  What the unit learns about the nodes above its floor
comes back as data: the stack cut at the floor, and the wakeup sequences its races ask for at
those nodes, in the order found (``Outcome.log``).  The coordinator owns the nodes above the
floor and applies units' results *in the order the sequential search would have explored
them* (depth-first, left to right): it inserts the logged sequences into its wakeup trees,
backtracks (:func:`~zonedev.rt.dpor.backtrack_optimal`) and so finds the next unit.  Because
every step the sequential search takes above the floor is taken in the same order on the same
data, the committed exploration is the sequential one.

Where the parallelism comes from: while unit ``k`` runs, the coordinator guesses the next
units by backtracking a copy of its stack as if unit ``k`` asked for nothing, and hands those
out.  A guessed unit's result is used only when the true unit (computed once unit ``k``'s
result is in) is the same input -- compared by a digest of everything the worker reads (the
stack, the unit's wakeup subtree, the floor) -- otherwise it is run again.  A wrong guess costs
time, never the answer.  The units of one run are ordered; the count of re-runs is in the
result's note.

Not split (one process; ``check`` says so in the note): source-DPOR, the stateful search,
random/PCT, budgets in executions, checkpoints.  ``stop_first`` stops at the first unit, in
the sequential order, that found something (each unit stops at its first finding), which is
where one process stops.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import time
from contextlib import nullcontext
from typing import Any, Callable

from .dpor import backtrack_optimal, explore_dpor, insert
from .guard import step_guard
from .outcome import Budget, Outcome, stop_requested

#: the time a unit should take (the split depth adapts to it), seconds
UNIT = 0.05

#: guessing ahead stops when fewer of the guesses than this are used (after the first 8)
GUESS_HITS = 0.4

#: seconds of units run in the calling process before workers start
WARMUP = 0.3

#: the fork workers' runner and settings (set in the parent before the pool forks)
_JOB: dict[str, Any] = {}
_OBS: list = []


def _key(unit: tuple) -> bytes:
    """A digest of a unit's whole input, independent of object identity (``repr``)."""
    return hashlib.blake2b(repr(unit).encode(), digest_size=20).digest()


def run_unit(runner: Any, payload: bytes, obs: Any, max_steps: int, deadline: float | None,
             step_timeout: float | None, stop_first: bool = False) -> bytes:
    """Explore one unit (a pickled ``(stack, target, floor)``; ``stack`` None: from scratch)
    and return its pickled result.  ``obs``: the installed observer (kernel scenarios)."""
    stack, target, floor = pickle.loads(payload)
    if stack is not None:                   # the unit's wakeup subtree travels flat
        stack = ([None] * target + [[_unflat(stack[0])]],) + tuple(stack[1:])
    seconds = None
    if deadline is not None:
        seconds = max(0.001, deadline - time.time())
    budget = Budget(seconds=seconds, max_steps=max_steps, stop_first=stop_first)
    start = None if stack is None else {"stack": stack, "target": target}
    with step_guard(runner, step_timeout, budget):
        o = explore_dpor(runner, budget, obs, optimal=True, start=start, floor=floor)
    return pickle.dumps({
        "executions": o.executions, "blocked": o.blocked, "steps": o.steps, "note": o.note,
        "findings": list(o.findings.values()), "exhaustive": o.exhaustive,
        "stack": None if o.stack is None else (_flat_levels(o.stack[0], target),) + tuple(o.stack[1:]),
        "log": o.log, "reason": budget.reason, "target": target, "elapsed": o.elapsed,
    }, protocol=pickle.HIGHEST_PROTOCOL)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _JOB.get("observe"):
        from .observe import Observer
        obs = Observer()
        obs.__enter__()          # for this worker's lifetime
        _OBS.append(obs)


def _fork_unit(payload: bytes) -> bytes:
    j = _JOB
    return run_unit(j["runner"], payload, _OBS[0] if _OBS else None, j["max_steps"], j["deadline"],
                    j["step_timeout"], j["stop_first"])


class _ProcessBackend:
    """A pool of forked worker processes; the runner is inherited, not rebuilt."""

    def __init__(self, jobs: int, runner: Any, observe: bool, max_steps: int, deadline: float | None,
                 step_timeout: float | None, stop_first: bool) -> None:
        import multiprocessing
        _JOB.update(runner=runner, observe=observe, max_steps=max_steps, deadline=deadline,
                    step_timeout=step_timeout, stop_first=stop_first)
        self.pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init)
        self.submitted = 0

    def submit(self, payload: bytes) -> Any:
        self.submitted += 1
        return self.pool.apply_async(_fork_unit, (payload,))

    @staticmethod
    def ready(handle: Any) -> bool:
        return handle.ready()

    @staticmethod
    def get(handle: Any) -> bytes:
        return handle.get()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def explore_parallel(runner: Any, budget: Budget, observe: bool, jobs: int, backend: str = "process",
                     address: str | None = None, job: dict | None = None, split: int | None = None,
                     warmup: float | None = None, step_timeout: float | None = None) -> Outcome:
    """Optimal-DPOR over ``jobs`` workers; see the module docstring.  ``job``: what a Ray
    worker needs to rebuild the runner (:func:`zonedev.rt.backends.ray_backend.make_backend`).
    ``split``: the depth ``D`` (default: adaptive, see docs/scale.md).  ``warmup``:
    seconds of units run in this process before workers start (small searches never start
    any)."""
    out = Outcome("optimal-dpor")
    budget.out = out
    if warmup is None:
        warmup = WARMUP
    t0 = time.perf_counter()
    deadline = time.time() + budget.seconds if budget.seconds else None
    max_steps = budget.max_steps
    adapt = split is None
    if split is None:
        probe = explore_dpor(runner, Budget(executions=1, max_steps=max_steps), None, optimal=True)
        split = max(1, probe.steps * 3 // 4)     # small units first; they grow below
    state: list | None = None           # the committed stack above the floor
    target = 0
    payload = pickle.dumps((None, 0, split))
    key = _key((None, 0, split))
    handles: dict[bytes, Any] = {}      # key -> backend handle (submitted units)
    spare: dict[bytes, bytes] = {}      # key -> pickled result, run but not committed yet
    back = None
    pool = jobs - 1 if backend == "process" else jobs    # this process runs the units in order
    units = remote = worked = 0
    depths = []
    local_obs = None
    if observe:
        from .observe import Observer
        local_obs = Observer
    try:
        while True:
            res_b = spare.pop(key, None)
            on_worker = res_b is not None or key in handles
            if res_b is not None:
                remote += 1
            elif key in handles:              # guessed: it is running on a worker
                res_b = _wait(back, handles.pop(key))
                remote += 1
                if res_b is None:             # a stop was asked for while waiting
                    budget.exhausted(out.executions + out.blocked)
                    break
            else:
                if back is None and jobs > 1 and time.perf_counter() - t0 >= warmup:
                    back = _make_backend(backend, pool, runner, observe, max_steps, deadline,
                                         step_timeout, address, job, budget.stop_first)
                if back is not None:
                    decided = back.submitted - len(handles) - len(spare)
                    if decided < 8 or remote >= GUESS_HITS * decided:
                        _speculate(state, target, split, back, handles, spare, pool)
                # the unit the sequential order needs now runs here, the guesses on the workers
                with (local_obs() if local_obs else nullcontext()) as obs:
                    res_b = run_unit(runner, payload, obs, max_steps, deadline, None, budget.stop_first)
            units += 1
            depths.append(split)
            res = pickle.loads(res_b)
            # -- commit, in the sequential order ------------------------------------------------
            out.executions += res["executions"]
            if on_worker:
                worked += res["executions"] + res["blocked"]
            out.blocked += res["blocked"]
            out.steps += res["steps"]
            if res["note"] and not out.note:
                out.note = res["note"]
            for f in res["findings"]:
                old = out.findings.get(f.signature)
                if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
                    out.findings[f.signature] = f
            if not res["exhaustive"]:
                if res["reason"]:
                    budget.stop(res["reason"])
                break
            state = _merge(state, res)
            if adapt:
                # re-split: units of about UNIT seconds (a deeper floor makes smaller units)
                if res["elapsed"] > 4 * UNIT:
                    split += 1
                elif res["elapsed"] < UNIT / 4 and split > 1:
                    split -= max(1, split // 8)
            if budget.stop_first and out.findings:
                break
            j = backtrack_optimal(state, len(state[6]) - 1, 0)
            if j < 0:
                out.exhaustive = True
                break
            if budget.exhausted(out.executions + out.blocked):
                break
            target = j
            unit = _unit_of(state, j, split)
            key = _key(unit)
            payload = pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        if back is not None:
            back.close()
    if back is not None:
        out.note = "; ".join(x for x in (out.note, f"split at depth {min(depths)}-{max(depths)}: {units} units on {jobs} "
                                                   f"workers, {back.submitted} guessed ahead, {remote} of them used "
                                                   f"({worked} of the {out.executions + out.blocked} executions)") if x)
    out.elapsed = time.perf_counter() - t0
    return out


def _make_backend(backend: str, jobs: int, runner: Any, observe: bool, max_steps: int,
                  deadline: float | None, step_timeout: float | None, address: str | None,
                  job: dict | None, stop_first: bool) -> Any:
    if backend == "ray":
        from .backends.ray_backend import RayBackend
        return RayBackend(jobs, job or {}, observe, max_steps, deadline, step_timeout, address, stop_first)
    return _ProcessBackend(jobs, runner, observe, max_steps, deadline, step_timeout, stop_first)


def _wait(back: Any, handle: Any) -> bytes | None:
    """The unit's result; None if a stop (a signal) is asked for meanwhile."""
    while not back.ready(handle):
        if stop_requested():
            return None
        time.sleep(0.005)
    return back.get(handle)


def _flat(node: list) -> list:
    """A wakeup (sub)tree as a flat preorder list of ``(depth, thread, reads, writes)``: trees
    are as deep as executions are long, too deep for pickle and repr."""
    out = []
    todo = [(node, 0)]
    while todo:
        n, d = todo.pop()
        out.append((d, n[0], n[1], n[2]))
        for c in reversed(n[3]):
            todo.append((c, d + 1))
    return out


def _unflat(flat: list) -> list:
    root: list = []
    path: list = []
    for d, t, r, w in flat:
        n = [t, r, w, []]
        if d == 0:
            root = n
            path = [n]
        else:
            del path[d:]
            path[d - 1][3].append(n)
            path.append(n)
    return root


def _flat_levels(wut: list, j: int) -> list:
    """The levels ``j`` and below of a stack's wakeup trees, flat: level ``j``'s whole list
    under a root of its own (its deeper levels are the first child's children)."""
    return _flat([None, None, None, wut[j]]) if len(wut) > j else []


def _levels(flat: list, j: int, wut: list) -> list:
    """``wut`` (levels above ``j``) extended by the levels a flat tree from :func:`_flat_levels`
    holds: level ``i + 1`` is level ``i``'s first child's children."""
    wut = wut[:j]
    if not flat:
        return wut
    level = _unflat(flat)[3]
    while level:
        wut.append(level)
        level = level[0][3]
    return wut


def _unit_of(state: list, j: int, split: int) -> tuple:
    """The input of the unit at node ``j`` of the committed stack (which ends there); its
    wakeup subtree flat."""
    stack = (_flat(state[0][j][0]),) + tuple(state[1:])
    return (stack, j, max(j + 1, split))


def _merge(state: list | None, res: dict) -> list:
    """The committed stack after a unit: its nodes from the unit's own stack (the unit's wakeup
    node replaces ours), then the sequences it logged inserted in the order it found them."""
    stack = list(res["stack"])
    j = res["target"]
    if state is None:
        new = [_levels(stack[0], 0, [])] + stack[1:]
    else:
        wut = state[0][:j + 1]
        got = _levels(stack[0], j, [])          # [level j (the unit's node only), j + 1, ...]
        wut[j][0] = got[0][0]
        wut.extend(got[1:])
        new = [wut] + stack[1:]
    for e, v in res["log"]:
        insert(new[0][e], v)
    return new


def _speculate(state: list | None, target: int, split: int, back: Any, handles: dict, spare: dict,
               jobs: int) -> None:
    """Hand out the units that follow the running one if it asks for nothing above its floor."""
    if state is None:
        return
    for k in [k for k, h in handles.items() if back.ready(h)]:
        spare[k] = back.get(handles.pop(k))
    while len(spare) > 4 * jobs:                # results no unit asked for: the oldest go
        del spare[next(iter(spare))]
    room = jobs - len(handles)
    if room <= 0:
        return
    guess = _copy(state)
    j = target
    while room > 0:
        j = backtrack_optimal(guess, j, 0)
        if j < 0:
            return
        unit = _unit_of(guess, j, split)
        k = _key(unit)
        if k not in handles and k not in spare:
            handles[k] = back.submit(pickle.dumps(unit, protocol=pickle.HIGHEST_PROTOCOL))
            room -= 1


def _copy(state: list) -> list:
    """A deep copy of a committed stack (the wakeup trees rebuilt from a flat copy)."""
    wut = _levels(_flat_levels(state[0], 0), 0, [])
    rest = [list(x) for x in state[1:]]
    sx = rest[4]                          # node i: None or {thread: extras}
    rest[4] = [None if d is None else dict(d) for d in sx]
    return [wut] + rest


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):     # pragma: no cover - not Linux
        return os.cpu_count() or 1
