"""One Optimal-DPOR exploration split across worker processes (``check --jobs N``) or Ray tasks
(``--backend ray``), with the answer of one process: the same executions, sleep-set-blocked
count, steps, findings and counterexamples.

How it is split.  This process (the coordinator) runs the sequential search
(:func:`~zonedev.rt.dpor.explore_dpor`) one execution at a time and takes every step of it in
the same order: it keeps the exploration stack, inserts the wakeup sequences each execution's
races ask for, backtracks (:func:`~zonedev.rt.dpor.backtrack_optimal`) and so finds the next
execution.  What it hands out is work *ahead* of itself: a worker gets a pending leaf of the
wakeup trees -- the farthest from the search's frontier, so the one needed last (Optimal-DPOR
never drops a leaf unexplored) -- and explores that leaf's whole subtree on its own copy of
the stack, reporting as it goes every execution it ran and every subtree it finished
(:class:`_Report`).

Why that is exact.  The exploration of a leaf's subtree depends only on

- the leaf's path: the schedule prefix and, at each node on it, the children explored
  before (``done``; the sleep sets and the extras of done threads follow from these), and
- the leaf's wakeup subtree,

not on the rest of the trees: the wakeup sequences it asks for at nodes above the leaf are
inserted there, never below it (a race reversal never starts with the branch being explored),
and they are made from its own events and that path.  So when the search reaches a leaf it
handed out, the coordinator compares the path (a digest of the threads and ``done`` of every
node) and the wakeup subtree with what the worker got (:meth:`_Unit.unchanged`).  Equal: the
worker's executions are, one for one and in order, the ones the search is about to run there.
The coordinator takes each as it comes -- walking its *own* wakeup subtree with the enabled
and sleep sets the worker saw, as a guard (:func:`_adopt`), and inserting the execution's
wakeup sequences into its own trees in order -- or a whole finished subtree at once (its
counts, its findings as one process keeps them, and the wakeup sequences for the nodes above
it).  Not equal (an execution before the leaf inserted into its subtree after it was handed
out): a worker's execution is still taken where the search's path digest matches the one it
started from and the guard walk agrees (the part of the subtree it depends on may be the
same); the rest is run again here, which costs time, never the answer.  When the search
catches up with a worker (an execution it needs has not come back), the worker is told to
stop and gets another leaf, and the search goes on here.

Not split (one process; ``check`` says so in the note): source-DPOR, the stateful search,
Optimal-DPOR with a budget in executions, checkpoints.  ``stop_first`` stops at the first
execution, in the sequential order, that found something, which is where one process stops.

Random walk and PCT are split by index ranges instead (:mod:`zonedev.rt.ranges`).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import signal
import time
from typing import Any, Callable

from .dpor import backtrack_optimal, explore_dpor, insert
from .guard import step_guard
from .outcome import Budget, Outcome, schedule_string, stop_requested

#: seconds between a worker's reports of the executions it ran
FLUSH = 0.01

#: seconds between looks at the workers' messages (and whenever an execution is not there)
POLL = 0.002

#: bytes of executions a worker may hold ahead of the search before it is stopped (their memory)
HOLD = 512 << 20

#: seconds of executions run in the calling process before workers start
WARMUP = 0.02

#: a floor past every execution: explore_dpor runs one execution and logs every wakeup sequence
ONE = 1 << 40

#: after a look for a leaf to hand out found none, executions run before the next look
IDLE = 8

# the exploration stack's lists (see explore_dpor), per event and per node: the light ones
# (what adopting an execution, backtracking and inserting read) and the heavy ones (read only
# when an execution replays the prefix: they travel as one blob, decoded only if they are)
_LEV = (2, 3, 4)                        # evx er ew
_LNODE = (5, 6, 8, 9, 11)               # sx thr enab sleep done
_HEV = (1, 12, 13, 14)                  # evd clk nxt nmb
_HNODE = (7, 10)                        # pend bt
_EV = _LEV + _HEV
_NODE = _LNODE + _HNODE

#: the fork workers' runner and settings (set in the parent before the workers fork)
_JOB: dict[str, Any] = {}
_OBS: list = []


def path_key(thr: Any, done: Any) -> bytes:
    """The digest of a path: the threads and ``done`` of nodes ``0..j`` (what an execution
    from node ``j`` depends on besides its wakeup subtree)."""
    return hashlib.blake2b(marshal.dumps((tuple(thr), tuple(done)), 2), digest_size=20).digest()


def _one(runner: Any, stack: tuple | None, j: int, obs: Any, max_steps: int, stop_first: bool,
         cache: dict | None = None) -> tuple:
    """Run the leaf at node ``j`` of ``stack`` (None: the first execution), one execution, in
    this process; the stack's lists are changed in place.  ``cache``: kept across calls
    (:func:`~zonedev.rt.dpor.explore_dpor`)."""
    budget = Budget(max_steps=max_steps, stop_first=stop_first)
    start = None if stack is None else {"stack": stack, "target": j}
    o = explore_dpor(runner, budget, obs, optimal=True, start=start, floor=ONE, cache=cache)
    return o, budget.reason


def run_unit(runner: Any, payload: bytes, obs: Any, max_steps: int, deadline: float | None,
             step_timeout: float | None, stop_first: bool = False, emit: Callable[[tuple], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> Any:
    """Explore the subtree of one leaf (a pickled ``(base, (j, thread, done, extras, flat
    wakeup subtree))``: the stack cut at the leaf's node ``j``, and what is the leaf's own
    there) and report what it ran, in batches (:class:`_Report`).  Without ``emit``: the
    batches and the end (``(complete, executions)``) marshalled, at the end (Ray); with it: a
    batch every ``FLUSH`` seconds, stopping early when ``cancelled()`` says so, and the end
    returned."""
    base, (j, t, done, sx, flat) = pickle.loads(payload)
    stack = [[None] * j + [[_unflat(flat)]]] + [None] * 14
    for x in _EV:
        stack[x] = base[x][:j]
    for x in _NODE:
        stack[x] = base[x][:j + 1]
    stack[6][j] = t
    stack[11][j] = done
    stack[5][j] = sx
    seconds = None if deadline is None else max(0.001, deadline - time.time())
    if emit is None:            # a task cannot be stopped: it ends by itself after TASK seconds
        seconds = TASK if seconds is None else min(seconds, TASK)
    budget = Budget(seconds=seconds, max_steps=max_steps, stop_first=stop_first)
    rep = _Report(runner.names)
    batches: list = []
    last = [time.perf_counter()]

    def record(target: int, thr: list, done: list, found: Any, counts: tuple, events: list, nodes: list,
               log: list) -> None:
        rep.add(target, path_key(thr[:target + 1], done[:target + 1]), found, counts, events, nodes, log)
        now = time.perf_counter()
        if now - last[0] >= FLUSH:
            last[0] = now
            if emit is None:
                batches.append(rep.batch())
            else:
                emit(rep.batch())
                if cancelled is not None and cancelled():
                    budget.stop("cancelled")

    with step_guard(runner, step_timeout, budget):
        o = explore_dpor(runner, budget, obs, optimal=True, start={"stack": tuple(stack), "target": j},
                         floor=j + 1, record=record)
    complete = bool(o.exhaustive and not budget.reason)
    if complete:
        rep.close(0)
    if rep.pending():
        if emit is None:
            batches.append(rep.batch())
        else:
            emit(rep.batch())
    end = (complete, rep.n)
    if emit is not None:
        return end
    return marshal.dumps((batches, end), 4)


#: seconds a leaf handed to a task backend (Ray) is explored at most: its executions come back
#: only when it ends, and it cannot be told to stop
TASK = 0.5

#: a completed subtree of fewer executions than this gets no summary (its executions are taken one by one)
SUMMARY = 4


class _Report:
    """What a worker sends back of its leaf's subtree, execution by execution and subtree by
    subtree.

    Execution ``x`` (numbered from 0, the leaf's own) is ``(found, counts, events, nodes, log,
    heavy, key)``: its findings (pickled), counts (the node it started at last), the light
    lists from its node on, every wakeup sequence it asked for, the heavy lists marshalled,
    and the digest of the path it started from.  A *summary* is the whole subtree an
    execution started, once the search has left it (a later execution starts at or above its
    node; or the leaf's subtree is done): ``(a, b, t, whole)`` for the executions ``a..b``
    below node ``t``, ``whole`` marshalled apart (it is read only for the summary the search
    takes): ``(executions, blocked, steps, truncated, note, findings, log, first)`` -- their
    counts, first note, findings as one process keeps them (pickled), the wakeup sequences for
    nodes at or above ``t`` in the order asked (the only ones that outlive the subtree) and
    the light lists of execution ``a``'s first event.  A search that is at node ``t`` about
    to run execution ``a``, with the same tree, takes it at once."""

    def __init__(self, names: list) -> None:
        self.names = names
        self.n = 0                          # executions so far
        self.recs: list = []                # not sent yet
        self.sums: list = []
        self.sent = 0                       # index of the first execution not sent
        # the subtrees not left yet, nodes increasing: [first execution, node, wakeup sequences
        # for nodes at or above it, findings kept, first note] -- each passes what outlives it
        # to the one it is in when it is left, so nothing is gathered twice
        self.open: list = []
        self.cum = [(0, 0, 0, 0)]           # counts before execution x
        self.firsts: list = []              # execution x's first event, light lists

    def add(self, t: int, key: bytes, found: Any, counts: tuple, events: list, nodes: list, log: list) -> None:
        x = self.n
        self.close(t)
        execs, blocked, steps, truncated, note, pre, sched = counts
        counts = (execs, blocked, steps, truncated, note, t)
        kept: dict = {}
        if found:
            sched = schedule_string(sched)
            for f in found:
                f.schedule, f.preemptions, f.steps, f.names = sched, pre, steps, list(self.names)
                old = kept.get(f.signature)
                if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
                    kept[f.signature] = f
            found = pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL)
        self.open.append([x, t, [ev for ev in log if ev[0] <= t], kept, note])
        c = self.cum[-1]
        self.cum.append((c[0] + execs, c[1] + blocked, c[2] + steps, c[3] + truncated))
        self.firsts.append((events[1][0], events[2][0], events[3][0]))
        # events: evd evx er ew clk nxt nmb; nodes: sx thr pend enab sleep bt done
        heavy = marshal.dumps(([events[0], events[4], events[5], events[6]], [nodes[2], nodes[5]]), 4)
        self.recs.append((found, counts, events[1:4], [nodes[0], nodes[1], nodes[3], nodes[4], nodes[6]], log,
                          heavy, key))
        self.n = x + 1

    def close(self, t: int) -> None:
        """Execution ``n`` starts at node ``t``: the open subtrees at or below it are left."""
        n = self.n
        op = self.open
        while op and op[-1][1] >= t:
            a, t0, log, kept, note = op.pop()
            if n - a >= SUMMARY or a == 0:
                c0, c1 = self.cum[a], self.cum[n]
                whole = (c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2], c1[3] - c0[3], note,
                         pickle.dumps(list(kept.values()), protocol=pickle.HIGHEST_PROTOCOL) if kept else b"",
                         log, self.firsts[a])
                self.sums.append((a, n - 1, t0, marshal.dumps(whole, 4)))
            if op:
                up = op[-1]
                tu = up[1]
                up[2].extend([ev for ev in log if ev[0] <= tu])
                if kept:
                    uk = up[3]
                    for sig, f in kept.items():
                        old = uk.get(sig)
                        if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
                            uk[sig] = f
                if note and not up[4]:
                    up[4] = note

    def pending(self) -> bool:
        return bool(self.recs or self.sums)

    def batch(self) -> tuple:
        """``(first execution, how many, their records marshalled, summaries)``."""
        out = (self.sent, len(self.recs), marshal.dumps(self.recs, 4), self.sums)
        self.sent += len(self.recs)
        self.recs = []
        self.sums = []
        return out


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _JOB.get("observe"):
        from .observe import Observer
        obs = Observer()
        obs.__enter__()          # for this worker's lifetime
        _OBS.append(obs)


def _pipe_worker(conn: Any) -> None:
    """A forked worker: explore the leaves sent on ``conn`` one after the other, reporting as
    it goes, until told to stop a leaf or to exit (None)."""
    _worker_init()
    job = _JOB
    obs = _OBS[0] if _OBS else None
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        kind, uid, payload = msg
        if kind != "unit":
            continue                      # a stop for a leaf already finished

        def emit(batch: tuple, uid: int = uid) -> None:
            conn.send_bytes(marshal.dumps(("r", uid, batch), 4))

        def cancelled(uid: int = uid) -> bool:
            while conn.poll():
                m = conn.recv()
                if m is None:
                    raise SystemExit(0)
                if m[0] == "stop" and m[1] == uid:
                    return True
            return False

        end = run_unit(job["runner"], payload, obs, job["max_steps"], job["deadline"], job["step_timeout"],
                       job["stop_first"], emit=emit, cancelled=cancelled)
        conn.send_bytes(marshal.dumps(("done", uid, end), 4))


class _Pipes:
    """Forked worker processes, one pipe each: a leaf goes out, the executions come back in
    batches while it runs, and it can be stopped."""

    def __init__(self, jobs: int, runner: Any, observe: bool, max_steps: int, deadline: float | None,
                 step_timeout: float | None, stop_first: bool) -> None:
        import multiprocessing
        ctx = multiprocessing.get_context("fork")
        _JOB.update(runner=runner, observe=observe, max_steps=max_steps, deadline=deadline,
                    step_timeout=step_timeout, stop_first=stop_first)
        self.conns = []
        self.procs = []
        for _ in range(jobs):
            here, there = ctx.Pipe()
            p = ctx.Process(target=_pipe_worker, args=(there,), daemon=True)
            p.start()
            there.close()
            self.conns.append(here)
            self.procs.append(p)
        self.slots = jobs

        self.live = list(self.conns)

    def start(self, slot: int, uid: int, payload: bytes) -> None:
        self.conns[slot].send(("unit", uid, payload))

    def stop(self, slot: int, uid: int) -> None:
        try:
            self.conns[slot].send(("stop", uid, None))
        except OSError:           # it died: poll says so
            pass

    def poll(self, timeout: float) -> list:
        """``(slot, kind, uid, batch or summary)`` messages that are in (waiting up to
        ``timeout``); ``(slot, "dead", None, None)`` once for a worker that died (what it sent
        before stays good; the search goes on without it)."""
        from multiprocessing.connection import wait
        out = []
        if not self.live:
            return out
        for c in wait(self.live, timeout):
            slot = self.conns.index(c)
            try:
                while c.poll():
                    kind, uid, recs = marshal.loads(c.recv_bytes())
                    out.append((slot, kind, uid, recs))
            except (EOFError, OSError):
                self.live.remove(c)
                out.append((slot, "dead", None, None))
        return out

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=1)
            if p.is_alive():
                p.terminate()
                p.join()


class _Tasks:
    """The same for a backend of tasks (Ray): a leaf is a task, its executions come back when
    it ends, a stop is not passed on."""

    def __init__(self, back: Any, jobs: int) -> None:
        self.back = back
        self.slots = jobs
        self.running: dict[int, tuple[int, Any]] = {}

    def start(self, slot: int, uid: int, payload: bytes) -> None:
        self.running[uid] = (slot, self.back.submit(payload))

    def stop(self, slot: int, uid: int) -> None:
        pass

    def poll(self, timeout: float) -> list:
        end = time.perf_counter() + timeout
        while True:
            out = []
            for uid, (slot, h) in list(self.running.items()):
                if self.back.ready(h):
                    del self.running[uid]
                    batches, last = marshal.loads(self.back.get(h))
                    out.extend((slot, "r", uid, b) for b in batches)
                    out.append((slot, "done", uid, last))
            if out or time.perf_counter() >= end or stop_requested():
                return out
            time.sleep(0.001)

    def close(self) -> None:
        self.back.close()


class _Unit:
    """A leaf handed to a worker (its subtree is the worker's) and what came back of it:
    batches of executions (decoded only when the search needs one of them) and summaries of
    completed subtrees, by their first execution (:class:`_Report`).

    When the search reaches the leaf it compares the path and the wakeup subtree with what
    the worker got (:meth:`unchanged`).  Equal (``exact``): the worker's execution ``x`` is
    the search's ``x``-th from there, and a summary starting at ``x`` is the whole subtree
    the search is about to explore.  Not equal (the tree changed below the leaf since the
    worker got it): an execution whose path digest matches the search's is still a candidate,
    checked by :func:`_adopt` (the part of the subtree it depends on may be unchanged)."""

    __slots__ = ("uid", "slot", "j", "node", "key", "flat", "batches", "size", "decoded", "keyed", "sums",
                 "running", "stopping", "exact", "base")

    def __init__(self, uid: int, slot: int, j: int, node: list, key: bytes, flat: list) -> None:
        self.uid = uid
        self.slot = slot
        self.j = j
        self.node = node             # the leaf's wakeup-tree node (kept: its id stays its own)
        self.key = key               # its path, as the worker got it
        self.flat = flat             # its wakeup subtree, as the worker got it
        self.batches: list = []      # (first execution, how many, marshalled), not decoded
        self.size = 0
        self.decoded: dict[int, tuple] = {}
        self.keyed: dict[bytes, tuple] = {}
        self.sums: dict[int, tuple] = {}
        self.running = True
        self.stopping = False
        self.exact: bool | None = None   # None: the search has not reached the leaf yet
        self.base = 0                # executions committed before the leaf's

    def take(self, batch: tuple, at: int | None) -> None:
        """A batch from the worker.  ``at``: the search's execution in this subtree (None: it has
        not reached the leaf).  A finished subtree the search has not entered will be taken
        whole, unless the leaf changed: its own executions are let go (memory)."""
        first, count, blob, sums = batch
        if count:
            self.batches.append((first, count, blob))
            self.size += len(blob)
        for sm in sums:
            a, b = sm[0], sm[1]
            if self.exact is not False and (at is None or at <= a):
                self.batches = [bt for bt in self.batches if not (a <= bt[0] and bt[0] + bt[1] - 1 <= b)]
                for k in [k for k in self.sums if a < k <= b]:
                    del self.sums[k]
            self.sums[a] = sm

    def record(self, x: int) -> tuple | None:
        """Execution ``x`` if it is back."""
        r = self.decoded.pop(x, None)
        if r is not None:
            return r
        for i, (first, count, blob) in enumerate(self.batches):
            if first <= x < first + count:
                del self.batches[i]
                d = self.decoded
                for k, r in enumerate(marshal.loads(blob)):
                    d[first + k] = r
                return d.pop(x)
        return None

    def by_key(self, key: bytes) -> tuple | None:
        """The execution that started from the path ``key``, if one is back."""
        if self.batches or self.decoded:
            k = self.keyed
            for first, count, blob in self.batches:
                for r in marshal.loads(blob):
                    k[r[6]] = r
            for r in self.decoded.values():
                k[r[6]] = r
            self.batches.clear()
            self.decoded.clear()
        return self.keyed.pop(key, None)

    def unchanged(self, st: list) -> bool:
        """Whether the search, now at this leaf, has it as the worker got it: the same path
        and the same wakeup subtree below it."""
        return path_key(st[6], st[11]) == self.key and _flat(self.node) == self.flat

    def drop(self) -> None:
        self.batches.clear()
        self.decoded.clear()
        self.keyed.clear()
        self.sums.clear()
        self.node = None


def _adopt(st: list, j: int, events: list, nodes: list, lazy: list, heavy: bytes) -> bool:
    """Take a worker's execution from node ``j`` into the committed stack (cut at ``j``), if
    the wakeup subtree there, as it is now, leads to the same choices: at each new node the
    first child that is enabled and not asleep (the worker's enabled and sleep sets) must be
    the thread the worker ran, or no child left and the worker chose by default.  The subtree
    is changed only when all of them agree, and as the execution here would have changed it
    (children skipped at the front go, a default choice is added).  ``events``/``nodes``: the
    light lists; the heavy ones join ``lazy`` (:func:`_materialize`)."""
    thr, enab, sleep = nodes[1], nodes[2], nodes[3]
    er, ew = events[1], events[2]
    wut = st[0]
    node = wut[j][0]
    plan = []
    for k in range(len(thr)):
        tree = node[3]
        em = enab[k]
        sl = sleep[k]
        idx = 0
        for c in tree:
            t = c[0]
            if em >> t & 1 and not sl >> t & 1:
                break
            idx += 1
        if idx < len(tree):
            node = tree[idx]
            if node[0] != thr[k]:
                return False
        else:
            node = [thr[k], None, 0, []]
            idx = -1
        plan.append((tree, idx, node))
    top = wut[j][0]
    top[1] = er[0]
    top[2] = ew[0]
    k = 1
    for tree, idx, node in plan:
        if idx < 0:
            tree.clear()
            tree.append(node)
        elif idx:
            del tree[:idx]
        wut.append(tree)
        node[1] = er[k]
        node[2] = ew[k]
        k += 1
    for x, part in zip(_LEV, events):
        st[x].extend(part)
    for x, part in zip(_LNODE, nodes):
        st[x].extend(part)
    lazy.append([j, len(er), heavy])
    return True


def _trim(lazy: list, j: int) -> None:
    """The stack was cut at node ``j`` (events ``< j``, nodes ``<= j`` kept): so are the heavy
    parts not decoded yet."""
    while lazy and lazy[-1][0] >= j:
        lazy.pop()
    if lazy and lazy[-1][0] + lazy[-1][1] > j:
        lazy[-1][1] = j - lazy[-1][0]


def _materialize(st: list, lazy: list) -> None:
    """Decode the heavy parts of the adopted executions still on the stack, in order, before
    anything reads them (an execution here, a leaf handed out)."""
    for j, n, heavy in lazy:
        hev, hnode = marshal.loads(heavy)
        for x, part in zip(_HEV, hev):
            st[x].extend(part[:n])
        for x, part in zip(_HNODE, hnode):      # (one node fewer than events, unless cut)
            st[x].extend(part[:n])
    lazy.clear()


def _far_leaf(st: list, j: int, units: dict, inside: list) -> tuple | None:
    """The pending leaf the search will reach last (after the one at node ``j``), not handed
    out already and not inside the subtree of a leaf a worker is exploring: ``(node j',
    payload, tree node, path digest, flat wakeup subtree)``; None when there is none.  (Found on a copy of the stack, which is
    backtracked from ``j`` as if nothing more were inserted: every leaf met is in the trees.)"""
    roots = {id(u.node) for u in units.values()}
    floor = min((u.j for u in inside if u.running), default=len(st[6]))
    g = _copy(st)
    c = j
    n = best = 0
    while True:
        c = backtrack_optimal(g, c, 0)
        if c < 0:
            break
        n += 1
        if c <= floor and id(g[0][c][0]) not in roots:
            best = n
    if not best:
        return None
    g = _copy(st)
    c = j
    for _ in range(best):
        c = backtrack_optimal(g, c, 0)
    node = g[0][c][0]
    base = [None] + g[1:]
    flat = _flat(node)
    leaf = (c, g[6][c], g[11][c], g[5][c], flat)
    return c, pickle.dumps((base, leaf), protocol=pickle.HIGHEST_PROTOCOL), node, path_key(g[6], g[11]), flat


def explore_parallel(runner: Any, budget: Budget, observe: bool, jobs: int, backend: str = "process",
                     address: str | None = None, job: dict | None = None, warmup: float | None = None,
                     step_timeout: float | None = None) -> Outcome:
    """Optimal-DPOR over ``jobs`` processes; see the module docstring.  ``job``: what a Ray
    worker needs to rebuild the runner (:func:`zonedev.rt.backends.ray_backend.make_backend`).
    ``warmup``: seconds of executions run in this process before workers start (small searches
    never start any)."""
    c = _Coordinator(runner, budget, observe, jobs, backend, address, job, step_timeout)
    return c.run(WARMUP if warmup is None else warmup)


class _Coordinator:
    """The sequential search, with workers ahead of it (see the module docstring)."""

    def __init__(self, runner: Any, budget: Budget, observe: bool, jobs: int, backend: str, address: str | None,
                 job: dict | None, step_timeout: float | None) -> None:
        self.runner = runner
        self.budget = budget
        self.observe = observe
        self.jobs = jobs
        self.backend = backend
        self.address = address
        self.job = job
        self.step_timeout = step_timeout
        self.deadline = time.time() + budget.seconds if budget.seconds else None
        self.out = Outcome("optimal-dpor")
        budget.out = self.out
        self.back: Any = None
        self.units: dict[int, _Unit] = {}
        self.free: list[int] = []
        self.lazy: list = []            # heavy parts of adopted executions, not decoded yet
        self.st: list = []
        self.uid = self.here = self.remote = self.whole = self.handed = self.stopped = self.ran = 0
        self.idle_until = 0
        self.next_poll = 0.0
        self.restaled = 0
        self.dead = 0
        self.watch: dict[int, _Unit] = {}   # id(leaf) -> its unit, for leaves not reached yet
        self.cache: dict = {}

    def run(self, warmup: float) -> Outcome:
        out, budget, runner = self.out, self.budget, self.runner
        t0 = time.perf_counter()
        pool = self.jobs - 1 if self.backend == "process" else self.jobs   # this process runs executions too
        obs_cm = None
        self.obs = None
        if self.observe:
            from .observe import Observer
            obs_cm = Observer()
            self.obs = obs_cm.__enter__()
        try:
            o, reason = _one(runner, None, 0, self.obs, budget.max_steps, budget.stop_first, self.cache)
            self.st = list(o.stack)
            self._commit(o, reason)
            while not budget.reason:
                if budget.stop_first and out.findings:
                    break
                j = backtrack_optimal(self.st, len(self.st[6]) - 1, 0)
                if self.lazy:
                    _trim(self.lazy, j)
                if j < 0:
                    out.exhaustive = True
                    break
                if budget.exhausted(out.executions + out.blocked):
                    break
                if self.back is not None:
                    if self._from_workers(j):
                        continue
                elif pool > 0 and time.perf_counter() - t0 >= warmup:
                    if obs_cm is not None:              # the workers start without this process's observer
                        obs_cm.__exit__(None, None, None)
                    self.back = _start(self.backend, pool, runner, self.observe, budget.max_steps, self.deadline,
                                       self.step_timeout, self.address, self.job, budget.stop_first)
                    if obs_cm is not None:
                        self.obs = obs_cm.__enter__()
                    self.free = list(range(self.back.slots))
                if self.lazy:
                    _materialize(self.st, self.lazy)
                o, reason = _one(runner, tuple(self.st), j, self.obs, budget.max_steps, budget.stop_first, self.cache)
                self._commit(o, reason)
        finally:
            if self.back is not None:
                self.back.close()
            if obs_cm is not None:
                obs_cm.__exit__(None, None, None)
        if self.back is not None:
            out.note = "; ".join(x for x in (out.note, self._note()) if x)
        out.elapsed = time.perf_counter() - t0
        return out

    def _note(self) -> str:
        n = self.out.executions + self.out.blocked
        return (f"{n:,} executions on {self.jobs} processes, {self.remote:,} of them run ahead on workers "
                f"({self.whole:,} in whole subtrees; {self.handed} leaves handed out, {self.restaled} of them "
                f"changed before the search got there, {self.stopped} stopped; "
                f"{max(0, self.ran - self.remote):,} of the workers' executions not used"
                f"{f'; {self.dead} worker(s) died' if self.dead else ''})")

    def _from_workers(self, j: int) -> bool:
        """Take the execution at node ``j`` (or the whole subtree there) from a worker if one
        ran it; hand out leaves to idle workers.  False: it runs here."""
        now = time.perf_counter()
        if now >= self.next_poll:
            self._poll()
            self.next_poll = now + POLL
        inside = self._locate(j)
        if inside:
            u = inside[-1]
            if u.j == j and id(u.node) in self.watch:   # the search is at u's leaf
                del self.watch[id(u.node)]
                u.exact = u.unchanged(self.st)
                u.base = self.out.executions + self.out.blocked
            if self._take(inside, j):
                return True
            self._poll()
            if self._take(inside, j):
                return True
            for u in inside:            # caught up with the worker: it goes elsewhere
                self._stop(u)
        if self.free and self.here + self.remote >= self.idle_until:
            self._hand_out(j, inside)
        return False

    def _take(self, inside: list, j: int) -> bool:
        """The execution at node ``j`` (or its whole subtree), from the deepest unit that has
        it."""
        st, out = self.st, self.out
        n = out.executions + out.blocked
        for u in reversed(inside):
            if u.exact:
                x = n - u.base
                sm = u.sums.get(x)
                if sm is not None and sm[2] == j:
                    self._whole(sm)
                    return True
                rec = u.record(x)
                if rec is None:
                    continue
                if rec[1][5] != j:      # (cannot happen: the subtree was the same)
                    u.exact = False
                    continue
            elif u.exact is False:
                rec = u.by_key(path_key(st[6], st[11]))
                if rec is None:
                    continue
            else:
                continue
            if _adopt(st, j, rec[2], rec[3], self.lazy, rec[5]):
                self.remote += 1
                self._commit_record(rec)
                return True
            u.exact = False
        return False

    def _insert(self, log: list) -> None:
        """Insert an execution's (or a subtree's) wakeup sequences, in order.  One that goes
        into the subtree of a leaf handed out and not reached yet changes that leaf: its
        worker's executions will be taken only one by one, by path digest (:class:`_Unit`).
        (Only a sequence for the leaf's own node can: below the current path's nodes a
        sequence never enters the branch being explored, and the leaf hangs below them.)"""
        wut = self.st[0]
        watch = self.watch
        for e, v in log:
            c = insert(wut[e], v)
            if c is not None and watch:
                u = watch.pop(id(c), None)
                if u is not None:
                    u.exact = False
                    self.restaled += 1

    def _locate(self, j: int) -> list:
        """The units whose subtree the search is in, shallowest first; units it has gone past
        are dropped (and their workers stopped).  Checked every execution: while the search
        stays at or below node u.j the path above it does not change, and u's leaf is still
        ahead while it is in the tree there."""
        st = self.st
        inside = []
        for u in list(self.units.values()):
            if u.j <= j and any(c is u.node for c in st[0][u.j]):
                if st[0][u.j][0] is u.node:
                    inside.append(u)
                continue
            self._stop(u)
            if u.node is not None:
                self.watch.pop(id(u.node), None)
            u.drop()
            if not u.running:
                del self.units[u.uid]
        inside.sort(key=lambda u: u.j)
        return inside

    def _whole(self, sm: tuple) -> None:
        """Take a completed subtree at once (a summary, :class:`_Report`) -- the counts, the
        findings, the wakeup sequences for the nodes at or above its node, and its first
        event (which the backtrack that follows reads) -- as if it had been explored here."""
        execs, blocked, steps, truncated, note, findings, log, first = marshal.loads(sm[3])
        out, st = self.out, self.st
        _count(out, execs, blocked, steps, truncated, note)
        if findings:
            _keep(out, pickle.loads(findings))
        for x, v in zip(_LEV, first):
            st[x].append(v)
        self._insert(log)
        self.remote += execs + blocked
        self.whole += execs + blocked

    def _hand_out(self, j: int, inside: list) -> None:
        _materialize(self.st, self.lazy)
        far = _far_leaf(self.st, j, self.units, inside)
        if far is None:
            self.idle_until = self.here + self.remote + IDLE
            return
        c, payload, node, key, flat = far
        slot = self.free.pop()
        self.uid += 1
        self.units[self.uid] = self.watch[id(node)] = _Unit(self.uid, slot, c, node, key, flat)
        self.back.start(slot, self.uid, payload)
        self.handed += 1

    def _stop(self, u: _Unit) -> None:
        if u.running and not u.stopping:
            self.back.stop(u.slot, u.uid)
            u.stopping = True
            self.stopped += 1

    def _poll(self) -> None:
        """Take in the workers' messages: batches, or the end of a leaf (the worker is free
        again)."""
        for slot, kind, uid, data in self.back.poll(0):
            if kind == "dead":
                self.dead += 1
                for u in list(self.units.values()):
                    if u.slot == slot and u.running:
                        u.running = False
                        if u.node is None:
                            del self.units[u.uid]
                continue
            u = self.units.get(uid)
            if kind == "done":
                self.free.append(slot)
                self.ran += data[1]
                if u is not None:
                    u.running = False
                    if u.node is None:
                        del self.units[uid]
            elif u is not None and u.node is not None:
                u.take(data, None if id(u.node) in self.watch else self.out.executions + self.out.blocked - u.base)
                if u.size > HOLD:
                    self._stop(u)               # far ahead of the search: its memory

    def _commit(self, o: Outcome, reason: str) -> None:
        """One execution run here: its counts, findings and wakeup sequences."""
        out = self.out
        self.here += 1
        _count(out, o.executions, o.blocked, o.steps, o.truncated, o.note)
        _keep(out, o.findings.values())
        self._insert(o.log)
        if reason:
            self.budget.stop(reason)

    def _commit_record(self, rec: tuple) -> None:
        """One execution a worker ran, adopted (:func:`_adopt`): the same bookkeeping."""
        found, (execs, blocked, steps, truncated, note, _), _, _, log, _, _ = rec
        out, st = self.out, self.st
        _count(out, execs, blocked, steps, truncated, note)
        if found:
            out.add_found(pickle.loads(found), st[6][:steps], st[8], self.runner.names)
        self._insert(log)


def _count(out: Outcome, executions: int, blocked: int, steps: int, truncated: int, note: str) -> None:
    out.executions += executions
    out.blocked += blocked
    out.steps += steps
    out.truncated += truncated
    if note and not out.note:
        out.note = note


def _keep(out: Outcome, findings: Any) -> None:
    """Findings kept in the order found elsewhere: each replaces one of its kind only with
    fewer preemptions (then steps), as :meth:`Outcome.add` does."""
    for f in findings:
        old = out.findings.get(f.signature)
        if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
            out.findings[f.signature] = f


def _start(backend: str, jobs: int, runner: Any, observe: bool, max_steps: int, deadline: float | None,
           step_timeout: float | None, address: str | None, job: dict | None, stop_first: bool) -> Any:
    if backend == "ray":
        from .backends.ray_backend import RayBackend
        return _Tasks(RayBackend(jobs, job or {}, observe, max_steps, deadline, step_timeout, address, stop_first,
                                 kind="dpor"), jobs)
    return _Pipes(jobs, runner, observe, max_steps, deadline, step_timeout, stop_first)


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


def _copy(state: list) -> list:
    """A copy of a committed stack that :func:`~zonedev.rt.dpor.backtrack_optimal` may use
    without touching the original: what backtracking changes is copied (each node's list of
    children, the per-node lists, the extras' dicts), the tree nodes themselves are shared
    (backtracking never changes a node; leaves are flattened from them at once)."""
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
