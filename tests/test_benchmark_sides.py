"""benchmarks/run.py: a side that failed prints FAILED and no ratio (a crashed run once showed
"zonedev/SPIN 0.08")."""

import importlib.util
import os
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def _bench():
    spec = importlib.util.spec_from_file_location("zonedev_bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_failed_side_is_failed_and_gets_no_ratio(tmp_path, monkeypatch):
    bench = _bench()
    fake = tmp_path / "bin"
    fake.mkdir()
    for tool in ("spin", "rumur"):                  # installed or not, these fail at once
        (fake / tool).write_text("#!/bin/sh\necho 'spin: broken' >&2\nexit 3\n")
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}/usr/bin{os.pathsep}/bin")
    for side in (bench._spin, bench._rumur):
        wall, result = side(0, 2, 60)
        assert wall is None and result.startswith("FAILED"), result
    assert bench._ratio(None, 1.5) == "-" and bench._ratio(1.5, None) == "-"
    assert bench._ratio(0.5, 2.0) == "0.25"


def test_the_model_floor_replays_every_explored_schedule_whole():
    """--only real's ceiling (the model alone) is honest only if it performs what the search
    performed: every execution's schedule, every step of it."""
    import zonedev
    from zonedev.rt.scenario import load_scenarios
    bench = _bench()
    sc = load_scenarios(RUN.parents[1] / "scenarios" / "teardown.py")["getput"]
    r = zonedev.check(sc, "v5.18", params={"users": 2}, mode="dpor", minimize=False, tables=False, jobs=1)
    ms, steps, _ = bench._model_floor(sc, "v5.18", {"users": 2}, r.executions)
    assert ms > 0
    assert round(steps * r.executions) == r.steps, (steps, r.executions, r.steps)
    # a recording that missed executions is a failed side, not a figure
    assert bench._model_floor(sc, "v5.18", {"users": 2}, r.executions + 1) is None
