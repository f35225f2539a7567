"""Explorers other than DPOR: naive and preemption-bounded DFS, random walk, PCT, and the
stateful search (state caching + symmetry).  All reach a state by replaying from a fresh setup.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..sync.world import READ
from ..sync.primitives import RELEASE
from .engine import Runner, SetupError
from .guard import Interrupted, StepTimeout
from .outcome import Budget, Outcome
from .state import StateKeys, UnsoundKey


def _options(em: int, prev: int, allow_switch: bool) -> list[int]:
    """Enabled threads, the running one first; only it when switching is not allowed."""
    if prev >= 0 and em >> prev & 1:
        if not allow_switch:
            return [prev]
        rest = [t for t in _bits(em) if t != prev]
        return [prev] + rest
    return list(_bits(em))


def _bits(m: int):
    while m:
        b = m & -m
        m ^= b
        yield b.bit_length() - 1


def explore_dfs(runner: Runner, budget: Budget, bound: int | None = None,
                stateful: bool = False, symmetry: bool = True) -> Outcome:
    """Depth-first over all schedules (no reduction), optionally with at most ``bound``
    preemptions, optionally pruning at states already visited (``stateful``)."""
    mode = "stateful" if stateful else ("naive" if bound is None else f"preemptions<={bound}")
    out = Outcome(mode)
    budget.out = out
    t0 = time.perf_counter()
    thr: list[int] = []
    opts: list[list[int]] = []
    enab: list[int] = []
    prec: list[int] = []       # preemptions before step i
    kn: list = []              # node i: the threads' positions there (StateKeys.node), or None
    target = 0
    first = True
    steps = 0
    cut = False                # some schedule was not explored because of the bound
    keys = StateKeys(runner, symmetry) if stateful else None
    visited: set = set()
    uncacheable = 0
    started = False
    if budget.resume is not None:
        r = budget.resume
        thr, opts, enab, prec = r["thr"], r["opts"], r["enab"], r["prec"]
        target, steps, cut, uncacheable = r["target"], r["steps"], r["cut"], r["uncacheable"]
        visited = r["visited"]
        if keys is not None:
            keys.restore(r["keys"])
        _restore(out, r["out"])
        first = False
        started = r["started"]
        kn = [None] * len(thr)
    while True:
        if started:
            stop = budget.exhausted(out.executions + out.blocked + out.pruned)
            if budget.due:
                budget.save({"thr": thr, "opts": opts, "enab": enab, "prec": prec, "target": target,
                             "steps": steps, "cut": cut, "uncacheable": uncacheable, "visited": visited,
                             "keys": keys.save() if keys is not None else None, "out": _save(out),
                             "started": started})
            if stop:
                break
        started = True
        runner.begin()
        if first:
            first = False
            fs = runner.start_findings()
            for f in fs or ():
                out.add(f, [], 0, runner.names)
        runner.replay(thr, target)
        steps += target
        runner.nviol = len(runner.world.violations)
        if keys is not None:
            keys.reset()
            if target < len(kn) and kn[target] is not None:
                keys.at_node(kn[target])
        found = None
        i = target
        while True:
            if i < len(thr):
                p = thr[i]
            else:
                if keys is not None:
                    try:
                        key = keys.key()
                    except (Interrupted, StepTimeout, UnsoundKey):
                        raise
                    except BaseException as e:     # the scenario's state= (SystemExit too)
                        raise _state_error(runner, e) from None
                    if key is None:
                        uncacheable += 1
                    elif key in visited:
                        out.pruned += 1
                        break
                    else:
                        visited.add(key)
                em = runner.enabled_mask()
                if not em:
                    out.executions += 1
                    fs = runner.findings_at_end(i)
                    if fs:
                        found = (found or []) + fs
                    break
                if i >= budget.max_steps:
                    out.note = f"an execution exceeded {budget.max_steps} steps (a spin loop?); cut there"
                    out.truncated += 1
                    out.blocked += 1
                    break
                prev = thr[i - 1] if i else -1
                pre = prec[i - 1] + (1 if i > 1 and thr[i - 1] != thr[i - 2] and enab[i - 1] >> thr[i - 2] & 1 else 0) if i else 0
                allow = bound is None or pre < bound or prev < 0 or not em >> prev & 1
                options = _options(em, prev, allow)
                if not allow and em & ~(1 << prev):
                    cut = True
                if keys is not None and symmetry and len(options) > 1:
                    options = keys.dedupe(options)
                thr.append(options[0])
                opts.append(options[1:])
                enab.append(em)
                prec.append(pre)
                if keys is not None:
                    kn.append(keys.node() if key is not None else None)
                p = options[0]
            runner.step(p)
            if keys is not None:
                keys.moved(p)
            fs = runner.findings_after_step(i, p)
            if fs:
                found = (found or []) + fs
            i += 1
        steps += i - target
        if found:
            out.add_found(found, thr[:i], enab, runner.names)
        runner.end()
        if found and budget.stop_first:
            break
        j = len(thr) - 1
        while j >= 0 and not opts[j]:
            j -= 1
        if j < 0:
            out.exhaustive = not cut
            out.covered = True
            break
        thr[j] = opts[j].pop(0)
        del thr[j + 1:], opts[j + 1:], enab[j + 1:], prec[j + 1:], kn[j + 1:]
        target = j
    out.steps = steps
    out.states = len(visited)
    if stateful:
        out.executions += out.pruned   # every run counts, also the ones ending at a visited state
    if uncacheable:
        out.note = (out.note + "; " if out.note else "") + f"{uncacheable} states could not be cached (unknown objects in thread locals)"
    out.elapsed = time.perf_counter() - t0
    return out


class TraceSig:
    """A canonical name for the Mazurkiewicz trace of an execution: per object, the order of
    its writes and the groups of reads between them."""

    def __init__(self) -> None:
        self.per: dict[int, list] = {}

    def add(self, t: int, obj: Any, kind: str, reads: tuple) -> None:
        if kind == RELEASE:
            return
        self._one(obj.oid, t, kind == READ)
        for r in reads:
            self._one(r.oid, t, True)

    def _one(self, o: int, t: int, is_read: bool) -> None:
        seq = self.per.get(o)
        if seq is None:
            seq = self.per[o] = []
        if is_read:
            if seq and type(seq[-1]) is list:
                seq[-1].append(t)
            else:
                seq.append([t])
        else:
            seq.append(t)

    def key(self) -> int:
        return hash(tuple(sorted((o, tuple(tuple(sorted(x)) if type(x) is list else x for x in seq))
                                 for o, seq in self.per.items())))


def explore_random(runner: Runner, budget: Budget, seed: int = 0, pct_depth: int | None = None,
                   span: tuple[int, int | None] = (0, None), k: int | None = None,
                   keep_sets: bool = False) -> Outcome:
    """Random walk (uniform choice among enabled threads at every step), or PCT with depth d
    (Burckhardt et al., ASPLOS'10): random distinct thread priorities, d-1 random priority
    change points among the first k steps; always run the highest-priority enabled thread.

    Execution ``i``'s schedule depends only on ``(seed, i)`` (its own generator,
    :func:`execution_rng`) and, for PCT, on ``k``: the length of the search's first execution
    (execution 0 draws its change point from step 1).  So the executions of one search can be
    run as index ranges by several processes (:func:`zonedev.rt.ranges.explore_random_parallel`)
    and merged in index order into the answer of one process.  ``span``: the indexes ``[lo,
    hi)`` to run (``hi`` None: until the budget says stop); ``k``: PCT's k when ``lo > 0``;
    ``keep_sets``: leave the distinct final states and trace keys on the outcome
    (``final_states``, ``trace_keys``) for such a merge.  ``out.next`` is the first index not
    run, ``out.k`` PCT's k, ``out.hit`` whether it stopped at a finding (``stop_first``)."""
    # not from one copy put back (Runner.reusing): the distinct final states below may hold
    # model objects, which compare by identity, and a put-back copy keeps its identities
    with runner.reusing(False):
        out = Outcome("random" if pct_depth is None else f"pct(d={pct_depth})")
        budget.out = out
        t0 = time.perf_counter()
        finals: set = set()
        traces: set = set()
        steps = 0
        lo, hi = span
        if budget.executions is None and budget.deadline is None and hi is None:
            budget.executions = 1000
        index = lo
        hit = False                # stopped at an execution that found something (stop_first)
        if budget.resume is not None:
            r = budget.resume
            if "next" not in r:
                raise SetupError("checkpoint: of a random/PCT search made before executions had their own "
                                 "generators; run it again without --resume")
            index, k = r["next"], r["k"]
            finals, traces, steps = r["finals"], r["traces"], r["steps"]
            _restore(out, r["out"])
        if pct_depth is not None and k is None and index > 0:
            raise ValueError("PCT: k (the first execution's length) is needed to start past execution 0")
        while hi is None or index < hi:
            if index > 0:          # asked before every execution but the search's first
                stop = budget.exhausted(index)
                if budget.due:
                    budget.save({"next": index, "k": k, "finals": finals, "traces": traces,
                                 "steps": steps, "out": _save(out)})
                if stop:
                    break
            rng = execution_rng(seed, index)
            runner.begin()
            n = runner.n
            if index == 0:
                fs = runner.start_findings()
                for f in fs or ():
                    out.add(f, [], 0, runner.names)
            runner.nviol = len(runner.world.violations)
            sig = TraceSig()
            thr: list[int] = []
            enab: list[int] = []
            if pct_depth is not None:
                prio = list(range(pct_depth, pct_depth + n))
                rng.shuffle(prio)
                kk = k if index > 0 else 1
                change = {}
                for j, s in enumerate(rng.sample(range(1, kk + 1), min(pct_depth - 1, kk))):
                    change[s] = pct_depth - 1 - j
            found = None
            i = 0
            while True:
                em = runner.enabled_mask()
                if not em:
                    out.executions += 1
                    fs = runner.findings_at_end(i)
                    if fs:
                        found = fs
                    break
                if i >= budget.max_steps:
                    out.blocked += 1
                    out.note = f"an execution exceeded {budget.max_steps} steps (a spin loop?); cut there"
                    out.truncated += 1
                    break
                ts = list(_bits(em))
                if pct_depth is None:
                    p = ts[rng.randrange(len(ts))] if len(ts) > 1 else ts[0]
                else:
                    p = max(ts, key=prio.__getitem__)
                    c = change.get(i + 1)
                    if c is not None:
                        prio[p] = c
                        p = max(ts, key=prio.__getitem__)
                sig.add(p, runner.p_obj[p], runner.p_kind[p], runner.p_reads[p])
                thr.append(p)
                enab.append(em)
                runner.step(p)
                fs = runner.findings_after_step(i, p)
                if fs:
                    found = (found or []) + fs
                i += 1
            steps += i
            if index == 0:
                k = max(i, 1)
            index += 1
            finals.add(runner.world.state())
            traces.add(sig.key())
            if found:
                out.add_found(found, thr, enab, runner.names)
            runner.end()
            if found and budget.stop_first:
                hit = True
                break
        out.steps = steps
        out.states = len(finals)
        out.traces = len(traces)
        out.next = index
        out.hit = hit
        out.k = k
        if keep_sets:
            out.final_states, out.trace_keys = finals, traces
        out.elapsed = time.perf_counter() - t0
        return out


