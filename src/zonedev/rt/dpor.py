"""DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, POPL'14): source sets (Algorithm 1),
or wakeup trees (Optimal-DPOR, Algorithm 2) with ``optimal=True``.

Every complete execution explored is a different Mazurkiewicz trace; wasted work shows up only
as sleep-set-blocked executions, counted apart (``Outcome.blocked``); Optimal-DPOR has none on
the benchmark programs.

Blocking: the release of a lock orders the next acquire of it in the vector clocks (the acquire
could not have happened earlier), without being a race; and at a hang, each blocked thread's
pending step races with the steps it depends on (a wait whose condition another step consumed),
so the orders in which it would have gone first are explored.

Dependence between two steps: the same object and at least one of them writes (READ/READ is
independent), acquires of the same lock, and a step's extra ``reads`` objects count as reads.
RELEASE is independent of everything except program order (a blocked acquire is ordered after
the release by blocking, not by dependence).  A race whose reversal is infeasible (no initial of
the reversed sequence is enabled where it would have to start) adds no backtrack point.

Happens-before is tracked with vector clocks whose entries are global event indexes (+1), so
``e`` happens before ``f`` iff ``clk[f][thread(e)] > e``.  Threads cannot be forked (greenlets),
so reaching a backtrack point replays the prefix from a fresh setup.
"""

from __future__ import annotations

import time
from typing import Any, Final, cast

from ..sync import primitives as _primitives, world as _world
from . import native
from .engine import Runner
from .outcome import Budget, Outcome, preemptions_of

# the kinds of access, typed (the compiled copy compares them as C strings)
READ: Final[str] = _world.READ
ACQUIRE: Final[str] = _world.ACQUIRE
RELEASE: Final[str] = _primitives.RELEASE

# Footprints are pairs of bitmasks over object ids, (reads, writes): a READ reads its object, a
# RELEASE touches nothing, any other kind writes it; a step's extra ``reads`` and its observed
# extra accesses are added.  Two steps are dependent iff one writes what the other reads or
# writes: ``wa & (rb | wb) or wb & ra``.


#: a step descriptor: (object id, kind of access, ids of the objects it also reads)
Desc = tuple[int, str, tuple[int, ...]]

#: a step that waited is ordered after the event that made it ready (not raced with it); False
#: restores the previous behaviour, for the benchmark's before/after (benchmarks/run.py)
ORDER_BY_ENABLER = True


def dependent(a: tuple, b: tuple) -> bool:
    """Dependence of two step descriptors ``(oid, kind, reads)`` (reference definition)."""
    ar, aw = _fp(a)
    br, bw = _fp(b)
    return bool(aw & (br | bw) or bw & ar)


def _fp(d: tuple) -> tuple[int, int]:
    o, k, rs = d
    r = 0
    for x in rs:
        r |= 1 << x
    if k == READ:
        return r | 1 << o, 0
    if k == RELEASE:
        return r, 0
    return r, 1 << o


