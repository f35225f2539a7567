"""Random walk and PCT over worker processes (``check --mode random|pct --jobs N``) or Ray
tasks, by index ranges, with the answer of one process.

Execution ``i``'s schedule depends only on ``(seed, i)`` (and PCT's k, the length of
execution 0), so ranges of executions are independent: they are handed out in order and their
results committed strictly in index order (:func:`explore_random_parallel`).  The Optimal-DPOR
split is :mod:`zonedev.rt.parallel`.
"""

from __future__ import annotations

import pickle
import signal
import time
from typing import Any, Callable

from .guard import step_guard
from .outcome import Budget, Outcome, stop_requested

#: the fork workers' runner and settings (set in the parent before the pool forks)
_JOB: dict[str, Any] = {}

#: seconds of ranges run in the calling process before workers start
WARMUP = 0.3

class _ProcessBackend:
    """A pool of forked worker processes for index ranges; the runner is inherited, not rebuilt."""

    def __init__(self, jobs: int, runner: Any, max_steps: int, deadline: float | None,
                 step_timeout: float | None, stop_first: bool, fn: Callable[[bytes], bytes]) -> None:
        import multiprocessing
        _JOB.update(runner=runner, max_steps=max_steps, deadline=deadline, step_timeout=step_timeout,
                    stop_first=stop_first)
        self.pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_ignore_sigint)
        self.fn = fn
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


def _make_backend(backend: str, jobs: int, runner: Any, max_steps: int, deadline: float | None,
                  step_timeout: float | None, address: str | None, job: dict | None, stop_first: bool) -> Any:
    if backend == "ray":
        from .backends.ray_backend import RayBackend
        return RayBackend(jobs, job or {}, False, max_steps, deadline, step_timeout, address, stop_first,
                          kind="random")
    return _ProcessBackend(jobs, runner, max_steps, deadline, step_timeout, stop_first, fn=_fork_range)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
                back = _make_backend(backend, pool, runner, max_steps, deadline, step_timeout, address, job,
                                     budget.stop_first)
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
