"""Optimal-DPOR (or the stateful search, or the preemption-bounded one) from one copy of the post-setup world put back before
each execution (``Plan.again``, what `zonedev check` does) against a new copy per execution, on
every library scenario and every kernel it declares, with each put-back checked against a new
copy (``zonedev.rt.snapshot.AUDIT_AGAIN``; slow).  Both searches must give the same executions,
sleep-set-blocked executions, steps, distinct states, findings and counterexamples.

    python benchmarks/put_back_sweep.py [--executions 300] [--mode dpor|stateful|bounded] [--only FILE_SUBSTRING]

Prints a line for each cell that differs and a summary; exits 1 if one did.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from zonedev.rt import snapshot  # noqa: E402
from zonedev.rt.check import check  # noqa: E402
from zonedev.rt.engine import Runner  # noqa: E402
from zonedev.rt.matrix import collect  # noqa: E402


def answer(r) -> tuple:
    return (r.verdict, r.error, r.executions, r.blocked, r.steps, r.states, r.exhaustive,
            sorted((f.kind, f.signature, f.schedule) for f in r.findings))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--only", default="")
    ap.add_argument("--mode", choices=["dpor", "stateful", "bounded"], default="dpor")
    a = ap.parse_args()
    root = Path(__file__).resolve().parent.parent
    rows = [r for r in collect([str(root / "scenarios")], cwd=root) if a.only in r.spec]
    snapshot.AFTER = 0.0                  # a plan from the first execution on
    reusing = Runner.reusing
    cells = differ = 0
    t0 = time.perf_counter()
    for row in rows:
        for kn in sorted(row.scenario.expect):
            got = []
            for put_back in (True, False):
                snapshot.AUDIT_AGAIN = put_back
                Runner.reusing = reusing if put_back else (lambda self: contextlib.nullcontext())
                try:
                    got.append(answer(check(row.scenario, kn, mode=a.mode, executions=a.executions,
                                            preemptions=2 if a.mode == "bounded" else None,
                                            tables=False, minimize=False, jobs=1)))
                finally:
                    snapshot.AUDIT_AGAIN = False
                    Runner.reusing = reusing
            cells += 1
            if got[0] != got[1]:
                differ += 1
                print(f"DIFFER {row.spec} {kn}: put back {str(got[0])[:300]} | new copies {str(got[1])[:300]}",
                      flush=True)
    print(f"{cells} cells, {differ} differ, {time.perf_counter() - t0:.0f} s")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