def explore_dpor(runner: Runner, budget: Budget, observer=None, optimal: bool = False,
                 start: dict | None = None, floor: int = 0, record=None, cache: dict | None = None) -> Outcome:
    """``observer``: an installed :class:`~zonedev.rt.observe.Observer`; steps' unannounced
    accesses to sync objects are then added to their footprints.  ``optimal``: Optimal-DPOR
    (wakeup trees instead of source sets; Abdulla et al. POPL'14 Algorithm 2).

    One execution, or a leaf's subtree, of a split exploration (:mod:`zonedev.rt.parallel`,
    optimal only): ``start`` is the
    exploration stack right after a backtrack (``{"stack": ..., "target": j}``), ``floor`` > j
    the depth above which this call does not backtrack: it explores the subtree below the
    prefix of ``floor`` events and stops where the whole search would backtrack to a node above
    it.  Wakeup sequences for nodes above ``floor`` are not inserted but listed in
    ``out.log`` as ``(node, sequence)``, in the order found; ``out.stack`` is the stack cut at
    ``floor``, for the caller to go on from (:func:`insert`, :func:`backtrack_optimal`), and
    ``out.target`` -1 -- unless the budget stopped the call with a branch chosen at node
    ``out.target`` and not run yet: then the stack is whole, to start from there again.

    ``record(target, thr, done, found, counts, events, nodes, log)``, when given, is called
    after every execution (a worker's speculative exploration, :mod:`zonedev.rt.parallel`):
    ``target`` is the node it started from (``thr`` and ``done``: the stack's lists, whose
    first ``target + 1`` entries are its path), ``counts`` ``(executions, blocked, steps, truncated, note,
    preemptions, schedule)`` (the last two for an execution that found something), ``events`` and
    ``nodes`` the stack's per-event and per-node lists from ``target`` on, ``log`` every wakeup
    sequence it asked for (inserted here or not), in order (the list is the callee's: ``out.log``
    then holds none of them).  ``cache``: a dict kept across calls
    on the same runner (footprints of step descriptors, the start state), for a caller that
    runs one execution a call."""
    # the hot locals' types, for mypyc (an untyped local is a PyObject and its every operation a
    # generic call): a step descriptor and its parts, bits, events, race lists
    d: Desc
    o: int
    k: str
    rs: tuple[int, ...]
    b: int
    m: int
    e: int
    te: int
    deps: list[int] | None
    races: list[int] | None
    out = Outcome("optimal-dpor" if optimal else "dpor")
    budget.out = out
    log: list = []
    by_enabler: bool = ORDER_BY_ENABLER
    wut: list[list] = []      # optimal: node i's wakeup tree, [[thread, reads, writes, children], ...]
    childtree: list = []
    obs: Any = observer
    obr: set[int] = obs.r if obs is not None else set()     # what a recorded step read, wrote
    obw: set[int] = obs.w if obs is not None else set()
    evd: list[tuple] = []     # event i: its step descriptor (oid, kind, reads oids)
    evx: list[Any] = []       # event i: observed extra (reads, writes) oids, or None
    er: list[int] = []        # event i: footprint reads mask (extras included)
    ew: list[int] = []        # event i: footprint writes mask
    sx: list[Any] = []        # node i: None or {thread: (reads, writes)} observed extras of sleeping/done threads
    t0 = time.perf_counter()
    thr: list[int] = []       # node i: the thread chosen there (= thread of event i)
    pend: list[tuple] = []    # node i: every thread's pending footprint (reads, writes)
    enab: list[int] = []      # node i: enabled threads (bitmask)
    sleep: list[int] = []     # node i: sleep set on arrival (bitmask)
    bt: list[int] = []        # node i: backtrack set
    done: list[int] = []      # node i: threads explored (or being explored) from here
    clk: list[tuple[int, ...]] = []   # event i: vector clock
    target = 0                # positions < target are replayed as they were
    first = True
    max_steps: int = budget.max_steps
    steps = 0
    if cache is None:
        cache = {}
    fpcache: dict = cache.setdefault("fp", {})   # (oid, kind, reads) -> (that, its footprint)
    nxt: list[Any] = []       # event i: its thread's next pending (descriptor, footprint), None: finished
    nmb: list[bool] = []      # event i: whether that next step may block
    init: Any = cache.get("init")   # the state every execution starts in
    started = False
    if budget.resume is not None:     # a checkpoint: the exploration stack at an execution boundary
        r = budget.resume
        (wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb) = r["stack"]
        target, steps, started = r["target"], r["steps"], r["started"]
        for k, v in r["out"].items():
            setattr(out, k, v)
        first = False
    if start is not None:
        (wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb) = start["stack"]
        target = start["target"]
        first = False
    every = record is not None
    stopped_at = -1           # the budget stopped the search with a branch chosen there, not run
    while True:
        if started:
            stop = budget.exhausted(out.executions + out.blocked)
            if budget.due:
                budget.save({"stack": (wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb),
                             "target": target, "steps": steps, "started": started,
                             "out": {k: getattr(out, k) for k in ("executions", "blocked", "note", "findings")}})
            if stop:
                stopped_at = target
                break
        started = True
        if every:
            rtarget = target
            counts = (out.executions, out.blocked, out.truncated, out.note)
        runner.begin()
        n: int = runner.n
        pool: list[Any] = runner.pool
        fin: list[bool] = runner.fin
        p_obj: list[Any] = runner.p_obj
        p_kind: list[str] = runner.p_kind
        p_reads: list[Any] = runner.p_reads    # tuples, or what model code passed
        p_ready: list[Any] = runner.p_ready
        exc: list[Any] = runner.exc
        violations: list[Any] = runner.world.violations
        check_inv = bool(runner.invariants)
        armed = False           # the observer made ready for this execution's recorded steps
        own = False             # it leaves the step's announced object out (FAST)
        if first:
            first = False
            fs = runner.start_findings()
            if fs:
                for f in fs:
                    out.add(f, [], 0, runner.names)
        zero = (0,) * n
        tclk = [zero] * n
        lastw: dict[int, int] = {}
        lastrel: dict[int, int] = {}   # lock -> its last release (release -> next acquire is forced)
        rsince: dict[int, list[int]] = {}
        if init is None:
            # every execution starts in the same state (scenarios are deterministic): the
            # threads' first pending steps are read once
            # enabled threads: alive ones, less those whose pending step may block and cannot go on
            alive = 0
            mayblock = 0
            curd: list[Any] = [None] * n   # thread -> pending step descriptor
            curf: list[Any] = [None] * n   # thread -> pending step footprint
            for t in range(n):
                if not fin[t]:
                    alive |= 1 << t
                    if p_ready[t] is not None:
                        mayblock |= 1 << t
                    reads = p_reads[t]
                    key = (p_obj[t].oid, p_kind[t], tuple([r.oid for r in reads]) if reads else ())
                    f = fpcache.get(key)
                    if f is None:
                        f = fpcache[key] = (key, _fp(key))
                    curd[t], curf[t] = f
            init = cache["init"] = (alive, mayblock, curd, curf)
        alive = cast(int, init[0])
        mayblock = cast(int, init[1])
        curd = init[2][:]
        curf = init[3][:]
        # -- replay the prefix ------------------------------------------------------------------
        runner.replay(thr, target)      # the threads run it; below, the bookkeeping it implies
        for i in range(target):
            p = thr[i]
            d = cast(Desc, evd[i])
            o, k, rs = d
            if k == RELEASE:
                lastrel[o] = i
            else:
                if k == READ:
                    rl = rsince.get(o)
                    if rl is None:
                        rsince[o] = [i]
                    else:
                        rl.append(i)
                else:
                    rsince[o] = []
                    lastw[o] = i
                for r in rs:
                    rl = rsince.get(r)
                    if rl is None:
                        rsince[r] = [i]
                    else:
                        rl.append(i)
            x = evx[i]
            if x is not None:
                for r in x[0]:
                    rl = rsince.get(r)
                    if rl is None:
                        rsince[r] = [i]
                    else:
                        rl.append(i)
                for r in x[1]:
                    rsince[r] = []
                    lastw[r] = i
            tclk[p] = clk[i]
            # p's next pending step is the one it had after this event the first time
            f = nxt[i]
            if f is None:
                curd[p] = curf[p] = None
                alive &= ~(1 << p)
                mayblock &= ~(1 << p)
            else:
                curd[p], curf[p] = f
                if nmb[i]:
                    mayblock |= 1 << p
                else:
                    mayblock &= ~(1 << p)
        steps += target
        runner.nviol = len(runner.world.violations)
        # -- run on from the backtrack point ----------------------------------------------------
        found: Any = None
        i = target
        prev = thr[i - 1] if i else -1
        while True:
            if i < len(thr):
                p = thr[i]
                if optimal:
                    childtree = wut[i][0][3]
            else:
                em = alive
                if mayblock:
                    m = mayblock
                    while m:
                        b = m & -m
                        m ^= b
                        if not p_ready[b.bit_length() - 1]():
                            em ^= b
                sl = 0
                nsx: Any = None
                if i:
                    j = i - 1
                    cand = (sleep[j] | done[j]) & ~(1 << thr[j])
                    if cand:
                        pj = pend[j]
                        eR = er[j]
                        eW = ew[j]
                        eA = eR | eW
                        sxj = sx[j]
                        if not sxj:
                            while cand:
                                b = cand & -cand
                                cand ^= b
                                rw: tuple[int, int] = pj[b.bit_length() - 1]   # typed: unboxed ints
                                sr = rw[0]
                                sw = rw[1]
                                if not (sw & eA or eW & sr):
                                    sl |= b
                        else:
                            while cand:
                                b = cand & -cand
                                cand ^= b
                                s = b.bit_length() - 1
                                rw = pj[s]
                                sr = rw[0]
                                sw = rw[1]
                                xs = sxj.get(s)
                                if xs is not None:
                                    sr |= xs[0]
                                    sw |= xs[1]
                                if not (sw & eA or eW & sr):
                                    sl |= b
                                    if xs is not None:
                                        if nsx is None:
                                            nsx = {}
                                        nsx[s] = xs
                p = -1
                if optimal:
                    tree = childtree if i else (wut[0] if wut else childtree)
                    while tree:
                        t = cast(int, tree[0][0])
                        if em >> t & 1 and not sl >> t & 1:
                            p = t
                            break
                        del tree[0]      # asleep, or its reversal turned out infeasible here
                avail = em & ~sl
                if p < 0 and not avail:
                    if em:
                        out.blocked += 1
                    else:
                        if alive:
                            _blocked_races(i, alive, curd, curf, tclk, lastw, rsince, thr, clk, enab,
                                           sleep, bt, pend, er, ew, done, sx, wut, optimal, floor, log, every)
                        out.executions += 1
                        if alive or runner.run.finals:
                            fs = runner.findings_at_end(i)
                            if fs:
                                found = (found or []) + fs
                    break
                if i >= max_steps:
                    out.note = f"an execution exceeded {max_steps} steps (a spin loop?); cut there"
                    out.truncated += 1
                    out.blocked += 1
                    break
                if p < 0:
                    p = prev if prev >= 0 and avail >> prev & 1 else (avail & -avail).bit_length() - 1
                    if optimal:
                        tree.append([p, None, 0, []])
                if optimal:
                    wut.append(tree)
                    childtree = tree[0][3]
                thr.append(p)
                pend.append(tuple(curf))
                enab.append(em)
                sleep.append(sl)
                sx.append(nsx)
                bt.append(1 << p)
                done.append(1 << p)
            d = cast(Desc, curd[p])
            frw: tuple[int, int] = curf[p]
            fr = frw[0]
            fw = frw[1]
            runner.cur = p
            if obs is None:
                pool[p].switch()
                x = None
            else:
                # recording on for this one step (what ``obs.on = True`` does, without its
                # look at the world every step: ``arm`` does that once an execution)
                if not armed:
                    own = obs.arm()
                    armed = True
                obr.clear()
                obw.clear()
                if own:
                    obs.own = p_obj[p]
                obs._on = True
                pool[p].switch()
                obs._on = False
                x = None
                if obr or obw:
                    o, k, rs = d
                    xw = tuple(sorted(v for v in obw if v != o))
                    xr = tuple(sorted(v for v in obr if v != o and v not in rs and v not in obw))
                    if xr or xw:
                        x = (xr, xw)
                        for v in xr:
                            fr |= 1 << v
                        for v in xw:
                            fw |= 1 << v
            evd.append(d)
            evx.append(x)
            er.append(fr)
            ew.append(fw)
            if optimal:
                node = wut[i][0]
                node[1] = fr
                node[2] = fw
            # -- event i by p: clock and races ---------------------------------------------------
            o, k, rs = d
            tc = tclk[p]
            if mayblock >> p & 1 and k != ACQUIRE and by_enabler:
                # a step that waited (a completion, a wait_event): the event that made it ready
                # orders it, as a lock's release orders the next acquire (below): it could not
                # have run before that event, so reversing them is no race.  Without this the
                # "reversal" ran the events before the enabler, found the waiter still blocked
                # and ended sleep-set blocked (6-10 % of release_vs_fault's executions).
                lo = tc[p]
                j = i - 1
                while j >= lo and enab[j] >> p & 1:
                    j -= 1
                if j >= lo:
                    tc = tuple([a if a >= b else b for a, b in zip(tc, clk[j])])
            deps = None
            if k != RELEASE:
                if k == READ:
                    w = lastw.get(o)
                    if w is not None:
                        deps = [w]
                    rl = rsince.get(o)
                    if rl is None:
                        rsince[o] = [i]
                    else:
                        rl.append(i)
                else:
                    rl = rsince.get(o)
                    if rl:
                        deps = rl
                    else:
                        w = lastw.get(o)
                        if w is not None:
                            deps = [w]
                    rsince[o] = []
                    lastw[o] = i
                for r in rs:
                    w = lastw.get(r)
                    if w is not None:
                        if deps is None:
                            deps = [w]
                        else:
                            deps = deps + [w]
                    rl = rsince.get(r)
                    if rl is None:
                        rsince[r] = [i]
                    else:
                        rl.append(i)
            if x is not None:
                deps = list(deps) if deps else []
                for r in x[0]:
                    w = lastw.get(r)
                    if w is not None:
                        deps.append(w)
                    rl = rsince.get(r)
                    if rl is None:
                        rsince[r] = [i]
                    else:
                        rl.append(i)
                for r in x[1]:
                    rl = rsince.get(r)
                    if rl:
                        deps.extend(rl)
                    else:
                        w = lastw.get(r)
                        if w is not None:
                            deps.append(w)
                    rsince[r] = []
                    lastw[r] = i
                deps = [e for e in dict.fromkeys(deps) if e != i]
            c: tuple[int, ...] | None = None
            if deps:
                races = None
                for e in deps:
                    te = thr[e]
                    if te != p and tc[te] <= e:
                        # not ordered before this step: a race
                        if races is None:
                            races = [e]
                        else:
                            races.append(e)
                if races is not None:
                    # this step's clock: p's joined with the racing events' (the others are
                    # ordered before p's previous step already)
                    cl: list[int]
                    full: Any = None
                    if len(races) == 1:
                        if tc is zero:      # p's first step
                            cl = list(clk[races[0]])
                        else:
                            cl = [a if a >= b else b for a, b in zip(tc, clk[races[0]])]
                    else:
                        # a racing event whose clock is its own entry alone (nothing happened
                        # before it: sum == own entry) adds that entry; the others are joined
                        cl = list(tc)
                        tm = 0              # threads of the races with such a clock
                        for e in races:
                            ce = clk[e]
                            if sum(ce) == e + 1:
                                te = thr[e]
                                tm |= 1 << te
                                if cl[te] <= e:
                                    cl[te] = e + 1
                            elif full is None:
                                full = [ce]
                            else:
                                full.append(ce)
                        if full is not None:
                            cl = list(map(max, cl, *full))
                    cl[p] = i + 1
                    c = tuple(cl)
                    if len(races) > 1 and (full is not None or tm.bit_count() != len(races)):
                        # (races on distinct threads, none with anything before it: none
                        # happens before another, all are kept)
                        keep = []
                        for e in races:
                            te = thr[e]
                            for e2 in races:
                                if e2 > e and clk[e2][te] > e:
                                    break
                            else:
                                keep.append(e)
                        races = keep
                    for e in races:
                        if optimal:
                            _wakeup(e, i, p, fr, fw, thr, clk, er, ew, pend, sleep, done, sx, wut, floor, log,
                                    every)
                        else:
                            _backtrack(e, i, p, c, thr, clk, enab, sleep, bt)
            if c is None:
                cl = list(tc)
                cl[p] = i + 1
                c = tuple(cl)
            if k == ACQUIRE:
                forced = lastrel.get(o)
                if forced is not None:
                    # the lock was free for this acquire because of that release: order, not race
                    c = tuple([a if a >= b else b for a, b in zip(c, clk[forced])])
            elif k == RELEASE:
                lastrel[o] = i
            clk.append(c)
            tclk[p] = c
            if fin[p]:
                curd[p] = curf[p] = None
                alive &= ~(1 << p)
                mayblock &= ~(1 << p)
                nxt.append(None)
                nmb.append(False)
            else:
                reads = p_reads[p]
                key = (p_obj[p].oid, p_kind[p], tuple([r.oid for r in reads]) if reads else ())
                f = fpcache.get(key)
                if f is None:
                    f = fpcache[key] = (key, _fp(key))
                curd[p], curf[p] = f
                nxt.append(f)
                if p_ready[p] is None:
                    mayblock &= ~(1 << p)
                    nmb.append(False)
                else:
                    mayblock |= 1 << p
                    nmb.append(True)
            if check_inv or len(violations) != runner.nviol or exc[p] is not None:
                fs = runner.findings_after_step(i, p)
                if fs:
                    found = (found or []) + fs
            i += 1
            prev = p
        steps += i - target
        if found:
            out.add_found(found, thr[:i], enab, runner.names)
        runner.end()
        if every:
            record(rtarget, thr, done, found, (out.executions - counts[0], out.blocked - counts[1], i, out.truncated - counts[2],
                                    out.note if out.note != counts[3] else "",
                                    preemptions_of(thr[:i], enab) if found else 0, thr[:i] if found else None),
                   [evd[target:], evx[target:], er[target:], ew[target:], clk[target:], nxt[target:], nmb[target:]],
                   [sx[target + 1:], thr[target + 1:], pend[target + 1:], enab[target + 1:], sleep[target + 1:],
                    bt[target + 1:], done[target + 1:]], log)
            # handed over: kept here, a worker's log would hold every sequence of its run, and
            # the garbage collector would walk them all again at every collection
            log = []
        if found and budget.stop_first:
            break
        # -- backtrack ---------------------------------------------------------------------------
        j = len(thr) - 1
        if optimal:
            j = backtrack_optimal((wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb),
                                  j, floor)
            if j >= floor:
                target = j
        while not optimal and j >= floor:
            cb = bt[j] & ~done[j] & ~sleep[j]
            if cb:
                b = cb & -cb
                done[j] |= b
                if evx[j] is not None:
                    if sx[j] is None:
                        sx[j] = {}
                    sx[j][thr[j]] = (er[j], ew[j])
                thr[j] = b.bit_length() - 1
                del thr[j + 1:], pend[j + 1:], enab[j + 1:], sleep[j + 1:], bt[j + 1:], done[j + 1:]
                del clk[j:], evd[j:], evx[j:], er[j:], ew[j:], nxt[j:], nmb[j:], sx[j + 1:]
                target = j
                break
            j -= 1
        if j < floor:
            out.exhaustive = True
            break
    if floor:
        out.log = log
        out.stack = (wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb)
        out.target = stopped_at
        if floor < len(thr) and stopped_at < 0:
            out.stack = tuple(x[:floor] for x in out.stack)
    out.steps = steps
    out.elapsed = time.perf_counter() - t0
    return out


