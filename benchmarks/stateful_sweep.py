"""The stateful search against the matrix: every library scenario with ``expect=``, on every
kernel it declares, searched with ``--mode stateful`` (state caching + symmetry) under a time
budget per cell, and its finding kinds compared with the expected verdict (which Optimal-DPOR
gives: ``zonedev matrix`` matches everywhere).  A cell the stateful search exhausts must find
exactly the expected kinds; a cell it does not exhaust must find a subset of them.

    python benchmarks/stateful_sweep.py [--seconds 10] [--only FILE_SUBSTRING] [--audit]

``--audit`` also checks every merge of two states against a walk of everything reachable
(``zonedev.rt.state.AUDIT``; slow).  Prints one line a cell and a summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from zonedev.rt import state  # noqa: E402
from zonedev.rt.check import check  # noqa: E402
from zonedev.rt.expect import verdict_of  # noqa: E402
from zonedev.rt.matrix import collect  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--audit", action="store_true")
    ap.add_argument("--kernels", type=int, default=0, help="at most this many kernels a row (0: all)")
    a = ap.parse_args()
    state.AUDIT = a.audit
    root = Path(__file__).resolve().parent.parent
    rows = [r for r in collect([str(root / "scenarios")], cwd=root) if a.only in r.spec]
    counts = {"match": 0, "MISMATCH": 0, "partial": 0, "EXTRA": 0, "UNSOUND": 0, "error": 0}
    t0 = time.perf_counter()
    for row in rows:
        kernels = sorted(row.scenario.expect)
        if a.kernels:
            step = max(1, len(kernels) // a.kernels)
            kernels = kernels[::step][:a.kernels]
        for kn in kernels:
            exp = set(row.scenario.expected(kn) or ())
            try:
                r = check(row.scenario, kn, mode="stateful", seconds=a.seconds, tables=False, minimize=False)
            except state.UnsoundKey as e:
                counts["UNSOUND"] += 1
                print(f"UNSOUND  {row.spec} {kn}: {str(e)[:400]}", flush=True)
                continue
            if r.verdict == "error":
                counts["error"] += 1
                print(f"error    {row.spec} {kn}: {r.error}", flush=True)
                continue
            kinds = {f.kind for f in r.findings}
            if r.exhaustive:
                tag = "match" if kinds == exp else "MISMATCH"
            else:
                tag = "partial" if kinds <= exp else "EXTRA"
            counts[tag] += 1
            unc = " uncacheable" if "could not be cached" in (r.note or "") else ""
            print(f"{tag:8} {row.spec} {kn}: found {verdict_of(kinds)} expected {verdict_of(exp)} "
                  f"[{r.executions} executions, {r.states} states, {r.elapsed:.1f}s]{unc}", flush=True)
    print(f"summary: {counts} in {time.perf_counter() - t0:.0f}s", flush=True)
    return 1 if counts["MISMATCH"] or counts["EXTRA"] or counts["UNSOUND"] else 0


if __name__ == "__main__":
    sys.exit(main())
