"""Budgets hold (issue 12): ``executions=N`` runs exactly N, ``seconds`` is overshot by at most
one execution (10 % allowed), the memory limit stops the stateful search, the step guard turns
a thread that never reaches a sync point into a finding."""

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main
from zonedev.rt.check import check
from zonedev.rt.outcome import rss

HERE = Path(__file__).resolve().parent
PLANTED = str(HERE / "rt_planted.py")
BUDGET = str(HERE / "budget_scenarios.py")


@pytest.mark.parametrize("mode", ["dpor", "source-dpor", "stateful", "naive", "bounded", "random", "pct"])
@pytest.mark.parametrize("n", [1, 7, 50])
def test_executions_exact(mode, n):
    spec, params = (BUDGET + "::scribblers", {"threads": 3, "writes": 4}) if mode == "stateful" else (
        PLANTED + "::dec_and_test", {"users": 4})
    r = check(spec, params=params, mode=mode, executions=n, minimize=False)
    # stateful counts a run ending at a visited state as an execution (pruned is part of it)
    assert r.executions + r.blocked == n, r.coverage()
    assert not r.exhaustive and r.stopped == "executions"
    assert f"stopped at the execution limit ({n})" in r.note


def test_executions_one_on_the_command_line():
    r = CliRunner().invoke(main, ["check", PLANTED + "::dec_and_test", "-p", "users=4", "--executions", "1",
                                  "--mode", "dpor"])      # auto: stateful (identical users)
    assert "FOUND" in r.output or "no violation" in r.output
    assert "[dpor: 1 executions, NOT exhaustive: stopped by the execution budget after 1 executions]" in r.output, r.output


@pytest.mark.parametrize("mode", ["stateful", "random"])
def test_time_within_ten_percent_and_one_execution(mode):
    limit = 0.5
    t0 = time.perf_counter()
    r = check(BUDGET + "::scribblers", mode=mode, seconds=limit)
    took = time.perf_counter() - t0
    one = took / max(1, r.executions)
    assert r.stopped == "time" and not r.exhaustive
    # 10 % + one execution, and 0.1 s for a machine shared with other jobs (the process may
    # not be scheduled at the deadline); measured idle: 0.2-3 % over
    assert limit <= took <= 1.1 * limit + one + 0.1, (took, r.executions)


def test_time_budget_covers_minimisation():
    """A finding's minimisation and table come out of the same time budget."""
    t0 = time.perf_counter()
    # (DPOR: auto runs the stateful search on the identical users, and it is done within the budget)
    r = check(PLANTED + "::dec_and_test", params={"users": 6}, seconds=1.0, mode="dpor")
    took = time.perf_counter() - t0
    assert r.verdict == "found" and not r.exhaustive
    assert took <= 1.1 + 0.2, took


def _release_free_memory():
    """Give memory freed by earlier tests back to the system, so that the search's own growth
    shows in the resident size (the visited set is stored compactly and grows slowly)."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):      # not glibc
        pass


def test_memory_limit_stops_the_stateful_search():
    _release_free_memory()
    limit = rss() + (4 << 20)
    t0 = time.perf_counter()
    r = check(BUDGET + "::scribblers", params={"width": 50}, memory=limit, seconds=20)
    assert r.stopped == "memory", r.note
    assert "stopped at the memory limit" in r.note and not r.exhaustive
    assert r.states > 1000 and time.perf_counter() - t0 < 15
    assert rss() < limit + (8 << 20)         # checked every 50 ms: a little past it, not far


def test_memory_option_on_the_command_line():
    r = CliRunner().invoke(main, ["check", BUDGET + "::scribblers", "--memory", "1M", "--json"])
    assert r.exit_code == 0
    assert '"stopped": "memory"' in r.stdout and "stopped at the memory limit (1 MiB resident)" in r.stdout


def test_step_guard_names_the_thread_and_where():
    t0 = time.perf_counter()
    r = check(BUDGET + "::spin", step_timeout=0.5)
    assert time.perf_counter() - t0 < 5
    f = next(f for f in r.findings if f.kind == "step_timeout")
    assert f.thread == "a" and "thread a ran 0.5 s without reaching a sync point" in f.message
    assert "budget_scenarios.py:" in f.detail and "in a" in f.detail
    assert r.stopped == "step guard" and not r.exhaustive
    assert [g.kind for g in r.findings] == ["step_timeout"]       # no leak or hang noise after it


def test_step_guard_in_setup_and_at_load(tmp_path):
    r = check(BUDGET + "::spin_in_setup", step_timeout=0.5)
    assert r.verdict == "error" and "the setup of spin_in_setup ran 0.5 s" in r.error
    assert r.error.startswith(BUDGET + ":")
    f = tmp_path / "loops.py"
    f.write_text("import zonedev\n\nwhile True:\n    pass\n")
    out = CliRunner().invoke(main, ["check", str(f), "--step-timeout", "0.5"])
    assert out.exit_code == 2 and out.stderr.startswith(f"zonedev: error: {f}:3: loading {f} ran 0.5 s")


def test_time_budget_bounds_a_spinning_step():
    """With --time shorter than the step guard, a spinning step is stopped at the time budget."""
    t0 = time.perf_counter()
    r = check(BUDGET + "::spin", seconds=0.6)
    assert time.perf_counter() - t0 < 3
    assert [f.kind for f in r.findings] == ["step_timeout"]


def test_a_search_raises_the_collectors_first_threshold_and_gives_it_back():
    """A search lets young garbage (each execution's copy of the world) pile up to
    ``check.YOUNG`` objects before the first generation is collected, and gives the caller its
    thresholds back, also when the scenario fails."""
    import gc
    import zonedev
    from zonedev.rt import check as check_mod
    from zonedev.sync import Var
    seen = []

    @zonedev.scenario(kernel=False)
    def records(k):
        x = Var(0, "x")

        def t():
            x.get()
            seen.append(gc.get_threshold()[0])

        return zonedev.Run({"t": t, "u": lambda: x.set(1)})

    @zonedev.scenario(kernel=False)
    def broken(k):
        raise RuntimeError("the setup fails")

    before = gc.get_threshold()
    gc.set_threshold(700, 11, 12)
    try:
        check_mod.check(records, mode="dpor", tables=False)
        assert seen and set(seen) == {check_mod.YOUNG}
        assert gc.get_threshold() == (700, 11, 12)
        assert check_mod.check(broken, mode="dpor", tables=False).verdict == "error"
        assert gc.get_threshold() == (700, 11, 12)
    finally:
        gc.set_threshold(*before)
