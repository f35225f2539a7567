"""``check --jobs`` for random walk and PCT: execution ``i``'s schedule depends only on ``(seed, i)``,
so the executions are handed out as index ranges, and the merged answer is the answer of one
process -- executions, steps, distinct traces and final states, findings and their
counterexamples -- on DPOR benchmark programs and library scenarios; ``executions=N`` stays
exact, a time budget commits a prefix of the executions, ``--first`` stops at the same
execution; and the Ray backend the same (skipped when ray is not installed)."""

from pathlib import Path

import pytest

from zonedev.rt import ranges
from zonedev.rt.check import check

ROOT = Path(__file__).resolve().parent.parent / "scenarios"
BENCH = str(ROOT / "dpor_benchmarks.py")
PLANTED = str(Path(__file__).resolve().parent / "rt_planted.py")


@pytest.fixture(autouse=True)
def workers_at_once(monkeypatch):
    """Start the workers after the first execution (by default small searches never start them)."""
    monkeypatch.setattr(ranges, "WARMUP", 0.0)


def answer(r):
    return (r.verdict, r.mode, r.seed, r.executions, r.blocked, r.truncated, r.steps, r.states, r.traces,
            [(f.kind, f.signature, f.schedule, f.preemptions, f.steps, f.message) for f in r.findings])


def same(spec, kernel=None, chunks=(None, 3), backend="process", **kw):
    one = check(spec, kernel, jobs=1, tables=False, **kw)
    for chunk in chunks:
        two = _split(spec, kernel, chunk, backend, **kw)
        assert answer(two) == answer(one), chunk
        assert "index ranges on 2 workers" in two.note      # the split path really ran
    return one


def _split(spec, kernel, chunk, backend, **kw):
    """check(jobs=2) with index ranges of ``chunk`` executions (None: sized by time)."""
    real = ranges.explore_random_parallel

    def with_chunk(*a, **k):
        return real(*a, chunk=chunk, **k)
    ranges.explore_random_parallel = with_chunk
    try:
        return check(spec, kernel, jobs=2, backend=backend, tables=False, **kw)
    finally:
        ranges.explore_random_parallel = real


@pytest.mark.parametrize("mode", ["random", "pct"])
@pytest.mark.parametrize("name,params", [("readers", {"n": 4}), ("lastzero", {"n": 4})])
def test_benchmark_programs(name, params, mode):
    one = same(f"{BENCH}::{name}", params=params, mode=mode, seed=5, executions=300)
    assert one.executions == 300 and one.traces > 10


@pytest.mark.parametrize("mode", ["random", "pct"])
@pytest.mark.parametrize("spec,kernel,params,kinds", [
    ("teardown.py::getput", "v5.18", {"users": 2}, {"use_after_free"}),
    ("seeds.py::page_free_vs_memunmap", "v5.18", {}, {"use_after_free"}),
    ("teardown.py::teardown", "v6.1", {"users": 3}, set()),
])
def test_library_scenarios(spec, kernel, params, kinds, mode):
    # minimisation runs afterwards in the calling process, on the merged findings, as in one process
    r = same(str(ROOT / spec), kernel, params=params, mode=mode, executions=120, seed=2)
    assert {f.kind for f in r.findings} == kinds and r.executions == 120


@pytest.mark.parametrize("mode,seed,at", [("pct", 0, 6), ("pct", 1, 2)])
def test_first_finding_stops_at_the_same_execution(mode, seed, at):
    # ranges of 1 and 2 executions: the finding is in a range a worker or this process ran
    r = same(str(ROOT / "seeds.py::page_free_vs_memunmap"), "v5.18", chunks=(1, 2), mode=mode, seed=seed,
             stop_first=True, minimize=False, executions=400)
    assert r.executions == at and r.verdict == "found" and not r.stopped


def test_time_budget_commits_a_prefix():
    """What a split run does in its time is executions 0 .. M-1: one process asked for M
    executions gives the same answer."""
    spec = str(ROOT / "shapes.py::fork_exit_vs_unbind")
    two = _split(spec, "v6.1", None, "process", mode="random", seconds=0.8, seed=3)
    assert two.stopped == "time" and two.executions > 20
    one = check(spec, "v6.1", mode="random", executions=two.executions, seed=3, tables=False)
    assert answer(one) == answer(two)


def test_checkpoints_stay_one_process(tmp_path):
    r = check(f"{PLANTED}::dec_and_test", params={"users": 3}, mode="random", executions=50, jobs=2,
              checkpoint=str(tmp_path / "cp"), tables=False)
    one = check(f"{PLANTED}::dec_and_test", params={"users": 3}, mode="random", executions=50, tables=False)
    assert "index ranges" not in r.note and answer(r) == answer(one)


def test_an_execution_is_the_same_wherever_it_runs():
    """Execution i alone (a range [i, i+1)) finds what it finds inside the whole search."""
    from zonedev.rt.engine import Runner
    from zonedev.rt.explore import explore_random
    from zonedev.rt.outcome import Budget
    from zonedev.rt.scenario import resolve
    sc, = resolve(f"{PLANTED}::dec_and_test")
    runner = Runner(sc, None, {"users": 3})
    whole = explore_random(runner, Budget(executions=40), seed=9, pct_depth=3)
    alone = [explore_random(runner, Budget(), seed=9, pct_depth=3, span=(i, i + 1), k=whole.k) for i in range(40)]
    assert sum(o.steps for o in alone) == whole.steps
    first = {}
    for o in alone:
        for f in o.findings.values():
            if f.signature not in first or (f.preemptions, f.steps) < (first[f.signature].preemptions,
                                                                        first[f.signature].steps):
                first[f.signature] = f
    assert [(f.schedule, f.preemptions) for f in first.values()] == \
           [(f.schedule, f.preemptions) for f in whole.findings.values()] and first


def test_ray_backend_same_answer():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'zonedev[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        same(f"{BENCH}::lastzero", params={"n": 4}, chunks=(7,), backend="ray", mode="pct", executions=100)
        same(str(ROOT / "teardown.py::getput"), "v5.18", params={"users": 2}, chunks=(5,), backend="ray",
             mode="random", executions=60)
    finally:
        ray.shutdown()
