"""The worker side of a split Optimal-DPOR exploration (:mod:`zonedev.rt.parallel`): a worker
explores the subtree of one wakeup-tree leaf on its own copy of the stack and reports what it
ran, execution by execution and finished subtree by finished subtree (:class:`_Report`); the
forked workers talk to the search over pipes (:class:`_Pipes`), Ray tasks through
:class:`_Tasks`.
"""

from __future__ import annotations

import hashlib
import marshal
import pickle
import signal
import time
from typing import Any, Callable

from .dpor import explore_dpor
from .guard import step_guard
from .outcome import Budget, schedule_string, stop_requested

#: seconds between a worker's reports of the executions it ran
FLUSH = 0.01

#: seconds between a worker's looks at its pipe (a poll(), a few us): a stop, a leaf changed, the
#: search at the leaf asking for the executions held back (:class:`_Report`)
LISTEN = 0.001

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


def run_unit(runner: Any, payload: bytes, obs: Any, max_steps: int, deadline: float | None,
             step_timeout: float | None, stop_first: bool = False, emit: Callable[[tuple], None] | None = None,
             inbox: Callable[[], list] | None = None) -> Any:
    """Explore the subtree of one leaf (a pickled ``(base, (j, thread, done, extras, flat
    wakeup subtree))``: the stack cut at the leaf's node ``j``, and what is the leaf's own
    there) and report what it ran, in batches (:class:`_Report`).  Without ``emit``: the
    batches and the end (``(complete, executions)``) marshalled, at the end (Ray); with it: a
    batch every ``FLUSH`` seconds and ``inbox()`` read every ``LISTEN`` seconds (``stop``: stop
    early; ``changed``: the leaf changed before the search reached it, send every execution;
    ``want``: the search is at the leaf, send the executions held back), and the end
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
    rep = _Report(runner.names, lazy=emit is not None and inbox is not None)
    batches: list = []
    last = [time.perf_counter()] * 2       # the last batch sent, the last look at the inbox

    def record(target: int, thr: list, done: list, found: Any, counts: tuple, events: list, nodes: list,
               log: list) -> None:
        rep.add(target, (thr[:target + 1], done[:target + 1]), found, counts, events, nodes, log)
        now = time.perf_counter()
        if inbox is not None and now - last[1] >= LISTEN:
            last[1] = now
            for m in inbox():
                if m == "stop":
                    budget.stop("cancelled")
                else:                   # "want" (the search is at the leaf) or "changed"
                    rep.all = rep.all or m == "changed"
                    if rep.lazy:
                        rep.lazy = False
                        last[0] = 0.0   # what it held goes at once
        if now - last[0] >= FLUSH:
            last[0] = now
            if emit is None:
                batches.append(rep.batch())
            else:
                emit(rep.batch())

    with step_guard(runner, step_timeout, budget):
        o = explore_dpor(runner, budget, obs, optimal=True, start={"stack": tuple(stack), "target": j},
                         floor=j + 1, record=record)
    complete = bool(o.exhaustive and not budget.reason)
    if complete:
        rep.close(0)
    else:
        rep.lazy = False        # stopped: what it held goes (the search may still come to it)
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

#: executions a worker holds back at most (:class:`_Report`); past that it sends them, and the
#: search's own limit on what it keeps of a leaf (parallel.HOLD) applies.  (Subtrees close
#: often: on lastzero(14) and release_vs_fault a worker never held more than 200.)
HELD = 10000


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
    counts, first note, findings as one process keeps them (pickled), the wakeup sequences in
    the order asked, as marshalled chunks with their lowest node (those for nodes at or above
    ``t``, the only ones that outlive the subtree, are what the search inserts:
    :func:`summary_log`; a chunk with none for nodes at or above a subtree's node is not passed
    on to it) and the light
    lists of execution ``a``'s first event.  Each sequence is marshalled once, into the chunk
    of the subtree whose first execution asked for it; an enclosing subtree's summary carries
    its inner ones' chunks as they are (before, every summarised level marshalled the
    sequences for the nodes above it again: closing subtrees cost a worker 14 us per
    readers(13) execution, now 7).  A search that is at node ``t`` about
    to run execution ``a``, with the same tree, takes it at once.

    Executions are held back (``lazy``, a worker the search can ask) until the search asks
    for them (it is at the leaf and the subtree is not finished) or the leaf ends unfinished:
    most leaves are taken as summaries, and an execution inside a summarised subtree, not its
    first, is dropped unsent (unless the leaf changed, ``all``: the search then takes what it
    can one execution at a time, by path digest).  Its record (findings pickled, path digest,
    lists marshalled) is made only if it is sent: on getput (v5.18) that was 47 us of a
    worker's 212 per execution."""

    def __init__(self, names: list, lazy: bool = False) -> None:
        self.names = names
        self.n = 0                          # executions so far
        self.recs: list = []                # not sent yet
        self.sums: list = []
        self.all = False                    # keep every execution (the leaf changed)
        self.lazy = lazy                    # hold the executions back until asked
        # the subtrees not left yet, nodes increasing: [first execution, node, its first
        # execution's wakeup sequences for nodes at or above it, the chunks of the subtrees left
        # inside it, findings kept, first note, counts (executions, blocked, steps, truncated),
        # the first event's light lists] -- each passes what outlives it to the one it is in
        # when it is left, so nothing is gathered twice
        self.open: list = []

    def add(self, t: int, key: tuple, found: Any, counts: tuple, events: list, nodes: list, log: list) -> None:
        """Execution ``n`` ran from node ``t``; ``key``: its path's threads and ``done``
        (:func:`path_key` of them is made if it is sent)."""
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
        self.open.append([x, t, [ev for ev in log if ev[0] <= t], [], kept, note, [execs, blocked, steps, truncated],
                          (events[1][0], events[2][0], events[3][0])])
        self.recs.append((x, found, counts, events, nodes, log, key))    # made into a record in batch()
        self.n = x + 1
        if self.lazy and len(self.recs) > HELD:
            self.lazy = False

    def close(self, t: int) -> None:
        """Execution ``n`` starts at node ``t``: the open subtrees at or below it are left."""
        n = self.n
        op = self.open
        while op and op[-1][1] >= t:
            a, t0, log, chunks, kept, note, counts, first = op.pop()
            if log:     # its first execution's go first; a chunk is (its lowest node, bytes)
                chunks.insert(0, (min([ev[0] for ev in log]), marshal.dumps(log, 4)))
            if n - a >= SUMMARY or a == 0:
                whole = (*counts, note,
                         pickle.dumps(list(kept.values()), protocol=pickle.HIGHEST_PROTOCOL) if kept else b"",
                         chunks, first)
                self.sums.append((a, n - 1, t0, marshal.dumps(whole, 4)))
                recs = self.recs
                if not self.all:    # those inside it, not its first, are not needed
                    while recs and recs[-1][0] > a:
                        recs.pop()
            if op:
                up = op[-1]
                tu = up[1]      # a chunk all below it outlives neither it nor those around it
                up[3].extend([c for c in chunks if c[0] <= tu])
                uc = up[6]
                for i in range(4):
                    uc[i] += counts[i]
                if kept:
                    uk = up[4]
                    for sig, f in kept.items():
                        old = uk.get(sig)
                        if old is None or (f.preemptions, f.steps) < (old.preemptions, old.steps):
                            uk[sig] = f
                if note and not up[5]:
                    up[5] = note

    def pending(self) -> bool:
        return bool(self.sums or self.recs and not self.lazy)

    def batch(self) -> tuple:
        """``(the executions it sends, their records marshalled, summaries, whether it sends
        executions)``: none while ``lazy``.  Unless told the leaf changed (``all``), an
        execution inside a summarised subtree, not its first, was dropped when the subtree
        closed: a search that gets there after the summary takes the subtree whole, and one
        already inside it has caught up with the worker and runs on by itself.  (A changed
        leaf is taken one execution at a time: it needs them all.)"""
        if self.lazy:
            out: tuple = ((), b"", self.sums, False)
            self.sums = []
            return out
        xs, recs = [], []
        for x, found, counts, events, nodes, log, key in self.recs:
            # events: evd evx er ew clk nxt nmb; nodes: sx thr pend enab sleep bt done
            heavy = marshal.dumps(([events[0], events[4], events[5], events[6]], [nodes[2], nodes[5]]), 4)
            xs.append(x)
            recs.append((pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL) if found else found, counts,
                         events[1:4], [nodes[0], nodes[1], nodes[3], nodes[4], nodes[6]], log, heavy,
                         path_key(*key)))
        out = (xs, marshal.dumps(recs, 4), self.sums, True)
        self.recs = []
        self.sums = []
        return out


