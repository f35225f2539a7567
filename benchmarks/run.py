#!/usr/bin/env python3
"""zonedev checker benchmarks: one command, figures and ratios measured in the same run.

    .venv/bin/python benchmarks/run.py            # everything (about a minute)
    .venv/bin/python benchmarks/run.py --quick    # smaller sizes

1. The DPOR benchmark programs (scenarios/dpor_benchmarks.py): executions explored by zonedev's
   source-DPOR, the count an optimal DPOR explores (= Mazurkiewicz traces, from the papers),
   sleep-set-blocked executions, the count without reduction (naive enumeration within a budget,
   or a closed form), executions/s and steps/s.
2. readers(N) throughput on one core.
3. ZONE_DEVICE scenarios on the real model (scenarios/teardown.py): three threads doing get/put
   against memunmap_pages, on v5.18 and v6.1.
4. SPIN side by side (when `spin` and a C compiler are installed): the teardown family for
   NU = 2, 4, 6, 8, as whole processes: ../shared/bench/spin/run.sh vs `zonedev check`.
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
# the workplace's shared/ sits beside the checkout; ZONEDEV_SPIN_DIR points elsewhere
SPIN_DIR = Path(os.environ.get("ZONEDEV_SPIN_DIR",
                               Path(__file__).resolve().parents[2] / "shared" / "bench" / "spin"))


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


def readers_throughput(quick: bool) -> None:
    sc = load_scenarios(BENCH)["readers"]
    print("== readers(N) throughput, one core, best of 3 (goal >= 20,000 executions/s) ==")
    for n in ([4, 8] if quick else [4, 6, 8, 10, 12]):
        line = f"  readers({n:>2}): {2 ** n:>6,} executions"
        for label, opt in (("optimal", True), ("source", False)):
            best, steps_s = 0.0, 0.0
            for _ in range(3):
                runner = Runner(sc, None, {"n": n})
                reps = max(1, 2000 // 2 ** n)
                t = time.perf_counter()
                for _ in range(reps):
                    out = explore_dpor(runner, Budget(), optimal=opt)
                dt = time.perf_counter() - t
                if reps * out.executions / dt > best:
                    best, steps_s = reps * out.executions / dt, reps * out.steps / dt
            line += f"   {label}: {best:>7,.0f} exec/s {steps_s:>9,.0f} steps/s"
        print(line)
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


def _timed(cmd: list[str], env=None) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, (p.stdout + p.stderr).strip()


def spin_side_by_side(quick: bool) -> None:
    print("== SPIN side by side: teardown family, whole processes (time s) ==")
    have_spin = shutil.which("spin") is not None and shutil.which("cc") is not None
    if not have_spin:
        print("  spin (or cc) not installed: apt-get install -y spin; zonedev figures only")
    zd = [str(ROOT / ".venv" / "bin" / "zonedev")] if (ROOT / ".venv" / "bin" / "zonedev").exists() else [sys.executable, "-m", "zonedev.cli"]
    print(f"  {'rules':<6}{'NU':>3}  {'SPIN s':>7}  {'SPIN result':<34}{'zonedev s':>10}  {'zonedev result':<44}{'zonedev/SPIN':>12}")
    for v518, kern in ((0, "v6.1"), (1, "v5.18")):
        for nu in ([2, 4] if quick else [2, 4, 6, 8]):
            if have_spin:
                ts, so = _timed(["sh", str(SPIN_DIR / "run.sh"), str(v518), str(nu)])
                errors = next((ln.split("errors:")[1].strip() for ln in so.splitlines() if "errors:" in ln), "?")
                states = next((ln.split()[0] for ln in so.splitlines() if "states, stored" in ln), "?")
                spin_res = f"errors {errors}, {states} states"
            else:
                ts, spin_res = float("nan"), "-"
            tz, zo = _timed(zd + ["check", f"{TEARDOWN}::teardown", "--kernel", kern, "-p", f"users={nu}",
                                  "--json"])
            try:
                d = json.loads(zo)[0]
                kinds = sorted({f["kind"] for f in d["findings"]})
                zres = (f"found {','.join(kinds)}" if kinds else "no violation") + \
                    f", {d['states']} states, {d['executions']} execs"
            except (ValueError, IndexError, KeyError):
                zres = zo[:44]
            ratio = tz / ts if have_spin else float("nan")
            print(f"  {kern:<6}{nu:>3}  {ts:>7.2f}  {spin_res:<34}{tz:>10.2f}  {zres[:44]:<44}{ratio:>12.2f}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["dpor", "readers", "zone", "spin"], default=None)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    if args.only in (None, "dpor"):
        dpor_table(args.quick)
    if args.only in (None, "readers"):
        readers_throughput(args.quick)
    if args.only in (None, "zone"):
        zone_device(args.quick)
    if args.only in (None, "spin"):
        spin_side_by_side(args.quick)


if __name__ == "__main__":
    main()
