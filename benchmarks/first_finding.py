#!/usr/bin/env python3
"""Time to the first counterexample on every catalogued bug, at default settings.

For every scenario of scenarios/{catalogue,seeds,fsdax,trust,k2026}.py and every kernel on
which its ``expect=`` names a finding, the time from calling ``check`` (the kernel is built
inside it) until the first finding, with the search ``zonedev check`` runs by default
(``auto``: the scenario's mode, else Optimal-DPOR; no bound); the search stops there (``--first`` without minimising: the search up
to the first finding is the default one).  Prints each case and the slowest; goal: every one
within 1 s.

    python benchmarks/first_finding.py [FILE ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from zonedev.rt.check import check                  # noqa: E402
from zonedev.rt.scenario import load_scenarios      # noqa: E402

FILES = ["catalogue.py", "seeds.py", "fsdax.py", "trust.py", "k2026.py"]


def main() -> None:
    files = sys.argv[1:] or [str(ROOT / "scenarios" / f) for f in FILES]
    rows = []
    for path in files:
        for name, sc in load_scenarios(path).items():
            for kern, kinds in (sc.expect or {}).items():
                if not kinds:
                    continue
                t = time.perf_counter()
                r = check(sc, kern, stop_first=True, minimize=False, tables=False, seconds=60, jobs=1)
                wall = time.perf_counter() - t
                found = sorted({f.kind for f in r.findings})
                ok = bool(set(found) & set(kinds))
                rows.append((wall, Path(path).name, name, kern, r.mode, r.executions, found, ok))
                print(f"  {wall:7.3f}s  {Path(path).name}::{name} {kern:<7} {r.mode:<12} {r.executions:>6} ex  "
                      f"{','.join(found) or 'NOTHING FOUND'}{'' if ok else '  (expected ' + ','.join(sorted(kinds)) + ')'}",
                      flush=True)
    if rows:
        rows.sort(reverse=True)
        within = sum(1 for r in rows if r[0] <= 1.0 and r[7])
        print(f"\n{len(rows)} (scenario, kernel) bugs; first finding within 1 s: {within}; slowest: "
              f"{rows[0][0]:.3f}s {rows[0][1]}::{rows[0][2]} {rows[0][3]}")


if __name__ == "__main__":
    main()