def summary_log(chunks: list, t: int) -> list:
    """A summary's wakeup sequences for the nodes at or above ``t`` (its node), in the order
    asked, from its marshalled chunks (:class:`_Report`)."""
    return [ev for lo, ch in chunks if lo <= t for ev in marshal.loads(ch) if ev[0] <= t]


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

        def inbox(uid: int = uid) -> list:
            got = []
            while conn.poll():
                m = conn.recv()
                if m is None:
                    raise SystemExit(0)
                if m[1] == uid:
                    got.append(m[0])      # "stop", "changed", "want" (others are for leaves done)
            return got

        end = run_unit(job["runner"], payload, obs, job["max_steps"], job["deadline"], job["step_timeout"],
                       job["stop_first"], emit=emit, inbox=inbox)
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
        self.lazy = True        # a worker holds its executions back until asked (_Report)

        self.live = list(self.conns)

    def start(self, slot: int, uid: int, payload: bytes) -> None:
        self.conns[slot].send(("unit", uid, payload))

    def stop(self, slot: int, uid: int, what: str = "stop") -> None:
        """Tell the worker to stop its leaf (or, ``changed``, that the leaf changed)."""
        try:
            self.conns[slot].send((what, uid, None))
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

    def mail(self) -> bool:
        """Whether a worker has sent something not read yet."""
        for c in self.live:
            if c.poll():
                return True
        return False

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
        self.lazy = False       # a task sends everything when it ends
        self.running: dict[int, tuple[int, Any]] = {}

    def start(self, slot: int, uid: int, payload: bytes) -> None:
        self.running[uid] = (slot, self.back.submit(payload))

    def stop(self, slot: int, uid: int, what: str = "stop") -> None:
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
