"""``check --jobs``: one Optimal-DPOR exploration split over worker processes gives the answer of
one process -- executions, sleep-set-blocked, steps, findings and their (minimal)
counterexamples -- on the DPOR benchmark programs and on library scenarios, however often the
workers report; and the Ray backend the same (skipped when ray is not installed)."""

import time
from pathlib import Path

import pytest

from zonedev.rt import parallel, workers
from zonedev.rt.check import check

ROOT = Path(__file__).resolve().parent.parent / "scenarios"
BENCH = str(ROOT / "dpor_benchmarks.py")


@pytest.fixture(autouse=True)
def workers_at_once(monkeypatch):
    """Start the workers after the first execution (by default small searches never start them),
    and run one execution at a time here outside the leaves handed out (a stretch of 5 ms would
    finish these small searches before a worker sends anything)."""
    monkeypatch.setattr(parallel, "WARMUP", 0.0)
    monkeypatch.setattr(parallel, "STRETCH", 0.0)


def ahead(r):
    """How many of a split search's executions were a worker's."""
    import re
    return int(re.search(r"([\d,]+) of them run ahead on workers", r.note).group(1).replace(",", ""))


def answer(r):
    return (r.verdict, r.executions, r.blocked, r.steps, r.exhaustive,
            [(f.kind, f.signature, f.schedule, f.preemptions, f.steps, f.message) for f in r.findings])


def _slowed(explore, seconds=0.001):
    def slow(*a, **k):          # this process's executions only (a worker calls workers.explore_dpor)
        time.sleep(seconds)
        return explore(*a, **k)
    return slow


def same(spec, kernel=None, flushes=(0.0, 0.01), **kw):
    """``flushes``: how often the workers report (0: after every execution, so the search
    meets them often; 0.01: the default); and once more with this process slowed down, so
    that the workers run ahead of it and what they ran is taken."""
    one = check(spec, kernel, jobs=1, tables=False, **kw)
    assert one.exhaustive or kw.get("stop_first")
    taken = 0
    here = parallel.explore_dpor
    for flush, slow in [(f, False) for f in flushes] + [(0.0, True)]:
        workers.FLUSH = flush
        parallel.explore_dpor = _slowed(here) if slow else here
        try:
            two = check(spec, kernel, jobs=2, tables=False, **kw)
        finally:
            workers.FLUSH = 0.01
            parallel.explore_dpor = here
        assert answer(two) == answer(one), (flush, slow)
        taken = max(taken, ahead(two))
    if not kw.get("stop_first") and one.executions >= 8:     # (2 executions: nothing to hand out)
        assert taken > 0                                # the split path really ran
    return one


@pytest.mark.parametrize("name,params,execs", [
    ("readers", {"n": 6}, 64), ("lastzero", {"n": 5}, 64), ("indexer", {"n": 12}, 8),
    ("filesystem", {"n": 15}, 4), ("refcount", {"n": 2}, 140)])
def test_benchmark_programs(name, params, execs):
    assert same(f"{BENCH}::{name}", params=params).executions == execs


@pytest.mark.parametrize("spec,kernel,params", [
    (f"{BENCH}::lastzero", None, {"n": 7}), (f"{BENCH}::readers", None, {"n": 8}),
    (str(ROOT / "teardown.py::getput"), "v5.18", {"users": 2})])
def test_stretches_stop_where_a_leaf_is_out(monkeypatch, spec, kernel, params):
    # many executions a call here, outside the leaves handed out: each call stops where the
    # search could enter one (its floor), so the workers' leaves are still taken from them
    monkeypatch.setattr(parallel, "STRETCH", 0.0005)
    stretch = parallel._Coordinator._stretch
    passed = []

    def watched(self, j, until):        # no leaf out is entered (or passed) by a stretch
        out = [(u.j, u.node) for u in self.units.values() if u.node is not None and id(u.node) in self.watch]
        r = stretch(self, j, until)
        tree = self.st[0]
        passed.extend(k for k, node in out if tree[k][0] is node or not any(c is node for c in tree[k]))
        return r
    monkeypatch.setattr(parallel._Coordinator, "_stretch", watched)
    kw = dict(params=params, tables=False, mode="dpor")
    one = check(spec, kernel, jobs=1, **kw)
    taken = 0
    for flush in (0.0, 0.01):
        monkeypatch.setattr(workers, "FLUSH", flush)
        two = check(spec, kernel, jobs=2, **kw)
        assert answer(two) == answer(one)
        taken = max(taken, ahead(two))
    assert taken > 0 and not passed


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
         minimize=False)


def test_a_budget_in_executions_stays_exact():
    # the executions one process explores first, however many a worker ran ahead
    spec = str(ROOT / "teardown.py::getput")
    for n in (1, 7, 150):
        one = check(spec, "v5.18", params={"users": 2}, mode="dpor", executions=n, tables=False)
        two = check(spec, "v5.18", params={"users": 2}, mode="dpor", executions=n, jobs=2, tables=False)
        assert answer(two) == answer(one) and one.executions + one.blocked == n
    assert "run ahead on workers" in two.note


