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

from ..sync.world import ACQUIRE, READ
from .engine import Runner
from .outcome import Budget, Outcome, preemptions_of
from ..sync.primitives import RELEASE


def dependent(a: tuple, b: tuple) -> bool:
    ao, ak, ar = a
    bo, bk, br = b
    if ao == bo and ak != RELEASE and bk != RELEASE and not (ak == READ and bk == READ):
        return True
    if ar and bo in ar and bk != READ and bk != RELEASE:
        return True
    if br and ao in br and ak != READ and ak != RELEASE:
        return True
    return False


def dependent_x(a: tuple, ax: tuple | None, b: tuple, bx: tuple | None) -> bool:
    """Dependence including observed extra reads/writes (``ax``/``bx``: (reads, writes))."""
    if dependent(a, b):
        return True
    if ax is None and bx is None:
        return False

    def sets(d: tuple, x: tuple | None) -> tuple[set, set]:
        o, k, rs = d
        r, w = set(rs), set()
        if k == READ:
            r.add(o)
        elif k != RELEASE:
            w.add(o)
        if x is not None:
            r.update(x[0])
            w.update(x[1])
        return r, w

    ra, wa = sets(a, ax)
    rb, wb = sets(b, bx)
    return bool(wa & (rb | wb) or wb & ra)


def _desc(runner: Runner, t: int) -> tuple:
    obj = runner.p_obj[t]
    reads = runner.p_reads[t]
    return (obj.oid, runner.p_kind[t], tuple(r.oid for r in reads) if reads else ())


