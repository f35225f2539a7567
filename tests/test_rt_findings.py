"""The checker finds planted bugs with a minimal counterexample that replays, and passes the
correct versions."""

from pathlib import Path

import pytest

import zonedev
from zonedev.rt.engine import Runner
from zonedev.rt.outcome import parse_schedule, schedule_string
from zonedev.rt.replay import replay
from zonedev.rt.scenario import load_scenarios

PLANTED = Path(__file__).resolve().parent / "rt_planted.py"


@pytest.fixture(scope="module")
def sc():
    return load_scenarios(PLANTED)


def only(res, kind):
    found = [f for f in res.findings if f.kind == kind]
    assert found, f"no {kind} finding in {res.findings}"
    return found[0]


def replays(sc, f, **params):
    trace = replay(Runner(sc, None, params), f.schedule)
    return [g for g in trace.findings if g.signature == f.signature]


def test_non_atomic_dec_and_test_is_found_with_one_preemption(sc):
    res = zonedev.check(sc["dec_and_test"])
    assert res.verdict == "found" and res.exhaustive
    f = only(res, "leak")
    assert "freed 0 times" in f.message
    assert f.preemptions == 1          # the bug needs exactly one preemption; none is enough
    assert replays(sc["dec_and_test"], f)
    assert ">>" not in f.table.splitlines()[0] and "READ refcount" in f.table
    # with no preemption allowed it cannot happen
    assert zonedev.check(sc["dec_and_test"], preemptions=0).ok
    assert not zonedev.check(sc["dec_and_test"], preemptions=1).ok


def test_atomic_dec_and_test_passes(sc):
    res = zonedev.check(sc["dec_and_test"], params={"atomic": True, "users": 3}, mode="dpor")
    assert res.ok and res.exhaustive and res.executions == 6       # 3! orders of the puts
    auto = zonedev.check(sc["dec_and_test"], params={"atomic": True, "users": 3})   # identical users
    assert auto.mode == "stateful" and auto.ok and auto.exhaustive and auto.executions < 6


def test_missing_wakeup_is_a_hang_naming_the_waiter(sc):
    res = zonedev.check(sc["wakeup"])
    f = only(res, "hang")
    assert "waiter waits in wait_var_event (sleeping) on flag_wq" in f.message
    assert f.preemptions == 0
    assert replays(sc["wakeup"], f)


def test_wakeup_sent_passes(sc):
    res = zonedev.check(sc["wakeup"], params={"wake": True})
    assert res.ok and res.exhaustive


def test_release_run_twice_is_a_violation_at_the_marked_step(sc):
    res = zonedev.check(sc["release_twice"])
    f = only(res, "release_twice")
    assert f.thread in ("holder0", "holder1")
    trace = replay(Runner(sc["release_twice"], None, {}), f.schedule)
    marked = [s for s in trace.steps if s.findings]
    assert marked and marked[0].index == f.step
    assert any(line.lstrip("| ").startswith(">>") for line in f.table.splitlines())


def test_release_once_passes(sc):
    assert zonedev.check(sc["release_twice"], params={"buggy": False}).ok


def test_exception_in_model_code_is_a_finding_not_a_crash(sc):
    res = zonedev.check(sc["crash"])
    f = only(res, "exception")
    assert "NULL dereference" in f.message and f.thread == "user"
    assert "rt_planted.py" in f.detail       # the last model frame
    assert replays(sc["crash"], f)


def test_invariants_are_checked_after_every_step(sc):
    res = zonedev.check(sc["lock_invariant"])
    kinds = {(f.kind, f.detail) for f in res.findings}
    assert kinds == {("invariant", "even")}


def test_stateful_mode_finds_and_passes(sc):
    bad = zonedev.check(sc["teardown_like"], params={"drain": False, "users": 3})
    assert bad.mode == "stateful"
    f = only(bad, "use_after_free")
    assert replays(sc["teardown_like"], f, users=3, drain=False)
    good = zonedev.check(sc["teardown_like"], params={"users": 3})
    assert good.ok and good.exhaustive and good.states > 0
    # the same verdicts by DPOR
    assert zonedev.check(sc["teardown_like"], params={"users": 3}, mode="dpor").ok
    assert not zonedev.check(sc["teardown_like"], params={"drain": False, "users": 3}, mode="dpor").ok


def test_symmetry_shrinks_the_stateful_search(sc):
    sym = zonedev.check(sc["teardown_like"], params={"users": 4}, symmetry=True)
    asym = zonedev.check(sc["teardown_like"], params={"users": 4}, symmetry=False)
    assert sym.ok and asym.ok
    assert sym.states < asym.states


@pytest.mark.parametrize("mode", ["random", "pct"])
def test_random_and_pct_are_reproducible_and_find_the_bug(sc, mode):
    a = zonedev.check(sc["release_twice"], mode=mode, seed=7, executions=200, minimize=False)
    b = zonedev.check(sc["release_twice"], mode=mode, seed=7, executions=200, minimize=False)
    assert [f.schedule for f in a.findings] == [f.schedule for f in b.findings]
    assert a.findings and not a.exhaustive and a.executions == 200
    assert a.traces >= 2


def test_schedule_strings_round_trip():
    for s in ([], [0], [0, 0, 0, 1, 2, 2, 1], [3] * 10 + [0]):
        assert parse_schedule(schedule_string(s)) == s
    assert schedule_string([0, 0, 0, 1, 2, 2]) == "0*3.1.2*2"


@pytest.mark.parametrize("mode", ["dpor", "source-dpor", "stateful", "naive"])
def test_abba_deadlock_is_a_hang_in_every_exhaustive_mode(sc, mode):
    res = zonedev.check(sc["abba"], mode=mode)
    f = only(res, "hang")
    assert "t1 waits in lock on lock_b" in f.message and "t2 waits in lock on lock_a" in f.message
    assert f.preemptions == 1
    assert zonedev.check(sc["abba"], params={"ordered": True}, mode=mode).ok