def backtrack_optimal(stack: tuple | list, j: int, floor: int = 0) -> int:
    """Optimal-DPOR's backtrack from node ``j`` down to ``floor``: the node's explored child
    leaves its wakeup tree (and joins done, with its observed extras), children that cannot
    start there go too; at the first node with a child left the stack is cut to it and that
    child chosen.  Returns the node (the next execution's replay target), or ``floor - 1``."""
    wut: list[list]
    thr: list[int]
    enab: list[int]
    sleep: list[int]
    done: list[int]
    er: list[int]
    ew: list[int]
    (wut, evd, evx, er, ew, sx, thr, pend, enab, sleep, bt, done, clk, nxt, nmb) = stack
    t: int
    while j >= floor:
        tree: list = wut[j]
        del tree[0]
        done[j] |= 1 << thr[j]
        if j < len(evx) and evx[j] is not None:
            if sx[j] is None:
                sx[j] = {}
            sx[j][thr[j]] = (er[j], ew[j])
        blocked_here = sleep[j] | done[j]
        while tree:
            t = cast(int, tree[0][0])
            if enab[j] >> t & 1 and not blocked_here >> t & 1:
                break
            del tree[0]
        if tree:
            thr[j] = t      # the child the loop above stopped at
            del thr[j + 1:], pend[j + 1:], enab[j + 1:], sleep[j + 1:], bt[j + 1:], done[j + 1:]
            del clk[j:], evd[j:], evx[j:], er[j:], ew[j:], nxt[j:], nmb[j:], sx[j + 1:], wut[j + 1:]
            return j
        j -= 1
    return j