def execution_rng(seed: int, index: int) -> random.Random:
    """The generator of execution ``index`` of a random/PCT search from ``seed`` (seeded from a
    string, which Python hashes with SHA-512: the same in every process and on every machine)."""
    return random.Random(f"{seed}/{index}")


def _save(out: Outcome) -> dict:
    """An outcome's counts and findings, for a checkpoint."""
    return {k: getattr(out, k) for k in ("executions", "blocked", "pruned", "steps", "states",
                                           "traces", "note", "findings")} | {"elapsed": out.elapsed}


def _restore(out: Outcome, saved: dict) -> None:
    for k, v in saved.items():
        setattr(out, k, v)


def _state_error(runner: Runner, e: BaseException) -> SetupError:
    sc = runner.scenario
    return SetupError(f"{sc.file}:{sc.line}: scenario {sc.name}: its state= raised {type(e).__name__}: {e}")


def _fp_conflict(a: tuple, b: tuple) -> bool:
    """Two steps' footprints (reads mask, writes mask over oids) conflict: one writes what the
    other reads or writes."""
    return bool(a[1] & (b[0] | b[1]) or b[1] & a[0])


def explore_stateful_sleep(runner: Runner, budget: Budget, obs: Any, symmetry: bool = True) -> Outcome:
    """The stateful search with sleep sets (Godefroid, LNCS 1032, ch. 5 and 6: sleep sets with
    state caching).  At each state the threads whose step was already explored from an
    equivalent state and is independent of everything run since are *asleep*: not run again,
    because running them leads to a state the search has been to (the diamond of two
    independent steps).  A visited state is stored with its sleep set; reached again with sleep
    set ``Z`` it is pruned when the stored set is inside ``Z``, otherwise only the threads asleep
    then but awake now run, and the stored set becomes the intersection (so no transition is
    lost).  Independence is by footprint, as in DPOR: the object a step announces, the objects
    its wait reads, and every sync object it read or wrote in between (``obs``, an installed
    :class:`~zonedev.rt.observe.Observer`).

    For scenarios whose threads differ (with identical threads :func:`explore_dfs`'s symmetric
    moves do the reducing).  Every state the plain stateful search reaches is reached; what is
    saved is the executions that went round a diamond into a visited state, each a replay from
    the setup."""
    out = Outcome("stateful")
    budget.out = out
    t0 = time.perf_counter()
    thr: list[int] = []        # step i: its thread
    opts: list[list[int]] = []  # node i: threads still to run there
    enab: list[int] = []
    fps: list[tuple] = []      # step i: its footprint
    slp: list[dict] = []       # node i: the sleep set on arrival (thread -> footprint)
    done: list[list] = []      # node i: (thread, footprint) of the steps explored there so far
    target = 0
    first = True
    steps = 0
    keys = StateKeys(runner, symmetry)
    keys.incremental = True        # every step's accesses are reported (keys.touched)
    visited: dict = {}
    uncacheable = 0
    asleep_ends = 0
    started = False
    p_obj, p_kind, p_reads = runner.p_obj, runner.p_kind, runner.p_reads
    while True:
        if started and budget.exhausted(out.executions + out.blocked + out.pruned):
            break
        started = True
        runner.begin()
        p_obj, p_kind, p_reads = runner.p_obj, runner.p_kind, runner.p_reads
        if first:
            first = False
            fs = runner.start_findings()
            for f in fs or ():
                out.add(f, [], 0, runner.names)
        runner.replay(thr, target)
        steps += target
        runner.nviol = len(runner.world.violations)
        keys.reset()
        found = None
        i = target
        while True:
            if i < len(thr):
                p = thr[i]
            else:
                z = slp[i] if i < len(slp) else {}
                key = keys.key()
                em = runner.enabled_mask()
                asleep = 0
                for t in z:
                    asleep |= 1 << t
                if key is None:
                    uncacheable += 1
                    allowed = em & ~asleep
                else:
                    order = keys.order
                    zc = 0
                    for t in z:
                        zc |= 1 << order.index(t)
                    old = visited.get(key)
                    if old is None:
                        visited[key] = zc
                        allowed = em & ~asleep
                    elif old & ~zc == 0:
                        out.pruned += 1
                        break
                    else:
                        # asleep then, awake now: only those were not explored from here
                        allowed = 0
                        for r_ in _bits(old & ~zc):
                            allowed |= 1 << order[r_]
                        allowed &= em
                        visited[key] = old & zc
                if not em:
                    out.executions += 1
                    fs = runner.findings_at_end(i)
                    if fs:
                        found = (found or []) + fs
                    break
                if not allowed:          # every enabled thread asleep: all its moves explored
                    out.pruned += 1
                    asleep_ends += 1
                    break
                if i >= budget.max_steps:
                    out.note = f"an execution exceeded {budget.max_steps} steps (a spin loop?); cut there"
                    out.truncated += 1
                    out.blocked += 1
                    break
                prev = thr[i - 1] if i else -1
                options = _options(allowed, prev, True)
                del slp[i:], done[i:]
                slp.append(z)
                done.append([])
                thr.append(options[0])
                opts.append(options[1:])
                enab.append(em)
                p = options[0]
            o = p_obj[p]
            rm = 0
            wm = 0
            if o is not None:
                if p_kind[p] == READ:
                    rm = 1 << o.oid
                else:
                    wm = 1 << o.oid
            announced_reads = p_reads[p]
            for x in announced_reads:
                rm |= 1 << x.oid
            obs.r.clear()
            obs.w.clear()
            runner.cur = p                 # the observer leaves out the step's own object
            obs.on = True
            try:
                runner.step(p)
            finally:
                obs.on = False
            for x in obs.w:
                wm |= 1 << x
            for x in obs.r:
                rm |= 1 << x
            keys.touched(obs.w)
            keys.touched(obs.r)
            if o is not None:
                keys.touched((o.oid,))
            keys.touched([x.oid for x in announced_reads])
            fp = (rm, wm)
            del fps[i:]
            fps.append(fp)
            keys.moved(p)
            fs = runner.findings_after_step(i, p)
            if fs:
                found = (found or []) + fs
            # the sleep set one step down: what slept here or was explored here before p, and
            # is independent of p
            if i + 1 >= len(slp) or i + 1 >= len(thr):
                nz = {}
                for t, f in slp[i].items():
                    if t != p and not _fp_conflict(f, fp):
                        nz[t] = f
                for t, f in done[i]:
                    if t != p and not _fp_conflict(f, fp):
                        nz[t] = f
                del slp[i + 1:], done[i + 1:]
                slp.append(nz)
            i += 1
        steps += i - target
        if found:
            out.add_found(found, thr[:i], enab, runner.names)
        runner.end()
        if found and budget.stop_first:
            break
        j = len(thr) - 1
        while j >= 0 and not opts[j]:
            j -= 1
        if j < 0:
            out.exhaustive = True
            out.covered = True
            break
        done[j].append((thr[j], fps[j]))
        thr[j] = opts[j].pop(0)
        del thr[j + 1:], opts[j + 1:], enab[j + 1:], fps[j:], slp[j + 1:], done[j + 1:]
        target = j
    out.steps = steps
    out.states = len(visited)
    out.executions += out.pruned
    notes = []
    if asleep_ends:
        notes.append(f"sleep sets: {asleep_ends} of the runs ending at a visited state ended with every "
                     f"enabled thread asleep")
    if uncacheable:
        notes.append(f"{uncacheable} states could not be cached (unknown objects in thread locals)")
    if notes:
        out.note = "; ".join(([out.note] if out.note else []) + notes)
    out.elapsed = time.perf_counter() - t0
    return out
