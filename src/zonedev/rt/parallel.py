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
Optimal-DPOR with a budget in executions, checkpoints.  ``stop_first`` stops at the first
unit, in the sequential order, that found something (each unit stops at its first finding),
which is where one process stops.

Random walk and PCT are split by index ranges (:func:`explore_random_parallel`): execution
``i``'s schedule depends only on ``(seed, i)``, so ranges of executions are independent and
their results are committed in index order, with budgets in executions exact.
"""

from __future__ import annotations

import hashlib
import marshal
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
    """A digest of a unit's whole input, independent of object identity: marshal's version 2
    has no back-references, so equal content gives equal bytes (4x faster than ``repr``, which
    remains for what marshal cannot write)."""
    try:
        data = marshal.dumps(unit, 2)
    except ValueError:
        data = repr(unit).encode()
    return hashlib.blake2b(data, digest_size=20).digest()


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
                 step_timeout: float | None, stop_first: bool, fn: Callable[[bytes], bytes] | None = None) -> None:
        import multiprocessing
        _JOB.update(runner=runner, observe=observe, max_steps=max_steps, deadline=deadline,
                    step_timeout=step_timeout, stop_first=stop_first)
        self.pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_init)
        self.fn = fn or _fork_unit
        self.submitted = 0

    def submit(self, payload: bytes) -> Any:
        self.submitted += 1
        return self.pool.apply_async(self.fn, (payload,))

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
                    if state is None:
                        res_b = run_unit(runner, payload, obs, max_steps, deadline, None, budget.stop_first)
                    else:
                        res = _run_live(runner, state, target, max(target + 1, split), obs, max_steps,
                                        deadline, budget.stop_first)
            units += 1
            depths.append(split)
            if res_b is not None:
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
            # the unit's digest finds it among the guesses (none before the workers start)
            key = _key(_unit_of(state, j, split)) if back is not None else None
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
                  job: dict | None, stop_first: bool, kind: str = "dpor") -> Any:
    """``kind``: what the workers run, ``dpor`` units or ``random`` index ranges."""
    if backend == "ray":
        from .backends.ray_backend import RayBackend
        return RayBackend(jobs, job or {}, observe, max_steps, deadline, step_timeout, address, stop_first,
                          kind=kind)
    return _ProcessBackend(jobs, runner, observe, max_steps, deadline, step_timeout, stop_first,
                           fn=_fork_range if kind == "random" else _fork_unit)


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


def _run_live(runner: Any, state: list, target: int, floor: int, obs: Any, max_steps: int,
              deadline: float | None, stop_first: bool) -> dict:
    """:func:`run_unit` on the committed stack itself, in this process: the unit's wakeup subtree
    is explored where it is (no flat copy, no pickling either way) and the result's levels are
    the live ones; :func:`_merge` replaces the committed stack with them right after, and nothing
    else reads that subtree meanwhile (a guess flattens its units as soon as it makes them)."""
    stack = ([None] * target + [[state[0][target][0]]],) + tuple(list(x) for x in state[1:])
    seconds = None
    if deadline is not None:
        seconds = max(0.001, deadline - time.time())
    budget = Budget(seconds=seconds, max_steps=max_steps, stop_first=stop_first)
    o = explore_dpor(runner, budget, obs, optimal=True, start={"stack": stack, "target": target}, floor=floor)
    return {
        "executions": o.executions, "blocked": o.blocked, "steps": o.steps, "note": o.note,
        "findings": list(o.findings.values()), "exhaustive": o.exhaustive,
        "stack": None if o.stack is None else (o.stack[0][target:],) + tuple(o.stack[1:]), "live": True,
        "log": o.log, "reason": budget.reason, "target": target, "elapsed": o.elapsed,
    }


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
        # [level j (the unit's node only), j + 1, ...]
        got = stack[0] if res.get("live") else _levels(stack[0], j, [])
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
    """A copy of a committed stack that :func:`~zonedev.rt.dpor.backtrack_optimal` and
    :func:`_unit_of` may use without touching the original: what backtracking changes is
    copied (each node's list of children, the per-node lists, the extras' dicts), the tree nodes
    themselves are shared (backtracking never changes a node; the units are flattened from them
    at once).  Not a copy of the whole tree: that cost the coordinator more than the units it
    guessed (lastzero(13): a third of its time)."""
    wut = [list(level) for level in state[0]]
    rest = [list(x) for x in state[1:]]
    sx = rest[4]                          # node i: None or {thread: extras}
    rest[4] = [None if d is None else dict(d) for d in sx]
    return [wut] + rest


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):     # pragma: no cover - not Linux
        return os.cpu_count() or 1


# -- random walk and PCT: index ranges -----------------------------------------------------------

#: the time an index range handed to a worker should take, seconds
RANGE = 0.1


def run_range(runner: Any, payload: bytes, max_steps: int, deadline: float | None,
              step_timeout: float | None, stop_first: bool = False) -> bytes:
    """Run the executions ``[lo, hi)`` of a random/PCT search (a pickled ``(seed, depth, k, lo,
    hi)``; ``depth`` None: random walk) and return the pickled result, the distinct final
    states and trace keys included (the coordinator unions them)."""
    from .explore import explore_random
    seed, depth, k, lo, hi = pickle.loads(payload)
    seconds = max(0.001, deadline - time.time()) if deadline is not None else None
    budget = Budget(seconds=seconds, max_steps=max_steps, stop_first=stop_first)
    cpu = time.process_time()
    with step_guard(runner, step_timeout, budget):
        o = explore_random(runner, budget, seed, depth, span=(lo, hi), k=k, keep_sets=True)
    return pickle.dumps({
        "lo": lo, "hi": hi, "next": o.next, "k": o.k, "hit": o.hit, "reason": budget.reason,
        "executions": o.executions, "blocked": o.blocked, "truncated": o.truncated, "steps": o.steps,
        "note": o.note, "findings": list(o.findings.values()), "finals": o.final_states,
        "traces": o.trace_keys, "elapsed": o.elapsed, "cpu": time.process_time() - cpu,
    }, protocol=pickle.HIGHEST_PROTOCOL)


def _fork_range(payload: bytes) -> bytes:
    j = _JOB
    return run_range(j["runner"], payload, j["max_steps"], j["deadline"], j["step_timeout"], j["stop_first"])


def explore_random_parallel(runner: Any, budget: Budget, seed: int, depth: int | None, jobs: int,
                            backend: str = "process", address: str | None = None, job: dict | None = None,
                            step_timeout: float | None = None, warmup: float | None = None,
                            chunk: int | None = None) -> Outcome:
    """A random walk (``depth`` None) or PCT search over ``jobs`` workers, by index ranges.

    Execution ``i``'s schedule depends only on ``(seed, i)`` (and PCT's k, the length of
    execution 0), so the calling process hands out ranges ``[lo, hi)`` of indexes in order
    (it runs ranges itself too, unless the backend is Ray) and commits their results strictly
    in index order: counts and steps add up, findings merge with the sequential rule (the
    first with the fewest preemptions, then steps), distinct final states and traces are
    unions.  What is committed is always executions ``0 .. M-1``, what one process with
    ``executions=M`` gives: a budget in executions is exact (no range goes past it); when the
    time is up a worker stops inside its range, and that range's prefix is the last thing
    committed (the ranges after it are dropped); with ``stop_first`` each range stops at its
    first execution that found something, the first such range in index order ends the search,
    and no range past it is handed out.  The first ranges (1, 2, 4, ... executions, for
    ``warmup`` seconds) run here, so small searches never start workers; then ranges of about
    ``RANGE`` seconds (``chunk`` executions when given)."""
    out = Outcome("random" if depth is None else f"pct(d={depth})")
    budget.out = out
    if warmup is None:
        warmup = WARMUP
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    if budget.executions is None and budget.deadline is None:
        budget.executions = 1000
    limit = budget.executions
    deadline = time.time() + (budget.deadline - t0) if budget.deadline is not None else None
    max_steps = budget.max_steps
    pool = jobs - 1 if backend == "process" else jobs
    finals: set = set()
    traces: set = set()
    k = None
    queue: list[list] = []            # handed out, in index order: [lo, hi, handle, result or None]
    nxt = done = 0                    # the next index to hand out / to commit
    hit_at: int | None = None         # stop_first: a range that found something ends here
    back = None
    local = ranges = remote = worked = 0
    worker_cpu = 0.0
    size = 1                          # warm-up ranges double
    per = None                        # seconds per execution, measured on the ranges run here
    spent = 0.0

    def more() -> bool:
        return (limit is None or nxt < limit) and (hit_at is None or nxt < hit_at) and not budget.reason

    def size_of_range() -> int:
        if chunk:
            return chunk
        if not per:
            return 1
        n = max(1, int(RANGE / per))
        if limit is not None:           # smaller ranges towards the end (not below a tenth): the workers finish together
            n = min(n, max(n // 10, (limit - nxt) // (2 * jobs), 1))
        return n

    def span(n: int) -> tuple[int, int]:
        hi = nxt + max(1, n)
        if limit is not None:
            hi = min(hi, limit)
        if hit_at is not None:
            hi = min(hi, hit_at)
        return nxt, hi

    try:
        while True:
            # -- results that are in; a later range that stopped at a finding bounds the work
            for q in queue:
                if q[3] is None and q[2] is not None and back.ready(q[2]):
                    q[3] = pickle.loads(back.get(q[2]))
                    q[3]["remote"] = True
                    q[2] = None
                    if q[3]["hit"] and (hit_at is None or q[3]["next"] < hit_at):
                        hit_at = q[3]["next"]
            # -- commit in index order
            stop = False
            while queue and queue[0][3] is not None:
                lo, hi, _, res = queue.pop(0)
                ranges += 1
                if res.get("remote"):
                    remote += 1
                    worked += res["next"] - lo
                    worker_cpu += res["cpu"]
                out.executions += res["executions"]
                out.blocked += res["blocked"]
                out.truncated += res["truncated"]
                out.steps += res["steps"]
                if res["note"]:
                    out.note = res["note"]
                for f in res["findings"]:
                    old = out.findings.get(f.signature)
                    if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
                        out.findings[f.signature] = f
                finals |= res["finals"]
                traces |= res["traces"]
                done = res["next"]
                if lo == 0:
                    k = res["k"]
                if res["reason"]:
                    budget.stop(res["reason"])
                if res["hit"] or res["reason"] or done < hi:
                    stop = True
                    break
            if stop or (done > 0 and budget.exhausted(done)):
                break
            if not queue and not more():
                break
            # -- hand out ranges
            if back is None and jobs > 1 and pool > 0 and more() and done > 0 and time.perf_counter() - t0 >= warmup:
                back = _make_backend(backend, pool, runner, False, max_steps, deadline, step_timeout, address,
                                     job, budget.stop_first, kind="random")
            if back is not None:
                n = size_of_range()
                while more() and sum(1 for q in queue if q[2] is not None) < 2 * pool:
                    lo, hi = span(n)
                    queue.append([lo, hi, back.submit(pickle.dumps((seed, depth, k, lo, hi))), None])
                    nxt = hi
            if more() and (back is None or backend == "process") and not (k is None and nxt > 0 and depth is not None):
                # this process runs the next range itself
                if back is None:
                    lo, hi = span(size)
                    size *= 2
                else:
                    lo, hi = span(size_of_range())
                nxt = hi
                q = [lo, hi, None, None]
                queue.append(q)
                res = pickle.loads(run_range(runner, pickle.dumps((seed, depth, k, lo, hi)), max_steps, deadline,
                                             step_timeout, budget.stop_first))
                res["remote"] = False
                q[3] = res
                local += res["next"] - lo
                spent += res["elapsed"]
                if local:
                    per = max(1e-6, spent / local)
                if res["hit"] and (hit_at is None or res["next"] < hit_at):
                    hit_at = res["next"]
            elif queue and queue[0][3] is None:
                if stop_requested():
                    budget.exhausted(done)
                    break
                time.sleep(0.002)
    finally:
        if back is not None:
            back.close()
    out.states = len(finals)
    out.traces = len(traces)
    if back is not None:
        out.note = "; ".join(x for x in (out.note, f"executions 0..{done - 1} in {ranges} index ranges on {jobs} "
                                                   f"workers ({worked} executions on the workers; CPU "
                                                   f"{time.process_time() - cpu0:.2f} s here, {worker_cpu:.2f} s "
                                                   f"on the workers)") if x)
    out.elapsed = time.perf_counter() - t0
    return out