def test_checkpoints_need_one_process(tmp_path):
    r = check(f"{BENCH}::readers", params={"n": 4}, jobs=2, checkpoint=str(tmp_path / "c.ckpt"))
    assert r.executions == 16 and "workers" not in r.note


def test_ray_backend_same_counts():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'zonedev[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        one = check(f"{BENCH}::lastzero", params={"n": 4}, jobs=1, tables=False)
        two = check(f"{BENCH}::lastzero", params={"n": 4}, jobs=2, backend="ray", tables=False)
        assert answer(two) == answer(one)
        sc = str(ROOT / "teardown.py::getput")
        one = check(sc, "v5.18", params={"users": 2}, mode="dpor", jobs=1, tables=False)
        two = check(sc, "v5.18", params={"users": 2}, mode="dpor", jobs=2, backend="ray", tables=False)
        assert answer(two) == answer(one)
    finally:
        ray.shutdown()


class _InlineTasks:
    """A task backend (Ray's interface) that runs a leaf in this process when it is submitted:
    the task path -- a leaf's executions come back only when it ends, it cannot be stopped or
    asked for what it holds -- without ray."""

    def __init__(self, runner, max_steps, stop_first):
        self.runner, self.max_steps, self.stop_first, self.ran = runner, max_steps, stop_first, 0

    def submit(self, payload):
        self.ran += 1
        return workers.run_unit(self.runner, payload, None, self.max_steps, None, None, self.stop_first)

    def ready(self, handle):
        return True

    def get(self, handle):
        return handle

    def close(self):
        pass


@pytest.mark.parametrize("name,params", [("lastzero", {"n": 5}), ("readers", {"n": 6}), ("indexer", {"n": 12})])
def test_task_backend_same_answer(monkeypatch, name, params):
    backs = []

    def start(backend, jobs, runner, observe, max_steps, deadline, step_timeout, address, job, stop_first):
        backs.append(_InlineTasks(runner, max_steps, stop_first))
        return workers._Tasks(backs[-1], jobs)
    monkeypatch.setattr(parallel, "_start", start)
    one = check(f"{BENCH}::{name}", params=params, jobs=1, tables=False)
    two = check(f"{BENCH}::{name}", params=params, jobs=2, backend="ray", tables=False)
    assert answer(two) == answer(one) and backs[-1].ran > 0
    assert "run ahead on workers" in two.note


def test_first_finding_is_reported_when_found():
    seen = []
    r = check(str(ROOT / "teardown.py::teardown"), "v5.18", params={"users": 8}, tables=False,
              on_finding=lambda f, n, s: seen.append((f.kind, n, s)))
    assert r.verdict == "found" and r.executions > 100
    (kind, n, secs), = seen
    assert kind == "use_after_free" and n < r.executions and secs < r.elapsed


def _execution(rep, t):
    """One execution from node ``t`` reported to ``rep`` (one new event, no findings)."""
    rep.add(t, ([0] * (t + 1), [0] * (t + 1)), None, (1, 0, t + 1, 0, "", 0, None),
            [[(0, "r", ())], [None], [1], [0], [(1,)], [None], [False]],
            [[None], [0], [()], [1], [0], [1], [1]], [(t, (0,))])


def test_a_worker_holds_its_executions_back_until_asked(monkeypatch):
    rep = workers._Report(["t0"], lazy=True)
    for t in (0, 2, 4, 4, 4, 1):      # 1..4: a subtree below node 2, left when 5 starts at node 1
        _execution(rep, t)
    xs, _, sums, sent = rep.batch()
    assert not xs and not sent and [(a, b, t) for a, b, t, _ in sums] == [(1, 4, 2)]
    assert [r[0] for r in rep.recs] == [0, 1, 5]   # 2..4 are inside the summary: never needed
    rep.lazy = False                                # asked ("want")
    xs, blob, sums, sent = rep.batch()
    assert xs == [0, 1, 5] and sent and not sums and not rep.recs
    # past HELD a worker sends what it holds without being asked
    monkeypatch.setattr(workers, "HELD", 3)
    rep = workers._Report(["t0"], lazy=True)
    for t in range(5):                # deeper and deeper: no subtree is left
        _execution(rep, t)
    xs, _, _, sent = rep.batch()
    assert sent and xs == [0, 1, 2, 3, 4]


def test_deep_wakeup_trees_travel_flat():
    # a wakeup tree as deep as a long execution (thousands of levels) must pickle and come back
    import pickle
    root = node = [0, 1, 2, []]
    for i in range(5000):
        new = [i % 3, i, 0, []]
        node[3].append(new)
        if i % 7 == 0:
            node[3].append([2, 0, i, [[1, 0, 0, []]]])
        node = new
    flat = workers._flat(root)
    assert workers._flat(workers._unflat(pickle.loads(pickle.dumps(flat)))) == flat