def _backtrack(e: int, i: int, p: int, c: tuple[int, ...], thr: list[int], clk: list[tuple[int, ...]],
               enab: list[int], sleep: list[int], bt: list[int]) -> None:
    """Race e -> i (by p): make sure some initial of notdep(e).p is in backtrack(pre(e))."""
    te = thr[e]
    pb = 1 << p
    if bt[e] & pb:
        # common case: p is already to be explored there; done if p is an initial of v
        for j in range(e + 1, i):
            cj = clk[j]
            if cj[te] <= e and (c[thr[j]] > j or thr[j] == p):
                break
        else:
            return
    vs = [j for j in range(e + 1, i) if clk[j][te] <= e]
    ini = 0
    seen = 0
    for idx in range(len(vs)):
        j = vs[idx]
        b = 1 << thr[j]
        if seen & b:
            continue
        seen |= b
        cj = clk[j]
        for x in range(idx):
            kk = vs[x]
            if cj[thr[kk]] > kk:
                break
        else:
            ini |= b
    if not seen & pb:
        for kk in vs:
            if c[thr[kk]] > kk:
                break
        else:
            ini |= pb
    if ini & bt[e]:
        return
    cand = ini & enab[e]
    if not cand:
        return   # the reversal is infeasible here: no initial is enabled at pre(e)
    awake = cand & ~sleep[e]
    if awake:
        cand = awake
    if cand & pb:
        bt[e] |= pb
    else:
        bt[e] |= cand & -cand


