"""The matrix's wall time on one core and on all cores, side by side.

    python benchmarks/matrix.py                    # the checkout's scenarios/, --jobs 1 then all cores
    python benchmarks/matrix.py --jobs 4 scenarios/teardown.py --kernel v5.18,v6.1

Each side is a whole ``zonedev matrix --json`` process (start Python, load the scenarios, run
every cell, replay the counterexamples), timed from outside; both run in this one invocation,
one after the other, so they see the same machine.  Prints both wall times, the CPU time each
used (the process and its workers: equal CPU time means the pool adds no work, and on a busy
machine CPU/wall says how much of the cores the run got), what each run found, and the wall
time ratio; a side that failed (bad input, a crash, no JSON) prints FAILED and no ratio is given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_side(jobs: int, args: list[str]) -> tuple[float, float, dict | None, str]:
    """Wall time, CPU time (the process and its workers), the matrix document (None when the
    run failed), and why it failed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "zonedev", "matrix", "--json", "--jobs", str(jobs), *args]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 1):
        return wall, cpu, None, (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
    try:
        return wall, cpu, json.loads(p.stdout), ""
    except json.JSONDecodeError:
        return wall, cpu, None, "no JSON on stdout"


def describe(doc: dict) -> str:
    s = doc["summary"]
    out = f"{s['cells']} cells, {s['matches']} match, {s['mismatches']} differ"
    if s["errors"]:
        out += f", {s['errors']} errors"
    if s["not_exhaustive"]:
        out += f", {len(s['not_exhaustive'])} not exhaustive"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="processes for the parallel side (default: all cores)")
    ap.add_argument("--kernel", default=None, help="passed to zonedev matrix")
    ap.add_argument("paths", nargs="*", help="FILE|DIR|FILE::NAME (default: scenarios/)")
    a = ap.parse_args()
    args = list(a.paths) + (["--kernel", a.kernel] if a.kernel else [])
    what = " ".join(a.paths) or "scenarios/"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"zonedev matrix {what}{' --kernel ' + a.kernel if a.kernel else ''}: "
          f"whole process, {os.cpu_count()} cores on this machine, load average {load:.1f} at the start")
    results = {}
    for jobs in (1, a.jobs):
        wall, cpu, doc, why = run_side(jobs, args)
        results[jobs] = (wall, doc)
        head = f"  --jobs {jobs:<3}"
        if doc is None:
            print(f"{head} FAILED ({why}) after {wall:.1f}s")
        else:
            print(f"{head} {wall:8.1f}s wall {cpu:8.1f}s cpu   {describe(doc)}")
    (t1, d1), (tn, dn) = results[1], results[a.jobs]
    if d1 is not None and dn is not None and tn > 0:
        print(f"  ratio --jobs 1 / --jobs {a.jobs}: {t1 / tn:.2f}")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
