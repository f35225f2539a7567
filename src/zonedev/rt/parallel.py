"""One Optimal-DPOR exploration split across worker processes (``check --jobs N``) or Ray tasks
(``--backend ray``), with the answer of one process: the same executions, sleep-set-blocked
count, steps, findings and counterexamples.

How it is split.  This process (the coordinator) runs the sequential search
(:func:`~zonedev.rt.dpor.explore_dpor`) and takes every step of it in the same order: it keeps
the exploration stack, inserts the wakeup sequences each execution's races ask for, backtracks
(:func:`~zonedev.rt.dpor.backtrack_optimal`) and so finds the next execution.  Outside the
leaves handed out it runs in stretches (:meth:`_Coordinator._stretch`: many executions a call,
stopping where the search could enter a leaf that is out); inside one, one execution at a
time, each taken from the worker if it ran it.  What it hands out is work *ahead* of itself: a
worker gets a pending leaf of the wakeup trees -- the farthest from the search's frontier, so
the one needed last (Optimal-DPOR never drops a leaf unexplored) -- and explores that leaf's
whole subtree on its own copy of the stack, reporting as it goes every execution it ran and
every subtree it finished (:class:`~zonedev.rt.workers._Report`).

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
same); the rest is run again here, which costs time, never the answer.  A forked worker
holds its single executions back (:class:`~zonedev.rt.workers._Report`) until the search,
arriving at the leaf before the subtree is finished, asks for them: most leaves come back as
summaries, and an execution inside a summarised subtree is never needed.  When the search
catches up with a worker (an execution it needs has not come back), the worker is told to
stop and gets another leaf, and the search goes on here, in stretches again.

Not split (one process; ``check`` says so in the note): source-DPOR, the stateful search,
checkpoints.  A budget in executions stays exact: executions are committed one at a time (a
stretch is given what is left), and a finished subtree is taken whole only if it fits.
``stop_first`` stops at the first execution, in the sequential order, that found something,
which is where one process stops.

Random walk and PCT are split by index ranges instead (:mod:`zonedev.rt.ranges`).
"""

from __future__ import annotations

import marshal
import os
import pickle
import time
from typing import Any

from .dpor import backtrack_optimal, explore_dpor, insert
from .outcome import Budget, Outcome, stop_requested
from .workers import _HEV, _HNODE, _LEV, _LNODE, _Pipes, _Tasks, _flat, path_key, summary_log

#: seconds between looks at the workers' messages (and whenever an execution is not there)
POLL = 0.002

#: bytes of executions a worker may hold ahead of the search before it is stopped (their memory)
HOLD = 512 << 20

#: seconds of executions run in the calling process before workers start
WARMUP = 0.02

#: seconds the search, at a leaf whose worker holds its executions back, waits for them (the
#: worker looks at its pipe every workers.LISTEN seconds, between two executions)
WANT = 0.25

#: a floor past every execution: explore_dpor runs one execution and logs every wakeup sequence
ONE = 1 << 40

#: after a look for a leaf to hand out found none, executions run before the next look
IDLE = 8

#: seconds of executions run here in one call when the search is inside no worker's leaf
#: (:meth:`_Coordinator._stretch`): one execution a call costs its own set-up, and the
#: bookkeeping of each (committing it, looking for workers' leaves) was a third of a cheap
#: execution's time (readers(13)); the workers' messages are read between stretches
STRETCH = 0.005

#: seconds between a stretch's looks at the workers' pipes: one that has sent something ends it
LOOK = 0.001

def _one(runner: Any, stack: tuple | None, j: int, obs: Any, max_steps: int, stop_first: bool,
         cache: dict | None = None) -> tuple:
    """Run the leaf at node ``j`` of ``stack`` (None: the first execution), one execution, in
    this process; the stack's lists are changed in place.  ``cache``: kept across calls
    (:func:`~zonedev.rt.dpor.explore_dpor`)."""
    budget = Budget(max_steps=max_steps, stop_first=stop_first)
    start = None if stack is None else {"stack": stack, "target": j}
    o = explore_dpor(runner, budget, obs, optimal=True, start=start, floor=ONE, cache=cache)
    return o, budget.reason


class _Stretch:
    """The budget of a stretch of executions run here in one call (:meth:`_Coordinator._stretch`):
    at most ``executions``, until ``deadline``, and no further once the whole search's budget
    has a reason to stop (a step guard, an interrupt)."""

    __slots__ = ("whole", "executions", "deadline", "max_steps", "stop_first", "reason", "out", "due", "resume",
                 "mail", "look")

    def __init__(self, whole: Budget, executions: int | None, deadline: float, mail: Any = None) -> None:
        self.whole = whole
        self.executions = executions
        self.deadline = deadline
        self.max_steps = whole.max_steps
        self.stop_first = whole.stop_first
        self.reason = ""
        self.out: Any = None
        self.due = False
        self.resume = None
        self.mail = mail                # whether a worker has sent something (None: not asked)
        self.look = time.perf_counter() + LOOK

    def exhausted(self, execs: int) -> bool:
        if self.whole.reason or stop_requested():
            self.reason = "whole"
        elif self.executions is not None and execs >= self.executions:
            self.reason = "executions"
        else:
            now = time.perf_counter()
            if now >= self.deadline:
                self.reason = "time"
            elif self.mail is not None and now >= self.look:
                self.look = now + LOOK
                if self.mail():         # (a worker done with its leaf waits for the next one)
                    self.reason = "mail"
        return bool(self.reason)

    def save(self, state: dict) -> None:     # (never due: no checkpoints in a split search)
        pass