def _wi_remove(v: list, t: int, fr: int | None, fw: int) -> list | None:
    """If thread ``t`` (whose next step has footprint ``fr``/``fw`` when it has none in ``v``;
    ``fr`` None: unknown) is a weak initial of ``v`` (a list of (thread, reads, writes)), return
    ``v`` without t's first event; else None."""
    ar = aw = 0
    for idx in range(len(v)):
        u, r, w = v[idx]
        if u == t:
            if w & (ar | aw) or r & aw:
                return None
            return v[:idx] + v[idx + 1:]
        ar |= r
        aw |= w
    if fr is None or fw & (ar | aw) or fr & aw:
        return None
    return v


def _wakeup(e: int, i: int, p: int, fr: int, fw: int, thr: list[int], clk: list[tuple[int, ...]],
            er: list[int], ew: list[int], pend: list[tuple], sleep: list[int], done: list[int], sx: list,
            wut: list[list], floor: int = 0,
            log: Any = None, every: bool = False) -> None:
    """Race e -> i: insert notdep(e).i into the wakeup tree at pre(e), unless a sleeping thread
    is a weak initial of it or a leaf of the tree covers it already.

    Threads are tested against v by footprint masks: a thread with no event in v is a weak
    initial iff its next step is independent of v's whole footprint.  One walk does both the
    covering test and the search for where to insert: at each level it follows the first child
    whose thread is a weak initial of what is left of v.

    ``every``: sequences for nodes at or below ``floor`` are logged too (before the covering
    test, which depends on this process's tree)."""
    te = thr[e]
    vs = [j for j in range(e + 1, i) if clk[j][te] <= e]   # notdep(e): v is vs.p
    if not vs:
        # v is p's step alone (the common case): the same tests, specialised
        asleep = (sleep[e] | done[e]) & ~(1 << te)
        if asleep:
            if asleep >> p & 1:
                return
            fa = fr | fw
            sxe = sx[e]
            pe = pend[e]
            while asleep:
                b = asleep & -asleep
                asleep ^= b
                s = b.bit_length() - 1
                rw2: tuple[int, int] = pe[s]   # typed: unboxed ints
                r = rw2[0]
                w = rw2[1]
                if sxe:
                    xs = sxe.get(s)
                    if xs is not None:
                        r |= xs[0]
                        w |= xs[1]
                if not (w & fa or r & fw):
                    return
        if e < floor:
            log.append((e, [(p, fr, fw)]))
            return
        if every:
            log.append((e, [(p, fr, fw)]))
        _insert_one(wut[e], p, fr, fw)
        return
    v = [(thr[j], er[j], ew[j]) for j in vs]
    inv = ar = aw = 0
    for u, r, w in v:
        inv |= 1 << u
        ar |= r
        aw |= w
    pb = 1 << p
    pfirst = not inv & pb           # p's first event in v is the race's second event
    inv |= pb
    vr = ar | fr
    vw = aw | fw
    asleep = (sleep[e] | done[e]) & ~(1 << te)
    if asleep:
        # a sleeping thread with no event in v is a weak initial iff its step is independent of
        # all of v: one test against v's whole footprint
        va = vr | vw
        sxe = sx[e]
        pe = pend[e]
        while asleep:
            b = asleep & -asleep
            asleep ^= b
            s = b.bit_length() - 1
            if inv & b:
                if b == pb and pfirst:
                    if not (fw & (ar | aw) or fr & aw):
                        return
                    continue
                xr = xw = 0
                for u, r, w in v:
                    if u == s:
                        if not (w & (xr | xw) or r & xw):
                            return
                        break
                    xr |= r
                    xw |= w
            else:
                rw2 = pe[s]   # typed: unboxed ints
                r = rw2[0]
                w = rw2[1]
                if sxe:
                    xs = sxe.get(s)
                    if xs is not None:
                        r |= xs[0]
                        w |= xs[1]
                if not (w & va or r & vw):
                    return
    v.append((p, fr, fw))
    if e < floor:
        log.append((e, v))
        return
    if every:
        log.append((e, list(v)))
    _insert(wut[e], v, inv, vr, vw)