def explore_dpor(runner: Runner, budget: Budget, observer=None, optimal: bool = False) -> Outcome:
    """``observer``: an installed :class:`~zonedev.rt.observe.Observer`; steps' unannounced
    accesses to sync objects are then added to their footprints.  ``optimal``: Optimal-DPOR
    (wakeup trees instead of source sets; Abdulla et al. POPL'14 Algorithm 2)."""
    out = Outcome("optimal-dpor" if optimal else "dpor")
    wut: list = []            # optimal: node i's wakeup tree, [[thread, footprint, children], ...]
    childtree: list = []
    obs = observer
    evx: list = []            # event i: observed extra (reads, writes) or None
    sx: list[dict] = []       # node i: observed extras of the steps of sleeping/done threads
    t0 = time.perf_counter()
    thr: list[int] = []       # node i: the thread chosen there (= thread of event i)
    pend: list[tuple] = []    # node i: every thread's pending step descriptor
    enab: list[int] = []      # node i: enabled threads (bitmask)
    sleep: list[int] = []     # node i: sleep set on arrival (bitmask)
    bt: list[int] = []        # node i: backtrack set
    done: list[int] = []      # node i: threads explored (or being explored) from here
    clk: list[tuple] = []     # event i: vector clock
    target = 0                # positions < target are replayed as they were
    first = True
    max_steps = budget.max_steps
    steps = 0
    while True:
        runner.begin()
        n = runner.n
        pool = runner.pool
        fin = runner.fin
        p_obj, p_kind, p_reads, p_ready = runner.p_obj, runner.p_kind, runner.p_reads, runner.p_ready
        exc = runner.exc
        violations = runner.world.violations
        check_inv = bool(runner.invariants)
        # enabled threads: alive ones, less those whose pending step may block and cannot go on
        alive = 0
        mayblock = 0
        for t in range(n):
            if not fin[t]:
                alive |= 1 << t
                if p_ready[t] is not None:
                    mayblock |= 1 << t
        if first:
            first = False
            fs = runner.start_findings()
            if fs:
                for f in fs:
                    out.add(f, [], 0, runner.names)
        zero = (0,) * n
        rn = range(n)
        tclk = [zero] * n
        lastw: dict[int, int] = {}
        lastrel: dict[int, int] = {}   # lock -> its last release (release -> next acquire is forced)
        rsince: dict[int, list[int]] = {}
        cur = [None] * n
        for t in range(n):
            if not runner.fin[t]:
                cur[t] = _desc(runner, t)
        # -- replay the prefix ------------------------------------------------------------------
        for i in range(target):
            p = thr[i]
            o, k, rs = pend[i][p]
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
            runner.cur = p
            pool[p].switch()
            if fin[p]:
                cur[p] = None
                alive &= ~(1 << p)
                mayblock &= ~(1 << p)
            else:
                reads = p_reads[p]
                cur[p] = (p_obj[p].oid, p_kind[p], tuple([r.oid for r in reads]) if reads else ())
                if p_ready[p] is None:
                    mayblock &= ~(1 << p)
                else:
                    mayblock |= 1 << p
        steps += target
        runner.nviol = len(runner.world.violations)
        # -- run on from the backtrack point ----------------------------------------------------
        found = None
        i = target
        prev = thr[i - 1] if i else -1
        while True:
            if i < len(thr):
                p = thr[i]
                if optimal:
                    childtree = wut[i][0][2]
            else:
                em = alive
                if mayblock:
                    m = mayblock
                    while m:
                        b = m & -m
                        m ^= b
                        if not p_ready[b.bit_length() - 1]():
                            em ^= b
                if i:
                    j = i - 1
                    cand = (sleep[j] | done[j]) & ~(1 << thr[j])
                    sl = 0
                    nsx = None
                    if cand:
                        pj = pend[j]
                        ev = pj[thr[j]]
                        evxj = evx[j]
                        sxj = sx[j]
                        while cand:
                            b = cand & -cand
                            cand ^= b
                            s = b.bit_length() - 1
                            if evxj is None and not sxj:
                                if not dependent(pj[s], ev):
                                    sl |= b
                            else:
                                xs = sxj.get(s) if sxj else None
                                if not dependent_x(pj[s], xs, ev, evxj):
                                    sl |= b
                                    if xs is not None:
                                        if nsx is None:
                                            nsx = {}
                                        nsx[s] = xs
                else:
                    sl = 0
                    nsx = None
                p = -1
                if optimal:
                    tree = childtree if i else (wut[0] if wut else childtree)
                    while tree:
                        t = tree[0][0]
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
                            _blocked_races(i, alive, cur, tclk, lastw, rsince, thr, clk, enab, sleep,
                                           bt, pend, evx, done, sx, wut, optimal)
                        out.executions += 1
                        fs = runner.findings_at_end(i)
                        if fs:
                            found = (found or []) + fs
                    break
                if i >= max_steps:
                    out.note = f"an execution exceeded {max_steps} steps (a spin loop?); cut there"
                    out.blocked += 1
                    break
                if p < 0:
                    p = prev if prev >= 0 and avail >> prev & 1 else (avail & -avail).bit_length() - 1
                    if optimal:
                        tree.append([p, None, []])
                if optimal:
                    wut.append(tree)
                    childtree = tree[0][2]
                thr.append(p)
                pend.append(tuple(cur))
                enab.append(em)
                sleep.append(sl)
                sx.append(nsx)
                bt.append(1 << p)
                done.append(1 << p)
            runner.cur = p
            if obs is None:
                pool[p].switch()
                x = None
            else:
                obs.r.clear()
                obs.w.clear()
                obs.on = True
                pool[p].switch()
                obs.on = False
                x = None
                if obs.r or obs.w:
                    o, k, rs = pend[i][p]
                    xw = tuple(sorted(v for v in obs.w if v != o))
                    xr = tuple(sorted(v for v in obs.r if v != o and v not in rs and v not in obs.w))
                    if xr or xw:
                        x = (xr, xw)
            evx.append(x)
            if optimal:
                wut[i][0][1] = (pend[i][p], x)
            # -- event i by p: clock and races ---------------------------------------------------
            o, k, rs = pend[i][p]
            tc = tclk[p]
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
            forced = None
            if k == ACQUIRE:
                forced = lastrel.get(o)
            elif k == RELEASE:
                lastrel[o] = i
            if deps:
                c = list(tc)
                races = None
                for e in deps:
                    ce = clk[e]
                    for xx in rn:
                        if ce[xx] > c[xx]:
                            c[xx] = ce[xx]
                    te = thr[e]
                    if te != p and tc[te] <= e:
                        if races is None:
                            races = [e]
                        else:
                            races.append(e)
                c[p] = i + 1
                c = tuple(c)
                if races:
                    if len(races) > 1:
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
                            _wakeup(e, i, p, (pend[i][p], x), thr, clk, pend, evx, sleep, done, sx, wut)
                        else:
                            _backtrack(e, i, p, c, thr, clk, enab, sleep, bt)
            else:
                c = list(tc)
                c[p] = i + 1
                c = tuple(c)
            if forced is not None:
                # the lock was free for this acquire because of that release: order, not race
                c = tuple(map(max, c, clk[forced]))
            clk.append(c)
            tclk[p] = c
            if fin[p]:
                cur[p] = None
                alive &= ~(1 << p)
                mayblock &= ~(1 << p)
            else:
                reads = p_reads[p]
                cur[p] = (p_obj[p].oid, p_kind[p], tuple([r.oid for r in reads]) if reads else ())
                if p_ready[p] is None:
                    mayblock &= ~(1 << p)
                else:
                    mayblock |= 1 << p
            if check_inv or len(violations) != runner.nviol or exc[p] is not None:
                fs = runner.findings_after_step(i, p)
                if fs:
                    found = (found or []) + fs
            i += 1
            prev = p
        steps += i - target
        if found:
            sched = thr[:i]
            pre = preemptions_of(sched, enab)
            for f in found:
                out.add(f, sched, pre, runner.names)
        runner.end()
        total = out.executions + out.blocked
        if (found and budget.stop_first) or ((total & 127) == 0 and budget.exhausted(total)):
            break
        # -- backtrack ---------------------------------------------------------------------------
        j = len(thr) - 1
        while optimal and j >= 0:
            tree = wut[j]
            del tree[0]
            done[j] |= 1 << thr[j]
            if evx[j] is not None:
                if sx[j] is None:
                    sx[j] = {}
                sx[j][thr[j]] = evx[j]
            blocked_here = sleep[j] | done[j]
            while tree:
                t = tree[0][0]
                if enab[j] >> t & 1 and not blocked_here >> t & 1:
                    break
                del tree[0]
            if tree:
                thr[j] = tree[0][0]
                del thr[j + 1:], pend[j + 1:], enab[j + 1:], sleep[j + 1:], bt[j + 1:], done[j + 1:]
                del clk[j:], evx[j:], sx[j + 1:], wut[j + 1:]
                target = j
                break
            j -= 1
        while not optimal and j >= 0:
            c = bt[j] & ~done[j] & ~sleep[j]
            if c:
                b = c & -c
                done[j] |= b
                if evx[j] is not None:
                    if sx[j] is None:
                        sx[j] = {}
                    sx[j][thr[j]] = evx[j]
                thr[j] = b.bit_length() - 1
                del thr[j + 1:], pend[j + 1:], enab[j + 1:], sleep[j + 1:], bt[j + 1:], done[j + 1:]
                del clk[j:], evx[j:], sx[j + 1:]
                target = j
                break
            j -= 1
        if j < 0:
            out.exhaustive = True
            break
    out.steps = steps
    out.elapsed = time.perf_counter() - t0
    return out