class _Unit:
    """A leaf handed to a worker (its subtree is the worker's) and what came back of it:
    batches of executions (decoded only when the search needs one of them) and summaries of
    completed subtrees, by their first execution (:class:`~zonedev.rt.workers._Report`).

    When the search reaches the leaf it compares the path and the wakeup subtree with what
    the worker got (:meth:`unchanged`).  Equal (``exact``): the worker's execution ``x`` is
    the search's ``x``-th from there, and a summary starting at ``x`` is the whole subtree
    the search is about to explore.  Not equal (the tree changed below the leaf since the
    worker got it): an execution whose path digest matches the search's is still a candidate,
    checked by :func:`_adopt` (the part of the subtree it depends on may be unchanged)."""

    __slots__ = ("uid", "slot", "j", "node", "key", "flat", "batches", "size", "decoded", "keyed", "sums",
                 "running", "stopping", "exact", "base", "asked", "eager")

    def __init__(self, uid: int, slot: int, j: int, node: list, key: bytes, flat: list) -> None:
        self.uid = uid
        self.slot = slot
        self.j = j
        self.node = node             # the leaf's wakeup-tree node (kept: its id stays its own)
        self.key = key               # its path, as the worker got it
        self.flat = flat             # its wakeup subtree, as the worker got it
        self.batches: list = []      # (the executions, marshalled), not decoded
        self.size = 0
        self.decoded: dict[int, tuple] = {}
        self.keyed: dict[bytes, tuple] = {}
        self.sums: dict[int, tuple] = {}
        self.running = True
        self.stopping = False
        self.exact: bool | None = None   # None: the search has not reached the leaf yet
        self.base = 0                # executions committed before the leaf's
        self.asked = False           # the worker was asked for the executions it holds back
        self.eager = False           # it sends its executions (asked, or it never held them back)

    def take(self, batch: tuple, at: int | None) -> None:
        """A batch from the worker.  ``at``: the search's execution in this subtree (None: it has
        not reached the leaf).  A finished subtree the search has not entered will be taken
        whole, unless the leaf changed: its own executions are let go (memory)."""
        xs, blob, sums, sent = batch
        if sent:
            self.eager = True
        if xs:
            self.batches.append((xs, blob))
            self.size += len(blob)
        for sm in sums:
            a, b = sm[0], sm[1]
            if self.exact is not False and (at is None or at <= a):
                self.batches = [bt for bt in self.batches if not (a <= bt[0][0] and bt[0][-1] <= b)]
                for k in [k for k in self.sums if a < k <= b]:
                    del self.sums[k]
            self.sums[a] = sm

    def record(self, x: int) -> tuple | None:
        """Execution ``x`` if it is back."""
        r = self.decoded.pop(x, None)
        if r is not None:
            return r
        for i, (xs, blob) in enumerate(self.batches):
            if xs[0] <= x <= xs[-1]:
                del self.batches[i]
                d = self.decoded
                for k, r in zip(xs, marshal.loads(blob)):
                    d[k] = r
                return d.pop(x, None)
        return None

    def by_key(self, key: bytes) -> tuple | None:
        """The execution that started from the path ``key``, if one is back."""
        if self.batches or self.decoded:
            k = self.keyed
            for _, blob in self.batches:
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
            target = -1             # >= 0: a stretch stopped there, the next execution starts there
            while not budget.reason:
                if budget.stop_first and out.findings:
                    break
                if target >= 0:
                    j, target = target, -1
                else:
                    j = backtrack_optimal(self.st, len(self.st[6]) - 1, 0)
                    if self.lazy:
                        _trim(self.lazy, j)
                if j < 0:
                    out.exhaustive = True
                    break
                if budget.exhausted(out.executions + out.blocked):
                    break
                inside: list | None = None
                if self.back is not None:
                    inside = self._from_workers(j)
                    if inside is None:
                        continue
                elif pool > 0 and time.perf_counter() - t0 >= warmup:
                    if obs_cm is not None:              # the workers start without this process's observer
                        obs_cm.__exit__(None, None, None)
                    self.back = _start(self.backend, pool, runner, self.observe, budget.max_steps, self.deadline,
                                       self.step_timeout, self.address, self.job, budget.stop_first)
                    if obs_cm is not None:
                        self.obs = obs_cm.__enter__()
                    self.free = list(range(self.back.slots))
                    inside = self._from_workers(j)     # (hands out leaves: none is out yet)
                if self.lazy:
                    _materialize(self.st, self.lazy)
                if inside:
                    o, reason = _one(runner, tuple(self.st), j, self.obs, budget.max_steps, budget.stop_first,
                                     self.cache)
                else:
                    o, reason, target = self._stretch(j, t0 + warmup if self.back is None and pool > 0 else 0.0)
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

    def _from_workers(self, j: int) -> list | None:
        """Take the execution at node ``j`` (or the whole subtree there) from a worker if one
        ran it (None); hand out leaves to idle workers.  Otherwise it runs here: the units
        whose leaf's subtree the search is in (:meth:`_locate`)."""
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
                if self.back.lazy and u.running and not u.stopping and not u.eager and 0 not in u.sums:
                    self.back.stop(u.slot, u.uid, "want")     # what it holds back, now
                    u.asked = True
            if self._take(inside, j):
                return None
            self._poll()
            if self._take(inside, j):
                return None
            if self._wait_eager(inside) and self._take(inside, j):
                return None
            # caught up with the worker: it goes elsewhere.  Nothing more comes of an unchanged
            # leaf, so the search runs on as outside any leaf (in stretches); a changed leaf's
            # executions that came back are still taken by path digest as the search meets them
            for u in inside:
                self._stop(u)
                if u.exact:
                    u.drop()
            inside = [u for u in inside if u.node is not None]
        if self.free and self.here + self.remote >= self.idle_until:
            self._hand_out(j, inside)
        return inside

    def _wait_eager(self, inside: list) -> bool:
        """Wait (up to ``WANT`` seconds) for the workers asked for what they hold back to send
        it; whether any did."""
        ask = [u for u in inside if u.asked and not u.eager and u.running and not u.stopping]
        if not ask:
            return False
        end = time.perf_counter() + WANT
        while any(not u.eager and u.running for u in ask) and time.perf_counter() < end:
            self._poll(POLL)
        return any(u.eager for u in ask)

    def _take(self, inside: list, j: int) -> bool:
        """The execution at node ``j`` (or its whole subtree), from the deepest unit that has
        it."""
        st, out = self.st, self.out
        n = out.executions + out.blocked
        limit = self.budget.executions
        for u in reversed(inside):
            if u.exact:
                x = n - u.base
                sm = u.sums.get(x)
                # (a whole subtree is taken only if it fits a budget in executions: exact)
                if sm is not None and sm[2] == j and (limit is None or n + sm[1] - sm[0] < limit):
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
                    if u.running and not u.stopping:
                        self.back.stop(u.slot, u.uid, "changed")   # it needs every execution now

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
        """Take a completed subtree at once (a summary, :class:`~zonedev.rt.workers._Report`) -- the counts, the
        findings, the wakeup sequences for the nodes at or above its node, and its first
        event (which the backtrack that follows reads) -- as if it had been explored here."""
        execs, blocked, steps, truncated, note, findings, chunks, first = marshal.loads(sm[3])
        log = summary_log(chunks, sm[2])
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

    def _poll(self, timeout: float = 0.0) -> None:
        """Take in the workers' messages (waiting up to ``timeout`` for one): batches, or the
        end of a leaf (the worker is free again)."""
        for slot, kind, uid, data in self.back.poll(timeout):
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

    def _stretch(self, j: int, until: float) -> tuple:
        """Executions from node ``j`` run here in one call, for up to ``STRETCH`` seconds (or
        until ``until``, the end of the warm-up), while the search is inside no worker's leaf:
        below ``floor``, one past the deepest node with a leaf out (the search backtracking to
        it may enter that leaf), so the wakeup sequences for nodes with a leaf out, or above
        them, come back in order for :meth:`_insert` to watch, as one execution's do.  The
        search's order is the same (:func:`~zonedev.rt.dpor.explore_dpor`'s floor, as a
        worker explores a leaf).  ``(outcome, reason, target)``: ``target`` >= 0 when it
        stopped with a branch chosen there and not run."""
        budget = self.budget
        floor = 1 + max((u.j for u in self.units.values() if u.node is not None and id(u.node) in self.watch),
                        default=0)
        left = None
        if budget.executions is not None:
            left = budget.executions - self.out.executions - self.out.blocked
        now = time.perf_counter()
        stretch = _Stretch(budget, left, until if until > now else now + STRETCH,
                           getattr(self.back, "mail", None))
        o = explore_dpor(self.runner, stretch, self.obs, optimal=True, start={"stack": tuple(self.st), "target": j},
                         floor=floor, cache=self.cache)
        self.st = list(o.stack)
        # (a limit of the whole search is for the loop to see, after it backtracks: one that
        # ends exactly where the search does leaves it exhaustive, as in one process)
        return o, "", o.target

    def _commit(self, o: Outcome, reason: str) -> None:
        """Executions run here: their counts, findings and wakeup sequences."""
        out = self.out
        self.here += o.executions + o.blocked
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