def insert(node: list[list], v: list[tuple[int, int, int]]) -> list | None:
    """Insert the sequence ``v`` ((thread, reads, writes) each) into the wakeup tree ``node``
    (a list of children), unless a leaf of the tree covers it already.  One walk does both the
    covering test and the search for where to insert: at each level it follows the first child
    whose thread is a weak initial of what is left of v.  Returns the child of ``node`` whose
    subtree got something (None: nothing was inserted, or v went in as a new child)."""
    if len(v) == 1:
        p, fr, fw = v[0]
        return _insert_one(node, p, fr, fw)
    inv = vr = vw = 0
    for u, r, w in v:
        inv |= 1 << u
        vr |= r
        vw |= w
    return _insert(node, list(v), inv, vr, vw)


def _insert_one(node: list[list], p: int, fr: int, fw: int) -> list | None:
    """:func:`insert` of a one-step sequence (the common case: a race whose reversal is the
    racing step alone), by the same walk with nothing to take off the front."""
    fa = fr | fw
    top = node
    first = None
    while True:
        for c in node:
            # a child [thread, reads, writes (None: not run yet), children]; indexed rather than
            # unpacked: mypyc reads a list item at C speed, an unpacking goes through an iterator
            t: int = c[0]
            if t == p:
                return None     # v is used up: covered, or nothing left to insert
            cr: int | None = c[1]
            cw: int = c[2]
            if cr is None or cw & fa or cr & fw:
                continue
            ch: list = c[3]
            if not ch:
                return None     # a leaf of the tree covers v already
            if node is top:
                first = c
            node = ch
            break
        else:
            break
    node.append([p, fr, fw, []])
    return first


