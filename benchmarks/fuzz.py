"""The CLI fuzz, longer: ``python benchmarks/fuzz.py [--count N] [--seed S]``.

Runs N generated invocations (tests/fuzz_cli_inputs.py: command lines over every subcommand,
malformed scenario and patch files) in this process and counts what the suite's fuzz test
asserts: tracebacks, exit statuses outside {0, 1, 2, 130}, exit 2 without the one-line form,
invalid JSON under --json, runs past their budget (hangs).  Prints one line per problem and a
summary; exits 1 when there was any.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from hypothesis import HealthCheck, Phase, given, seed as hseed, settings  # noqa: E402

from fuzz_cli_inputs import HANG, invocation, judge, run_one  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="generated invocations (default 2000)")
    ap.add_argument("--seed", type=int, default=12, help="generator seed (default 12)")
    args = ap.parse_args()
    statuses: collections.Counter = collections.Counter()
    commands: collections.Counter = collections.Counter()
    problems: list[tuple[list[str], list[str]]] = []
    slowest = [0.0, None]
    tmp = Path(tempfile.mkdtemp(prefix="zonedev-fuzz-"))
    n = [0]
    t0 = time.perf_counter()

    @hseed(args.seed)
    @settings(max_examples=args.count, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(invocation())
    def one(case):
        files, argv = case
        n[0] += 1
        r, secs, hung = run_one(files, argv, tmp / f"c{n[0]}")
        statuses[r.exit_code] += 1
        commands[argv[0]] += 1
        if secs > slowest[0]:
            slowest[:] = [secs, argv]
        bad = judge(r, secs, hung, argv)
        if bad:
            problems.append((argv, bad))
            print(f"PROBLEM {argv!r}: {'; '.join(bad)}\n  stdout: {r.stdout[-300:]!r}\n  stderr: {r.stderr[-300:]!r}",
                  flush=True)

    one()
    took = time.perf_counter() - t0
    trace = sum(1 for _, b in problems if any("traceback" in x or "uncaught" in x for x in b))
    hangs = sum(1 for _, b in problems if any(x.startswith("hang") for x in b))
    print(f"\nfuzz: {n[0]} inputs in {took:.0f} s (seed {args.seed}); exit statuses "
          + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    print("commands: " + ", ".join(f"{k} {v}" for k, v in sorted(commands.items())))
    print(f"slowest input: {slowest[0]:.1f} s {slowest[1]!r} (a hang is > {HANG:g} s)")
    print(f"tracebacks: {trace}, hangs: {hangs}, other problems: {len(problems) - trace - hangs}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
