#!/usr/bin/env python3
"""zonedev checker benchmarks: one command, figures and ratios measured in the same run.

    .venv/bin/python benchmarks/run.py            # everything (about a minute)
    .venv/bin/python benchmarks/run.py --quick    # smaller sizes

1. The DPOR benchmark programs (scenarios/dpor_benchmarks.py): executions explored by zonedev's
   source-DPOR, the count an optimal DPOR explores (= Mazurkiewicz traces, from the papers),
   sleep-set-blocked executions, the count without reduction (naive enumeration within a budget,
   or a closed form), executions/s and steps/s.
2. readers(N) throughput on one core (CPU time), and how much of an execution is the runner.
3. ZONE_DEVICE scenarios on the real model (scenarios/teardown.py): three threads doing get/put
   against memunmap_pages, on v5.18 and v6.1.
4. SPIN and Rumur side by side (when `spin`, `rumur` and a C compiler are installed): the
   teardown family for NU = 2..12, as whole processes: benchmarks/teardown.pml and
   benchmarks/teardown.m.in vs `zonedev check`; a side that failed prints FAILED and no ratio.
5. musil on a hand-made abstraction (benchmarks/teardown_musil.py) beside zonedev, whole processes,
   NU = 2..12: time to the first error and the full search.  musil needs Python >= 3.12: one is
   found on PATH or in pyenv (or `--musil-python PATH`), and a venv with musil is made once under
   ~/.cache/zonedev-bench ($ZONEDEV_BENCH_CACHE); without them that side prints FAILED.
6. The real model: Optimal-DPOR executions/s, the previous path against the current one, and
   the model alone (the same schedules replayed with no checker): the most any checker that
   replays from a copy of the post-setup world could reach.
7. `check --jobs 1` vs `--jobs 2` as whole processes (wall, CPU, equal answers, ratio; and the
   ratio of the searches alone, by their own clock, without the interpreter's start, the imports
   and the kernel build, and what a perfect split could give): Optimal-DPOR and a random walk of
   4,000 executions on release_vs_fault (split by index ranges).
8. `--long`: indexer(17) and lastzero(18) counted exactly with `--jobs`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from zonedev.rt.dpor import explore_dpor          # noqa: E402
from zonedev.rt.engine import Runner              # noqa: E402
from zonedev.rt.explore import explore_dfs        # noqa: E402
from zonedev.rt.outcome import Budget             # noqa: E402
from zonedev.rt.scenario import load_scenarios    # noqa: E402

BENCH = ROOT / "scenarios" / "dpor_benchmarks.py"
TEARDOWN = ROOT / "scenarios" / "teardown.py"


def optimal(name: str, n: int) -> int | None:
    """Mazurkiewicz trace counts from the literature (model_checkers.md section 3)."""
    if name == "readers":
        return 2 ** n
    if name == "lastzero":
        return {1: 2, 2: 5}.get(n, (n + 3) * 2 ** (n - 2))
    if name == "indexer":
        return 1 if n <= 11 else 2 ** (3 * (n - 11))
    if name == "filesystem":
        return 1 if n <= 13 else 2 ** (n - 13)
    if name == "refcount":
        return math.factorial(3 * n + 1) // 6 ** n
    return None


def no_reduction(name: str, n: int, sc, budget_s: float) -> str:
    if name == "readers":
        return f"{math.factorial(n + 1):,}"
    if name == "refcount":
        return f"{optimal(name, n):,}"
    out = explore_dfs(Runner(sc, None, {"n": n}), Budget(seconds=budget_s))
    return f"{out.executions:,}" if out.exhaustive else f">{out.executions:,}"


def dpor_table(quick: bool) -> None:
    sc = load_scenarios(BENCH)
    plan = [("readers", [2, 4, 8] if quick else [2, 4, 8, 10, 13]),
            ("lastzero", [3, 5] if quick else [3, 5, 8, 10]),
            ("indexer", [11, 12] if quick else [11, 12, 13, 14, 15]),
            ("filesystem", [14, 16] if quick else [14, 16, 18, 19]),
            ("refcount", [2, 3])]
    print("== DPOR benchmark programs ==")
    print("   zonedev = Optimal-DPOR (wakeup trees, the `dpor` mode); paper = optimal count from the")
    print("   literature (Mazurkiewicz traces); blocked = sleep-set-blocked executions; source = source-DPOR")
    hdr = (f"{'program':<15}{'zonedev':>9}{'paper':>9}{'match':>6}{'blocked':>8}{'time s':>8}{'exec/s':>9}"
           f"{'steps/s':>10}{'source':>9}{'src blk':>8}{'src s':>8}{'no reduction':>16}")
    print(hdr)
    print("-" * len(hdr))
    for name, ns in plan:
        for n in ns:
            t = time.perf_counter()
            out = explore_dpor(Runner(sc[name], None, {"n": n}), Budget(), optimal=True)
            dt = time.perf_counter() - t
            t = time.perf_counter()
            src = explore_dpor(Runner(sc[name], None, {"n": n}), Budget(seconds=60))
            ds = time.perf_counter() - t
            opt = optimal(name, n)
            nored = no_reduction(name, n, sc[name], 1.0 if quick else 3.0)
            print(f"{name + '(' + str(n) + ')':<15}{out.executions:>9,}{opt:>9,}{'yes' if opt == out.executions else 'NO':>6}"
                  f"{out.blocked:>8,}{dt:>8.3f}{(out.executions + out.blocked) / dt:>9,.0f}{out.steps / dt:>10,.0f}"
                  f"{src.executions:>9,}{src.blocked:>8,}{ds:>8.2f}{nored:>16}")
    print()


def _runner_floor(sc, n: int, runs: int) -> float:
    """CPU seconds per execution of the runner alone on readers(n): a fresh setup (the scenario
    function, its world and objects, every thread run to its first point), every step once,
    the teardown -- what any exploration that replays from a fresh setup pays per execution."""
    runner = Runner(sc, None, {"n": n})
    t = time.process_time()
    for _ in range(runs):
        runner.begin()
        pool = runner.pool
        for p in range(runner.n):
            runner.cur = p
            pool[p].switch()
        runner.end()
    return (time.process_time() - t) / runs


def readers_throughput(quick: bool) -> None:
    """Optimal-DPOR on readers(N), CPU time of this process (the machine is shared), best of 3
    (one run from N = 13 on), with the compiled DPOR core (setup.py, mypyc) and the interpreted
    module side by side in this process; ``runner`` is the per-execution cost of the runner alone
    (see :func:`_runner_floor`), the rest of an execution's cost is the DPOR bookkeeping."""
    from zonedev.rt import dpor
    sc = load_scenarios(BENCH)["readers"]
    sides = [("interpreted", dpor.pure().explore_dpor)]
    if dpor.NATIVE is not None:
        sides.insert(0, ("compiled", dpor.NATIVE.explore_dpor))
    print("== readers(N) throughput, Optimal-DPOR, one core, CPU time (goal >= 20,000 executions/s) ==")
    print(f"   load average {os.getloadavg()[0]:.1f} at the start; runner = setup + steps + teardown alone")
    if dpor.NATIVE is None:
        print("   compiled DPOR core: FAILED (not built from this dpor.py: pip install -e . with mypy and gcc); "
              "interpreted only, no ratio")
    head = "".join(f"{'exec/s ' + label[:6]:>17}{'us/exec':>9}" for label, _ in sides)
    print(f"  {'N':>3}{'executions':>12}{head}{'ratio':>7}{'runner us':>11}{'DPOR us':>9}{'steps/s':>10}")
    for n in ([4, 8] if quick else [4, 6, 8, 10, 12, 13, 14, 15]):
        bests = []
        for label, explore in sides:
            best = None
            for _ in range(3 if n < 13 else 1):
                runner = Runner(sc, None, {"n": n})
                reps = max(1, 2000 // 2 ** n)
                t = time.process_time()
                for _ in range(reps):
                    out = explore(runner, Budget(), optimal=True)
                dt = (time.process_time() - t) / reps
                best = dt if best is None else min(best, dt)
            bests.append((best, out))
        floor = _runner_floor(sc, n, 2000)
        same = len({(o.executions, o.steps, o.blocked) for _, o in bests}) == 1
        best, out = bests[0]
        per = best / out.executions
        cols = "".join(f"{o.executions / b:>17,.0f}{b / o.executions * 1e6:>9.1f}" for b, o in bests)
        ratio = f"{bests[1][0] / best:>7.2f}" if len(bests) == 2 and same else \
            f"{'NO: answers differ' if not same else '-':>7}"
        print(f"  {n:>3}{out.executions:>12,}{cols}{ratio}{floor * 1e6:>11.1f}"
              f"{(per - floor) * 1e6:>9.1f}{out.steps / best:>10,.0f}")
    print()


def zone_device(quick: bool) -> None:
    import zonedev
    if not TEARDOWN.exists():
        print("== ZONE_DEVICE scenarios: scenarios/teardown.py missing ==\n")
        return
    scs = load_scenarios(TEARDOWN)
    print("== ZONE_DEVICE scenarios on the real model ==")
    for name, params in (("getput", {"users": 3}), ("teardown3", {})):
        if name not in scs:
            continue
        for kern in ("v5.18", "v6.1"):
            for mode in ("dpor", "stateful"):
                res = zonedev.check(scs[name], kern, params=params, mode=mode, minimize=False, tables=False)
                search = res.elapsed
                print(f"  {name}{params or ''} {kern:<6} {mode:<9} {res.summary().split('  ')[2]:<40} "
                      f"{res.executions:>7,} executions {search:>7.3f}s  {res.executions / search:>9,.0f} exec/s  "
                      f"{res.steps / search:>10,.0f} steps/s")
    print()


def _timed(cmd: list[str], env=None, timeout: float | None = None) -> tuple[float, float, str, int]:
    """Wall and CPU seconds (the process and its children) of a whole process, its output and
    exit status (-1: it did not finish within ``timeout``)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        out, rc = (p.stdout + p.stderr).strip(), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = f"timeout after {timeout:g} s {(e.stdout or b'')[-200:]!r}", -1
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out, rc


def _zonedev() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "zonedev"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "zonedev"]


def _cache() -> Path:
    """The benchmarks' cache directory ($ZONEDEV_BENCH_CACHE, default ~/.cache/zonedev-bench)."""
    return Path(os.environ.get("ZONEDEV_BENCH_CACHE") or Path.home() / ".cache" / "zonedev-bench")


def _env() -> dict:
    """A whole-process run's environment: this checkout's sources, and Python's bytecode cache on
    (kept outside the tree, under $ZONEDEV_BENCH_CACHE), as an installed package runs.  With
    PYTHONDONTWRITEBYTECODE=1 in the caller's environment (this project's sandbox sets it) every
    process compiled zonedev and the scenario's modules again: 0.25 s to start a check of
    fault_vs_migrate instead of 0.12 s, a cost of the environment, not of the tool."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(_cache() / "pycache"))
    return env


def _core() -> str:
    """Whether the whole processes run the compiled DPOR core: it is used only while it was built
    from this dpor.py (a stale build runs the interpreted one, silently)."""
    from zonedev.rt import dpor
    return "compiled DPOR core" if dpor.NATIVE is not None else "DPOR core INTERPRETED (not built from this dpor.py)"


def _warm() -> None:
    """One short run of each scenario file and kernel the whole-process sections use, untimed:
    their bytecode is cached (``_env``) before the first timed process, so no side pays for
    compiling it."""
    for spec, kern in ((f"{BENCH}::readers", None), (f"{TEARDOWN}::teardown", "v5.18"),
                       (f"{TEARDOWN}::teardown", "v6.1"), (f"{ROOT / 'scenarios' / 'hmm_races.py'}::fault_vs_migrate",
                                                          "v6.1")):
        _timed(_zonedev() + ["check", spec, "--executions", "1", "--json"] + (["--kernel", kern] if kern else []),
               env=_env(), timeout=600)


def stateful_keys_speed(quick: bool) -> None:
    """The stateful search (``--mode stateful``) with the compiled state keys (setup.py, mypyc)
    and the interpreted state.py, side by side in this process, CPU time; equal answers or no
    ratio."""
    import importlib
    import zonedev
    from zonedev.rt import state
    explore_mod = importlib.import_module("zonedev.rt.explore")
    print("== the stateful search: compiled state keys vs interpreted (same run, CPU time) ==")
    if state.NATIVE is None:
        print("  compiled state keys: FAILED (not built from this state.py); no ratio\n")
        return
    sides = [("compiled", state.StateKeys), ("interpreted", state.pure().StateKeys)]
    plan = [(ROOT / "scenarios" / "hmm_races.py", "release_vs_fault", "v6.1", {}),
            (TEARDOWN, "teardown", "v5.18", {"params": {"users": 6 if quick else 10}}),
            (ROOT / "benchmarks" / "hmm3.py", "two_faults_and_evict", "v6.1", {"executions": 1000 if quick else 6000})]
    saved = state.StateKeys
    for path, name, kern, kw in plan:
        sc = load_scenarios(path)[name]
        times, answers = [], []
        for label, keys in sides:
            state.StateKeys = explore_mod.StateKeys = keys
            try:
                t = time.process_time()
                r = zonedev.check(sc, kern, mode="stateful", minimize=False, tables=False, jobs=1, **kw)
                times.append(time.process_time() - t)
            finally:
                state.StateKeys = explore_mod.StateKeys = saved
            answers.append((r.executions, r.steps, r.coverage(), sorted(f.kind for f in r.findings)))
        same = answers[0] == answers[1]
        print(f"  {name} {kern} {kw or ''}: {answers[0][0]:,} executions, {answers[0][2].split(', ')[1]}; "
              f"compiled {times[0]:.2f}s, interpreted {times[1]:.2f}s cpu; same answers: {'yes' if same else 'NO'}"
              + (f"; ratio {times[1] / times[0]:.2f}" if same else "; FAILED: no ratio"))
    print()


def _ratio(a: float | None, b: float | None) -> str:
    """``a / b``, or FAILED-free blank when a side failed."""
    if a is None or b is None or b <= 0:
        return "-"
    return f"{a / b:.2f}"


def _spin(v518: int, nu: int, timeout: float) -> tuple[float | None, str]:
    """SPIN on benchmarks/teardown.pml as a whole process (generate, compile, verify)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(ROOT / "benchmarks" / "teardown.pml", d)
        cmd = ["sh", "-c", f"spin -DV518={v518} -DNU={nu} -a teardown.pml >/dev/null && "
                           f"cc -O2 -DSAFETY -o pan pan.c 2>/dev/null && ./pan -E"]
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"FAILED (timeout {timeout:g} s)"
        wall = time.perf_counter() - t
        out = p.stdout + p.stderr
        errors = next((ln.split("errors:")[1].strip() for ln in out.splitlines() if "errors:" in ln), None)
        states = next((ln.split()[0] for ln in out.splitlines() if "states, stored" in ln), None)
        if p.returncode != 0 or errors is None or states is None:
            return None, "FAILED " + (out.strip().splitlines() or ["(no output)"])[-1][:40]
        return wall, f"errors {errors}, {states} states"


def _rumur(v518: int, nu: int, timeout: float) -> tuple[float | None, str]:
    """Rumur (Murphi) on benchmarks/teardown.m.in, symmetry reduction on (users are a scalarset)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        src = (ROOT / "benchmarks" / "teardown.m.in").read_text()
        Path(d, "teardown.m").write_text(src.replace("@NU@", str(nu)).replace("@V518@", str(v518)))
        cmd = ["sh", "-c", "rumur --deadlock-detection off --threads 1 --symmetry-reduction heuristic "
                           "--counterexample-trace off --output v.c teardown.m && "
                           "cc -std=c11 -O3 -o v v.c -lpthread 2>/dev/null && ./v"]
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"FAILED (timeout {timeout:g} s)"
        wall = time.perf_counter() - t
        out = p.stdout + p.stderr
        states = next((ln.split()[0] for ln in out.splitlines() if " states, " in ln), None)
        if states is None or ("No error found" not in out and "error(s) found" not in out):
            return None, "FAILED " + (out.strip().splitlines() or ["(no output)"])[-1][:40]
        err = "1 error" if "error(s) found" in out else "no error"
        return wall, f"{err}, {states} states"


def spin_side_by_side(quick: bool) -> None:
    print(f"== SPIN and Rumur side by side: teardown family, whole processes (wall s; {_core()}) ==")
    print("   the same race: benchmarks/teardown.pml (Promela) and benchmarks/teardown.m.in (Murphi,")
    print("   users a scalarset) vs `zonedev check scenarios/teardown.py::teardown -p users=NU` (auto:")
    print("   the stateful search with symmetry, on the real model); a side that failed prints FAILED")
    have_spin = shutil.which("spin") is not None and shutil.which("cc") is not None
    have_rumur = shutil.which("rumur") is not None and shutil.which("cc") is not None
    if not (have_spin and have_rumur):
        print("  spin/rumur (or cc) not installed: apt-get install -y spin rumur gcc")
    print("   SPIN and Rumur stop at the first error; zonedev explores on to give the fewest-preemption")
    print("   counterexample: on v5.18 `first s` is `zonedev check --first --no-minimize` (stops there too)")
    hdr = (f"  {'rules':<6}{'NU':>3}  {'SPIN s':>7} {'SPIN result':<26}{'Rumur s':>8} {'Rumur result':<24}"
           f"{'zonedev s':>10} {'zonedev result':<40}{'zd/SPIN':>8}{'zd/Rumur':>9}{'first s':>8}{'f/SPIN':>7}{'f/Rumur':>8}")
    print(hdr)
    for v518, kern in ((0, "v6.1"), (1, "v5.18")):
        for nu in ([2, 4, 6] if quick else list(range(2, 13))):
            ts, sres = _spin(v518, nu, 300) if have_spin else (None, "FAILED (not installed)")
            tr, rres = _rumur(v518, nu, 300) if have_rumur else (None, "FAILED (not installed)")
            tz, _, zo, rc = _timed(_zonedev() + ["check", f"{TEARDOWN}::teardown", "--kernel", kern, "-p",
                                                 f"users={nu}", "--json"], env=_env(), timeout=600)
            try:
                if rc not in (0, 1):
                    raise ValueError
                d = json.loads(zo)[0]
                kinds = sorted({f["kind"] for f in d["findings"]})
                zres = (f"found {','.join(kinds)}" if kinds else "no violation") + \
                    f", {d['states']} states, {d['executions']} ex"
            except (ValueError, IndexError, KeyError):
                tz, zres = None, "FAILED " + zo[-30:]
            first = ""
            if v518:
                tf, _, fo, frc = _timed(_zonedev() + ["check", f"{TEARDOWN}::teardown", "--kernel", kern, "-p",
                                                      f"users={nu}", "--first", "--no-minimize", "--json"],
                                        env=_env(), timeout=600)
                if frc != 1:
                    tf = None
                first = (f"{tf:>8.2f}" if tf is not None else f"{'FAILED':>8}") + f"{_ratio(tf, ts):>7}{_ratio(tf, tr):>8}"
            print(f"  {kern:<6}{nu:>3}  {ts if ts is not None else float('nan'):>7.2f} {sres[:26]:<26}"
                  f"{tr if tr is not None else float('nan'):>8.2f} {rres[:24]:<24}"
                  f"{tz if tz is not None else float('nan'):>10.2f} {zres[:40]:<40}{_ratio(tz, ts):>8}{_ratio(tz, tr):>9}"
                  + first)
    print()


def jobs_speedup(quick: bool) -> None:
    """``check --jobs 1`` vs ``--jobs 2`` as whole processes: wall, CPU (with the workers), the
    answer of each side (which must be equal), the wall-time ratio."""
    la = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"== one exploration on 1 and 2 worker processes (check --jobs; load average {la:.1f} at the start; "
          f"{_core()}) ==")
    plan = [(f"{BENCH}::readers", None, ["-p", "n=10" if quick else "n=13"]),
            (f"{BENCH}::lastzero", None, ["-p", "n=9" if quick else "n=12"]),
            (f"{TEARDOWN}::getput", "v5.18", ["--mode", "dpor"] + (["-p", "users=2"] if quick else [])),
            (f"{ROOT / 'scenarios' / 'hmm_races.py'}::release_vs_fault", "v6.1", ["--mode", "dpor"]),
            (f"{ROOT / 'scenarios' / 'hmm_races.py'}::fault_vs_migrate", "v6.1", ["--mode", "dpor"])]
    # random walk: split by index ranges (execution i's schedule depends only on the seed and i)
    rnd = (f"{ROOT / 'scenarios' / 'hmm_races.py'}::release_vs_fault", "v6.1",
           ["--mode", "random", "--executions", "1000" if quick else "4000"])
    plan = (plan[:3] if quick else plan) + [rnd]
    for spec, kern, extra in plan:
        name = spec.rpartition("/")[2] + " " + " ".join(x for x in extra if "=" in x) + (f" {kern}" if kern else "")
        if "random" in extra:
            name += f" random x{extra[-1]}"
        sides = []
        for jobs in (1, 2):
            cmd = _zonedev() + ["check", spec, "--jobs", str(jobs), "--json", "--no-minimize"] + extra + \
                (["--kernel", kern] if kern else [])
            wall, cpu, out, rc = _timed(cmd, env=_env(), timeout=1800)
            try:
                if rc not in (0, 1):
                    raise ValueError
                d = json.loads(out)[0]
                ans = (d["executions"], d["blocked"], d["steps"], d["traces"], d["states"],
                       [(f["kind"], f["schedule"]) for f in d["findings"]])
                sides.append((wall, cpu, ans, d["note"], d["seconds"]))
            except (ValueError, IndexError, KeyError):
                sides.append((None, cpu, None, "FAILED " + out[-60:], None))
        line = f"  {name:<34}"
        for jobs, (wall, cpu, ans, note, search) in zip((1, 2), sides):
            if wall is None:
                line += f"  --jobs {jobs}: {note:<44}"
            else:
                line += f"  --jobs {jobs}: {wall:7.2f}s wall {cpu:7.2f}s cpu {ans[0]:>8,} ex"
        same = sides[0][2] is not None and sides[0][2] == sides[1][2]
        line += f"  equal: {'yes' if same else 'NO'}  ratio {_ratio(sides[0][0], sides[1][0])}"
        if same:
            # the search alone (its own clock: no interpreter start, imports, kernel build), and
            # the most a whole process could gain: the rest of --jobs 1's wall time with the
            # search halved (a perfect split, nothing paid for it)
            w1, s1 = sides[0][0], sides[0][4]
            line += (f"  (search {s1:.2f}s vs {sides[1][4]:.2f}s: {_ratio(s1, sides[1][4])}; "
                     f"a perfect split: at most {_ratio(w1, w1 - s1 / 2)})")
        crit = _critical_path(sides[1][3], sides[1][1]) if sides[1][0] is not None else None
        if crit is not None and sides[0][0] is not None:
            # what 2 free cores would give, whatever the load: this process's CPU against the
            # busiest process's of the split run (the scheduler shares cores between sessions,
            # so on a busy machine a second process of one session gets no more CPU)
            line += f"  (CPU {sides[0][1]:.2f} s vs the busiest process's {crit:.2f} s: {_ratio(sides[0][1], crit)})"
        print(line)
        if sides[1][3] and sides[1][0] is not None:
            print(f"      --jobs 2: {sides[1][3]}")
    print()


def _critical_path(note: str, total: float) -> float | None:
    """The CPU seconds of the busiest process of a split random/PCT run with one worker: the
    worker's from its note ("..., Y s on the workers"), the calling process's the rest of
    ``total`` (its start, the kernel build and its own ranges included)."""
    import re
    m = re.search(r"([0-9.]+) s on the workers", note or "")
    return max(total - float(m.group(1)), float(m.group(1))) if m else None


def real_model_speed(quick: bool) -> None:
    """Executions/s (CPU time) on the real scenarios under Optimal-DPOR, four code paths in the
    same run: before issue 11 (a waiting step raced with the event that made it ready, ending
    infeasible reversals sleep-set blocked; ``zonedev.rt.dpor.ORDER_BY_ENABLER = False``), the
    second session's (ORDER_BY_ENABLER on, ``zonedev.sync.world.FAST = False``), the current
    one interpreted (both on: observer twins, replayed prefixes handed from thread to thread,
    one copy of the post-setup world put back before each execution) and the current one with
    the compiled DPOR core (setup.py, mypyc); the first three run the interpreted dpor.py, as those sessions did, and the first two the collector's
    default thresholds (``check.YOUNG`` came in the eighth session).  The answers must be equal
    (the first may have more blocked executions)."""
    import zonedev
    from zonedev.rt import check as check_mod
    from zonedev.rt import dpor
    from zonedev.sync import world
    print("== the real model: Optimal-DPOR executions/s, previous paths vs current (same run) ==")
    plan = [(ROOT / "scenarios" / "hmm_races.py", "release_vs_fault", "v6.1", {}),
            (TEARDOWN, "getput", "v5.18", {"users": 2} if quick else {})]
    interp = dpor.pure()
    sides = [("before", False, False, interp), ("session 2", True, False, interp), ("interpreted", True, True, interp)]
    if dpor.NATIVE is not None:
        sides.append(("compiled", True, True, dpor))
    else:
        print("  compiled DPOR core: FAILED (not built from this dpor.py); the current path runs interpreted")
    saved, young = check_mod.explore_dpor, check_mod.YOUNG
    for path, name, kern, params in plan:
        sc = load_scenarios(path)[name]
        print(f"  {name}{params or ''} {kern}")
        rates, answers = [], []
        for label, enabler, fast, impl in sides:
            dpor.ORDER_BY_ENABLER = interp.ORDER_BY_ENABLER = enabler
            world.FAST = fast
            check_mod.explore_dpor = impl.explore_dpor
            check_mod.YOUNG = young if label in ("interpreted", "compiled") else 0
            try:
                t = time.process_time()
                r = zonedev.check(sc, kern, params=params, mode="dpor", minimize=False, tables=False, jobs=1)
                cpu = time.process_time() - t
            finally:
                dpor.ORDER_BY_ENABLER = interp.ORDER_BY_ENABLER = True
                world.FAST = True
                check_mod.explore_dpor, check_mod.YOUNG = saved, young
            rates.append(r.executions / cpu)
            answers.append((r.executions, sorted(f.kind for f in r.findings),
                            r.steps, sorted((f.signature, f.schedule) for f in r.findings)))
            print(f"    {label:<11} {r.executions:,} ex + {r.blocked:,} blocked in {cpu:.2f}s cpu: "
                  f"{(r.executions + r.blocked) / cpu:,.0f} ex/s, {rates[-1]:,.0f} complete/s, "
                  f"{1000 * cpu / (r.executions + r.blocked):.3f} ms/execution")
        # before issue 11 may have more (blocked) executions, so only its complete ones and kinds
        same = all(a == answers[1] for a in answers[2:]) and answers[0][:2] == answers[-1][:2]
        ratios = f"current / before {_ratio(rates[-1], rates[0])}, current / session 2 {_ratio(rates[-1], rates[1])}"
        if len(rates) == 4:
            ratios += f", compiled / interpreted {_ratio(rates[3], rates[2])}"
        print(f"    same answers: {'yes' if same else 'NO'}   " +
              (f"complete executions/s, {ratios}" if same else "FAILED: no ratio"))
        floor = _model_floor(sc, kern, params, answers[-1][0])
        if floor is None:
            print("    the model alone: FAILED (the schedules were not all recorded)")
        else:
            ms, steps, copied = floor
            start = "put-back copy of the post-setup world" if copied else "setup (too short a search to read a plan)"
            print(f"    the model alone (each execution's {start} and its {steps:.0f} steps "
                  f"replayed, no checker): {ms:.3f} ms/execution: a checker that starts each execution "
                  f"that way and replays it reaches at most {_ratio(1000 / ms, rates[0])}x of before "
                  f"(current: {_ratio(rates[-1], rates[0])}x)")
    print()


def _model_floor(sc, kern: str, params: dict, executions: int) -> tuple[float, float, bool] | None:
    """What an execution of the real model costs without any checker: Optimal-DPOR's schedules
    (all of them, recorded by the explorer's ``record`` hook) performed again by the runner
    alone -- a copy of the post-setup world, every step handed from thread to thread
    (``Runner.replay``), no footprints, races, wakeup trees or findings.  Returns (ms per
    execution, CPU time; steps per execution; whether executions started from a copy of the
    post-setup world, as the search's did once it had read a plan), or None when not every
    execution was recorded."""
    import zonedev
    from zonedev.rt import check as check_mod
    scheds: list[list[int]] = []
    runners = []
    saved = check_mod.explore_dpor

    def recording(runner, budget, obs=None, optimal=False, **kw):
        runners.append(runner)
        return saved(runner, budget, obs, optimal=optimal,
                     record=lambda target, thr, *rest: scheds.append(list(thr)), **kw)

    check_mod.explore_dpor = recording
    try:
        zonedev.check(sc, kern, params=params, mode="dpor", minimize=False, tables=False, jobs=1)
    finally:
        check_mod.explore_dpor = saved
    if len(scheds) != executions or len(runners) != 1:
        return None
    run = runners[0]
    run.reuse = True            # as the search's executions started (one copy, put back)
    with check_mod.worlds_die_young():
        for s in scheds[:500]:      # untimed: a search too short to have read a plan reads it here
            run.begin()
            run.replay(s, len(s))
            run.end()
        t = time.process_time()
        for s in scheds:
            run.begin()
            run.replay(s, len(s))
            run.end()
        cpu = time.process_time() - t
    return 1000 * cpu / len(scheds), sum(map(len, scheds)) / len(scheds), run._plan is not None


def long_counts(jobs: int) -> None:
    """indexer(17) = 262,144 and lastzero(18) = 1,376,256 executions, checked exactly with --jobs."""
    print(f"== long: exact counts with --jobs {jobs} ==")
    for name, n in (("indexer", 17), ("lastzero", 18)):
        want = optimal(name, n)
        load = os.getloadavg()[0]
        wall, cpu, out, rc = _timed(_zonedev() + ["check", f"{BENCH}::{name}", "-p", f"n={n}", "--jobs", str(jobs),
                                                  "--json", "--time", "1800"], env=_env(), timeout=2000)
        try:
            d = json.loads(out)[0]
            ok = d["executions"] == want and d["exhaustive"]
            print(f"  {name}({n}): {d['executions']:,} executions (paper {want:,}: {'equal' if ok else 'NOT EQUAL'}), "
                  f"{wall:.1f}s wall, {cpu:.1f}s cpu ({cpu / max(1, d['executions']) * 1e6:.0f} us/execution), "
                  f"load average {load:.1f} at the start; {d['note']}")
        except (ValueError, IndexError, KeyError):
            print(f"  {name}({n}): FAILED {out[-80:]}")
    print()


MUSIL = "musil~=0.36"          # the release this side was written against (0.36.7)


def _musil_python(explicit: str | None = None) -> tuple[str | None, str]:
    """A Python >= 3.12 for musil (this one, python3.13 / python3.12 on PATH, pyenv's versions), or
    ``explicit`` only (``--musil-python``): (its path, its version) or (None, why not)."""
    if explicit:
        cands = [explicit]
    else:
        cands = [sys.executable] + [p for p in (shutil.which("python3.13"), shutil.which("python3.12")) if p]
        roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
        for root in dict.fromkeys(r for r in roots if r):
            vers = sorted(Path(root, "versions").glob("3.*/bin/python"),
                          key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")], reverse=True)
            cands += [str(v) for v in vers]
    tried = []
    for c in dict.fromkeys(cands):
        try:
            p = subprocess.run([c, "-c", "import sys; print(int(sys.version_info >= (3, 12)), sys.version.split()[0])"],
                               capture_output=True, text=True, timeout=30)
            ok, ver = p.stdout.split()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            tried.append(f"{c} (does not run)")
            continue
        if ok == "1":
            return c, ver
        tried.append(f"{c} ({ver})")
    return None, "no Python >= 3.12 (tried " + ", ".join(tried or ["nothing"]) + "; give one with --musil-python)"


def _musil_venv(python: str, version: str) -> tuple[str | None, str]:
    """A venv with musil for ``python``, made once under the cache directory
    ($ZONEDEV_BENCH_CACHE, default ~/.cache/zonedev-bench): (its python, musil's version) or
    (None, why not)."""
    venv = _cache() / f"musil-py{'.'.join(version.split('.')[:2])}"
    vpy = venv / "bin" / "python"
    probe = [str(vpy), "-c", "import importlib.metadata as m; print(m.version('musil'))"]
    try:
        p = subprocess.run(probe, capture_output=True, text=True, timeout=60) if vpy.exists() else None
        if p is None or p.returncode != 0:
            for cmd in ([python, "-m", "venv", "--clear", str(venv)],
                        [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check", MUSIL]):
                q = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if q.returncode != 0:
                    last = ((q.stdout + q.stderr).strip().splitlines() or ["(no output)"])[-1]
                    return None, f"{' '.join(cmd[:4])}: {last[:100]}"
            p = subprocess.run(probe, capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                return None, "musil does not import after installing it"
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{type(e).__name__}: {e}"
    return str(vpy), p.stdout.strip()


#: what benchmarks/teardown_musil.py must find under each kernel's rules (as SPIN, Rumur and
#: zonedev do): the v5.18 use-after-free, v6.1 safe
MUSIL_EXPECT = {"v5.18": ["use_after_free"], "v6.1": []}


def _musil(vpy: str, nu: int, rules: str, search: str) -> tuple[float | None, str]:
    """benchmarks/teardown_musil.py as a whole process: (wall s or None, result); FAILED (None)
    when it fails or finds other than :data:`MUSIL_EXPECT`."""
    wall, _, out, rc = _timed([vpy, str(ROOT / "benchmarks" / "teardown_musil.py"), "--nu", str(nu),
                               "--rules", rules, "--search", search], timeout=600)
    try:
        if rc != 0:
            raise ValueError
        d = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        return None, "FAILED " + (out.strip().splitlines() or ["(no output)"])[-1][:40]
    want = MUSIL_EXPECT[rules]
    if d.get("found") != want:       # an abstraction that misses the race (or invents one) times nothing
        return None, f"FAILED: found {d.get('found')}, the race is {want or 'safe'}"
    res = ("found " + ",".join(d["found"]) if d["found"] else "no violation") + \
        (f", {d['states']} states" if d["states"] is not None else "")
    return wall, f"{res}, search {d['seconds'] * 1000:.1f} ms"


def musil_abstraction(quick: bool, python: str | None = None) -> None:
    """musil (PyPI, Python >= 3.12) on benchmarks/teardown_musil.py beside zonedev on the real
    model, whole processes, NU = 2..12: the time to the first error (musil's check, breadth
    first; ``zonedev check --first --no-minimize``) and the full search (musil's check_all;
    zonedev's default, which explores on for the fewest-preemption counterexample)."""
    print("== musil (PyPI) on a hand-made abstraction of the teardown race, whole processes (wall s) ==")
    print("   benchmarks/teardown_musil.py (users sorted: symmetry) in a venv of a Python >= 3.12, vs")
    print("   `zonedev check scenarios/teardown.py::teardown -p users=NU` (the real model); a side that failed prints FAILED")
    py, ver = _musil_python(python)
    vpy, why = _musil_venv(py, ver) if py else (None, ver)
    if vpy is None:
        print(f"  musil: FAILED ({why})")
        print()
        return
    print(f"   musil {why} on Python {ver} ({py})")
    hdr = (f"  {'rules':<6}{'NU':>3}  {'musil s':>8} {'musil result':<44}{'zonedev s':>10} {'zonedev result':<32}"
           f"{'zd/musil':>9}  {'musil 1st':>9}{'zd 1st':>8}{'1st ratio':>10}")
    print(hdr)
    for kern in ("v6.1", "v5.18"):
        for nu in ([2, 4, 6] if quick else list(range(2, 13))):
            tm, mres = _musil(vpy, nu, kern, "full")
            tz, _, zo, rc = _timed(_zonedev() + ["check", f"{TEARDOWN}::teardown", "--kernel", kern, "-p",
                                                 f"users={nu}", "--json"], env=_env(), timeout=600)
            try:
                if rc not in (0, 1):
                    raise ValueError
                d = json.loads(zo)[0]
                kinds = sorted({f["kind"] for f in d["findings"]})
                zres = (f"found {','.join(kinds)}" if kinds else "no violation") + f", {d['executions']} ex"
            except (ValueError, IndexError, KeyError):
                tz, zres = None, "FAILED " + zo[-30:]
            first = ""
            if kern == "v5.18":
                tmf, _ = _musil(vpy, nu, kern, "first")
                tzf, _, _, frc = _timed(_zonedev() + ["check", f"{TEARDOWN}::teardown", "--kernel", kern, "-p",
                                                      f"users={nu}", "--first", "--no-minimize", "--json"],
                                        env=_env(), timeout=600)
                if frc != 1:
                    tzf = None
                first = (f"  {tmf:>9.2f}" if tmf is not None else f"  {'FAILED':>9}") + \
                    (f"{tzf:>8.2f}" if tzf is not None else f"{'FAILED':>8}") + f"{_ratio(tzf, tmf):>10}"
            print(f"  {kern:<6}{nu:>3}  " + (f"{tm:>8.2f}" if tm is not None else f"{'FAILED':>8}") +
                  f" {mres[:44]:<44}" + (f"{tz:>10.2f}" if tz is not None else f"{'FAILED':>10}") +
                  f" {zres[:32]:<32}{_ratio(tz, tm):>9}" + first)
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["dpor", "readers", "zone", "spin", "jobs", "real", "musil"], default=None)
    ap.add_argument("--long", action="store_true", help="also indexer(17) and lastzero(18) exactly, with --jobs")
    ap.add_argument("--jobs", type=int, default=2, help="workers for --long (default 2)")
    ap.add_argument("--musil-python", default=None, metavar="PATH",
                    help="the Python >= 3.12 for the musil side (default: found on PATH or in pyenv)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    if args.only in (None, "spin", "musil", "jobs") or args.long:
        _warm()
    if args.only in (None, "dpor"):
        dpor_table(args.quick)
    if args.only in (None, "readers"):
        readers_throughput(args.quick)
    if args.only in (None, "zone"):
        zone_device(args.quick)
    if args.only in (None, "spin"):
        spin_side_by_side(args.quick)
    if args.only in (None, "musil"):
        musil_abstraction(args.quick, args.musil_python)
    if args.only in (None, "real"):
        real_model_speed(args.quick)
        stateful_keys_speed(args.quick)
    if args.only in (None, "jobs"):
        jobs_speedup(args.quick)
    if args.long:
        long_counts(args.jobs)


if __name__ == "__main__":
    main()