def _insert(node: list[list], v: list[tuple[int, int, int]], inv: int, vr: int, vw: int) -> list | None:
    """:func:`insert`, given v's threads (bitmask), reads and writes (masks).  ``v`` is
    consumed: the walk takes events out of it as it goes down."""
    # what is left of v is v[lo:]; suf[k]: (threads, reads, writes) of v[k:], built when the
    # walk first takes an event off; an event taken from the middle is deleted in place and
    # the entries before it are summed again (a sequence is taken off its front far more
    # often, and can be long: indexer's)
    lo = 0
    suf: list[tuple[int, int, int]] = []
    top = node
    first = None
    while True:
        va = vr | vw
        for c in node:
            t: int = c[0]       # indexed, not unpacked: see _insert_one
            if inv >> t & 1:
                # t has an event in v: the child covers it if that event is a weak initial of
                # what is left of v (nothing before it conflicts with it); the walk goes on
                # with v less it
                u, r, w = v[lo]
                if u != t:
                    ar = r
                    aw = w
                    idx = lo + 1
                    for idx in range(lo + 1, len(v)):
                        u, r, w = v[idx]
                        if u == t:
                            break
                        ar |= r
                        aw |= w
                    if w & (ar | aw) or r & aw:
                        continue
                    del v[idx]
                    if suf:
                        del suf[idx]
                        for k in range(idx - 1, lo - 1, -1):
                            u, r, w = v[k]
                            a = suf[k + 1]
                            suf[k] = (a[0] | 1 << u, a[1] | r, a[2] | w)
                else:
                    lo += 1
                if not suf:
                    m = len(v)
                    suf = [(0, 0, 0)] * (m + 1)
                    inv = vr = vw = 0
                    for k in range(m - 1, lo - 1, -1):
                        u, r, w = v[k]
                        inv |= 1 << u
                        vr |= r
                        vw |= w
                        suf[k] = (inv, vr, vw)
                inv, vr, vw = suf[lo]
            else:
                cr: int | None = c[1]
                cw: int = c[2]
                if cr is None or cw & va or cr & vw:
                    continue
            ch: list = c[3]
            if not ch:
                return None     # a leaf of the tree covers v already
            if node is top:
                first = c
            node = ch
            break
        else:
            break
    if lo == len(v):
        return None
    for k in range(lo, len(v)):
        t, r, w = v[k]
        new: list = [t, r, w, []]
        node.append(new)
        node = new[3]
    return first


