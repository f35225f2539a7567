"""``check --jobs``: one Optimal-DPOR exploration split over worker processes gives the answer of
one process -- executions, sleep-set-blocked, steps, findings and their (minimal)
counterexamples -- on the DPOR benchmark programs and on library scenarios, whatever the split
depth; and the Ray backend the same (skipped when ray is not installed)."""

from pathlib import Path

import pytest

from zonedev.rt import parallel
from zonedev.rt.check import check

ROOT = Path(__file__).resolve().parent.parent / "scenarios"
BENCH = str(ROOT / "dpor_benchmarks.py")


@pytest.fixture(autouse=True)
def workers_at_once(monkeypatch):
    """Start the workers at the first unit (by default small searches never start them)."""
    monkeypatch.setattr(parallel, "WARMUP", 0.0)


def answer(r):
    return (r.verdict, r.executions, r.blocked, r.steps, r.exhaustive,
            [(f.kind, f.signature, f.schedule, f.preemptions, f.steps, f.message) for f in r.findings])


def same(spec, kernel=None, splits=(None, 1, 3), **kw):
    one = check(spec, kernel, jobs=1, tables=False, **kw)
    assert one.exhaustive or kw.get("stop_first")
    for split in splits:
        two = check(spec, kernel, jobs=2, split=split, tables=False, **kw)
        assert answer(two) == answer(one), split
        assert "units on 2 workers" in two.note      # the split path really ran
    return one


@pytest.mark.parametrize("name,params,execs", [
    ("readers", {"n": 6}, 64), ("lastzero", {"n": 5}, 64), ("indexer", {"n": 12}, 8),
    ("filesystem", {"n": 15}, 4), ("refcount", {"n": 2}, 140)])
def test_benchmark_programs(name, params, execs):
    assert same(f"{BENCH}::{name}", params=params).executions == execs


@pytest.mark.parametrize("spec,kernel,params,kinds", [
    ("teardown.py::teardown", "v5.18", {}, {"use_after_free"}),
    ("teardown.py::getput", "v5.18", {"users": 2}, {"use_after_free"}),
    ("teardown.py::forgotten_put", "v6.1", {}, {"hang"}),
    ("seeds.py::page_free_vs_memunmap", "v5.18", {}, {"use_after_free"}),
    ("shapes.py::fork_exit_vs_unbind", "v6.1", {}, set()),
])
def test_library_scenarios(spec, kernel, params, kinds):
    r = same(str(ROOT / spec), kernel, params=params, mode="dpor")
    assert {f.kind for f in r.findings} == kinds


def test_first_finding_stops_where_one_process_stops():
    same(str(ROOT / "teardown.py::getput"), "v5.18", params={"users": 2}, mode="dpor", stop_first=True,
         minimize=False, splits=(2, 4))


def test_budgets_that_need_one_process_say_so():
    r = check(f"{BENCH}::readers", params={"n": 4}, jobs=2, executions=5)
    assert r.executions == 5 and "units" not in r.note


def test_ray_backend_same_counts():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'zonedev[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        one = check(f"{BENCH}::lastzero", params={"n": 4}, jobs=1, tables=False)
        two = check(f"{BENCH}::lastzero", params={"n": 4}, jobs=2, split=2, backend="ray", tables=False)
        assert answer(two) == answer(one)
        sc = str(ROOT / "teardown.py::getput")
        one = check(sc, "v5.18", params={"users": 2}, mode="dpor", jobs=1, tables=False)
        two = check(sc, "v5.18", params={"users": 2}, mode="dpor", jobs=2, split=3, backend="ray", tables=False)
        assert answer(two) == answer(one)
    finally:
        ray.shutdown()


def test_first_finding_is_reported_when_found():
    seen = []
    r = check(str(ROOT / "teardown.py::teardown"), "v5.18", params={"users": 8}, tables=False,
              on_finding=lambda f, n, s: seen.append((f.kind, n, s)))
    assert r.verdict == "found" and r.executions > 100
    (kind, n, secs), = seen
    assert kind == "use_after_free" and n < r.executions and secs < r.elapsed


def test_deep_wakeup_trees_travel_flat():
    # a wakeup tree as deep as a long execution (thousands of levels) must pickle and compare
    import pickle
    root = node = [0, 1, 2, []]
    for i in range(5000):
        new = [i % 3, i, 0, []]
        node[3].append(new)
        if i % 7 == 0:
            node[3].append([2, 0, i, [[1, 0, 0, []]]])
        node = new
    flat = parallel._flat(root)
    assert parallel._flat(parallel._unflat(pickle.loads(pickle.dumps(flat)))) == flat   # (== on the
    wut = parallel._levels(parallel._flat_levels([[root]], 0), 0, [])                     # trees recurses)
    assert len(wut) == 5001 and wut[0][0] is not root and parallel._flat(wut[0][0]) == flat