def _stale(far_leaf):
    """A worker's copy gone stale: the leaf's wakeup subtree as the worker gets it holds a child
    for every thread, last thread first, so the worker's first choices past the leaf are not the
    ones the tree here leads to."""
    import pickle

    def stale(st, j, units, inside):
        far = far_leaf(st, j, units, inside)
        if far is None:
            return None
        c, payload, node, key, flat = far
        base, (c2, t, done, sx, flat) = pickle.loads(payload)
        n = len(base[7][0])                       # threads (pend: one footprint each)
        flat = flat[:1] + [(1, u, None, 0) for u in reversed(range(n))]
        return c, pickle.dumps((base, (c2, t, done, sx, flat))), node, key, flat
    return stale


@pytest.mark.parametrize("spec,kernel,params", [
    (f"{BENCH}::lastzero", None, {"n": 5}), (f"{BENCH}::readers", None, {"n": 6}),
    (str(ROOT / "teardown.py::getput"), "v5.18", {"users": 2})])
def test_stale_worker_subtrees_are_not_taken(monkeypatch, spec, kernel, params):
    kw = dict(params=params, tables=False, mode="dpor" if kernel else "auto")
    one = check(spec, kernel, jobs=1, **kw)
    monkeypatch.setattr(workers, "FLUSH", 0.0)
    monkeypatch.setattr(parallel, "_far_leaf", _stale(parallel._far_leaf))
    monkeypatch.setattr(parallel, "STRETCH", 0.0)   # one execution a call here
    # the worker finishes its (small) subtree before the search gets there, so the search
    # meets what it sent, every run
    monkeypatch.setattr(parallel, "explore_dpor", _slowed(parallel.explore_dpor, 0.003))
    compared = []
    unchanged = parallel._Unit.unchanged
    monkeypatch.setattr(parallel._Unit, "unchanged", lambda u, st: compared.append(unchanged(u, st)) or compared[-1])
    two = check(spec, kernel, jobs=2, **kw)
    assert compared and not any(compared)     # the search met the stale leaves, and saw it
    assert answer(two) == answer(one)
    # the planted bug: a leaf compared by its path alone
    monkeypatch.setattr(parallel._Unit, "unchanged", lambda u, st: parallel.path_key(st[6], st[11]) == u.key)
    bad = check(spec, kernel, jobs=2, **kw)
    assert answer(bad) != answer(one)


def test_adopt_refuses_an_execution_the_tree_here_does_not_lead_to():
    # node 0 ran thread 0; below it the tree here says thread 2 next, the worker ran thread 1
    leaf = [0, 1, 2, [[2, 4, 8, []], [1, 16, 32, []]]]
    st = [[[leaf]]] + [[] for _ in range(14)]
    for x in workers._NODE:
        st[x].append(0)
    events = [[None, None], [1, 64], [2, 128]]             # evx er ew of events 0 and 1
    nodes = [[None], [1], [0b111], [0], [0]]                # sx thr enab sleep done of node 1
    before = workers._flat(leaf)
    assert not parallel._adopt(st, 0, events, nodes, [], b"")
    assert workers._flat(leaf) == before and len(st[0]) == 1 and st[6] == [0]
    nodes[1] = [2]                                          # the worker ran thread 2: taken
    lazy = []
    assert parallel._adopt(st, 0, events, nodes, lazy, b"heavy")
    assert st[6] == [0, 2] and st[0][1][0] is leaf[3][0] and leaf[3][0][1:3] == [64, 128]
    assert lazy == [[0, 2, b"heavy"]]


def test_a_worker_that_dies_costs_time_not_the_answer(monkeypatch):
    import os
    spec = str(ROOT / "teardown.py::getput")
    one = check(spec, "v5.18", params={"users": 2}, mode="dpor", tables=False)
    run_unit = workers.run_unit
    seen = []

    def dies_on_its_second_leaf(*a, **k):
        seen.append(1)
        if len(seen) == 2:
            os._exit(1)           # (in the forked worker)
        return run_unit(*a, **k)
    monkeypatch.setattr(workers, "run_unit", dies_on_its_second_leaf)
    two = check(spec, "v5.18", params={"users": 2}, mode="dpor", tables=False, jobs=2)
    assert answer(two) == answer(one)
    assert "1 worker(s) died" in two.note


def test_auto_switches_to_the_stateful_search_with_jobs_too(monkeypatch):
    # auto's first Optimal-DPOR executions run split (their budget stays exact), then the switch
    from zonedev.rt import check as check_mod
    f9 = str(ROOT / "catalogue.py::f9_fault_vs_migrate_to_ram")
    monkeypatch.setattr(check_mod, "AUTO_SWITCH", 20)
    one = check(f9, "v5.10", tables=False)
    two = check(f9, "v5.10", tables=False, jobs=2)
    assert one.mode == two.mode == "stateful" and "not finished after 20 executions" in two.auto
    assert "Optimal-DPOR ran 20 executions first" in two.note
    assert answer(two) == answer(one)