def _blocked_races(i: int, alive: int, curd: list, curf: list, tclk: list, lastw: dict, rsince: dict,
                   thr: list, clk: list, enab: list, sleep: list, bt: list, pend: list, er: list,
                   ew: list, done: list, sx: list, wut: list, optimal: bool, floor: int = 0,
                   log: Any = None, every: bool = False) -> None:
    """At a hang, every blocked thread's pending step is a virtual last event: it races with the
    prior steps it depends on (a wait that another thread's step consumed the condition of), so
    the orders in which it would have gone first are explored too."""
    m = alive
    while m:
        b = m & -m
        m ^= b
        q = b.bit_length() - 1
        d = curd[q]
        if d is None:
            continue
        o, k, rs = d
        deps = []
        if k != RELEASE:
            if k == READ:
                w = lastw.get(o)
                if w is not None:
                    deps.append(w)
            else:
                rl = rsince.get(o)
                if rl:
                    deps.extend(rl)
                else:
                    w = lastw.get(o)
                    if w is not None:
                        deps.append(w)
            for r in rs:
                w = lastw.get(r)
                if w is not None:
                    deps.append(w)
        if not deps:
            continue
        tc = tclk[q]
        c: Any = list(tc)
        for e in deps:
            c = list(map(max, c, clk[e]))
        c[q] = i + 1
        c = tuple(c)
        races = [e for e in deps if thr[e] != q and tc[thr[e]] <= e]
        races = [e for e in races if not any(e2 > e and clk[e2][thr[e]] > e for e2 in races)]
        fr, fw = curf[q]
        for e in races:
            if optimal:
                _wakeup(e, i, q, fr, fw, thr, clk, er, ew, pend, sleep, done, sx, wut, floor, log, every)
            else:
                _backtrack(e, i, q, c, thr, clk, enab, sleep, bt)



# -- the compiled copy -------------------------------------------------------------------------
# setup.py compiles this file with mypyc as ``zonedev.rt._dpor_native``; it runs instead of the
# functions above while this file is the source it was built from (zonedev.rt.native).

def _explore_dpor_native(*args: Any, **kwargs: Any) -> Outcome:
    NATIVE.ORDER_BY_ENABLER = ORDER_BY_ENABLER   # the flag is read where the code runs
    return NATIVE.explore_dpor(*args, **kwargs)


def pure() -> Any:
    """This module interpreted, whichever is in use (``zonedev.rt._dpor_pure``)."""
    return native.interpreted("zonedev.rt.dpor", __file__)


#: the compiled module in use, or None (not built, built from another source, or ZONEDEV_PURE)
NATIVE: Any = native.use(globals(), ("dependent", "backtrack_optimal", "insert", "_insert_one", "_insert",
                                     "_wakeup", "_wi_remove", "_backtrack", "_blocked_races", "_fp"),
                         {"explore_dpor": _explore_dpor_native})