def _backtrack(e: int, i: int, p: int, c: tuple, thr: list, clk: list, enab: list,
               sleep: list, bt: list) -> None:
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


def _fdep(a: tuple, b: tuple) -> bool:
    if a[1] is None and b[1] is None:
        return dependent(a[0], b[0])
    return dependent_x(a[0], a[1], b[0], b[1])


def _wi_remove(v: list, t: int, fp: tuple | None) -> list | None:
    """If thread ``t`` (whose next step is ``fp`` when it has none in ``v``) is a weak initial
    of ``v``, return ``v`` without t's first event; else None."""
    for idx in range(len(v)):
        if v[idx][0] == t:
            f = v[idx][1]
            for m in range(idx):
                if _fdep(v[m][1], f):
                    return None
            return v[:idx] + v[idx + 1:]
    if fp is None:
        return None
    for _, f in v:
        if _fdep(fp, f):
            return None
    return v


def _covered(node: list, v: list) -> bool:
    """Does a leaf of the wakeup tree ``node`` already cover ``v``?"""
    while True:
        for c in node:
            r = _wi_remove(v, c[0], c[1])
            if r is not None:
                if not c[2]:
                    return True
                v = r
                node = c[2]
                break
        else:
            return False


def _wakeup(e: int, i: int, p: int, fpi: tuple, thr: list, clk: list, pend: list, evx: list,
            sleep: list, done: list, sx: list, wut: list) -> None:
    """Race e -> i: insert notdep(e).i into the wakeup tree at pre(e), unless a sleeping thread
    is a weak initial of it (or the tree covers it already)."""
    te = thr[e]
    v = [(thr[j], (pend[j][thr[j]], evx[j])) for j in range(e + 1, i) if clk[j][te] <= e]
    v.append((p, fpi))
    root = wut[e]
    if _covered(root, v):
        return
    asleep = (sleep[e] | done[e]) & ~(1 << te)
    sxe = sx[e]
    pe = pend[e]
    while asleep:
        b = asleep & -asleep
        asleep ^= b
        s = b.bit_length() - 1
        if _wi_remove(v, s, (pe[s], sxe.get(s) if sxe else None)) is not None:
            return
    node = root
    while True:
        for c in node:
            r = _wi_remove(v, c[0], c[1])
            if r is not None:
                v = r
                node = c[2]
                break
        else:
            for t, f in v:
                new = [t, f, []]
                node.append(new)
                node = new[2]
            return


def _blocked_races(i: int, alive: int, cur: list, tclk: list, lastw: dict, rsince: dict, thr: list,
                   clk: list, enab: list, sleep: list, bt: list, pend: list, evx: list, done: list,
                   sx: list, wut: list, optimal: bool) -> None:
    """At a hang, every blocked thread's pending step is a virtual last event: it races with the
    prior steps it depends on (a wait that another thread's step consumed the condition of), so
    the orders in which it would have gone first are explored too."""
    m = alive
    while m:
        b = m & -m
        m ^= b
        q = b.bit_length() - 1
        d = cur[q]
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
        c = list(tc)
        for e in deps:
            c = list(map(max, c, clk[e]))
        c[q] = i + 1
        c = tuple(c)
        races = [e for e in deps if thr[e] != q and tc[thr[e]] <= e]
        races = [e for e in races if not any(e2 > e and clk[e2][thr[e]] > e for e2 in races)]
        for e in races:
            if optimal:
                _wakeup(e, i, q, (d, None), thr, clk, pend, evx, sleep, done, sx, wut)
            else:
                _backtrack(e, i, q, c, thr, clk, enab, sleep, bt)
