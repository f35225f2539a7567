"""The compiled checker (setup.py builds src/zonedev/rt/dpor.py and state.py with mypyc, as
``zonedev.rt._dpor_native`` and ``_state_native``) explores exactly what the interpreted
modules explore.  DPOR: the same executions in the same order, thread by thread, the same
wakeup sequences asked for, the same findings and counterexamples.  The stateful search: the
same executions, distinct states, steps, findings and counterexamples.  A difference would be a
mypyc semantics difference (or a type annotation the runtime disagrees with)."""

import hashlib
import importlib
import os
from pathlib import Path

import pytest

from zonedev.rt import check as check_mod
from zonedev.rt import dpor, native, state
from zonedev.rt.check import check
from zonedev.rt.engine import Runner
from zonedev.rt.outcome import Budget
from zonedev.rt.scenario import load_scenarios

explore = importlib.import_module("zonedev.rt.explore")   # (zonedev.rt.explore is also a function's name)

ROOT = Path(__file__).resolve().parent.parent / "scenarios"
BENCH = ROOT / "dpor_benchmarks.py"

compiled = pytest.mark.skipif(dpor.NATIVE is None, reason="the compiled DPOR core is not built from this "
                              "dpor.py (pip install -e . builds it with mypy and a C compiler; ZONEDEV_PURE unset)")
compiled_keys = pytest.mark.skipif(state.NATIVE is None, reason="the compiled state keys are not built from this "
                                   "state.py (pip install -e . builds them; ZONEDEV_PURE unset)")


class Trace:
    """``record=`` of explore_dpor: a digest of every execution's schedule, counts and the
    wakeup sequences it asked for, in order."""

    def __init__(self):
        self.h = hashlib.blake2b(digest_size=16)
        self.n = 0

    def __call__(self, target, thr, done, found, counts, events, nodes, log):
        self.n += 1
        self.h.update(repr((target, thr[:counts[2]], done[:target + 1], counts[:4],
                            [f.signature for f in found or ()], log)).encode())


def explore_with(impl, sc, params, optimal, **kw):
    t = Trace()
    out = impl.explore_dpor(Runner(sc, None, params), Budget(**kw), optimal=optimal, record=t)
    return (out.executions, out.blocked, out.steps, out.exhaustive, t.n, t.h.hexdigest())


@compiled
def test_the_compiled_core_is_the_one_in_use():
    assert dpor.explore_dpor is not dpor.pure().explore_dpor
    assert dpor.insert is dpor.NATIVE.insert
    assert dpor.pure().NATIVE is None          # the baseline never loads the compiled copy
    assert dpor.NATIVE.SOURCE == native.digest(dpor.__file__)


@compiled
@pytest.mark.parametrize("optimal", [True, False], ids=["optimal", "source"])
@pytest.mark.parametrize("name,params", [
    ("readers", {"n": 6}), ("lastzero", {"n": 6}), ("indexer", {"n": 12}),
    ("filesystem", {"n": 14}), ("refcount", {"n": 2}),
])
def test_same_exploration_on_the_dpor_programs(name, params, optimal):
    scs = load_scenarios(BENCH)
    if name not in scs:
        pytest.fail(f"{name} is no longer in {BENCH.name}")
    a = explore_with(dpor.pure(), scs[name], params, optimal)
    b = explore_with(dpor, scs[name], params, optimal)
    assert a == b
    assert a[3] and a[0] > 1


def _check(impl, spec, kernel, monkeypatch, **kw):
    t = Trace()
    monkeypatch.setattr(check_mod, "explore_dpor",
                        lambda *a, **k: impl.explore_dpor(*a, record=t, **k))
    r = check(str(ROOT / spec), kernel, mode="dpor", jobs=1, tables=False, **kw)
    return (r.executions, r.blocked, r.exhaustive, t.n, t.h.hexdigest(),
            [(f.signature, f.schedule) for f in r.findings])


@compiled
@pytest.mark.parametrize("spec,kernel,kw,finds", [
    ("hmm_races.py::release_vs_fault", "v6.1", {"executions": 400}, False),
    ("teardown.py::getput", "v5.18", {"params": {"users": 2}}, True),
    ("k2026.py::f20_hmm_range_fault_livelock", "v6.15", {}, True),
    ("catalogue.py::f9_fault_vs_migrate_to_ram", "v5.18", {}, True),
    ("fsdax.py::f12_truncate_vs_odirect_unpin", "v5.18", {}, True),
])
def test_same_exploration_and_counterexamples_on_library_scenarios(spec, kernel, kw, finds, monkeypatch):
    """Observed footprints on, minimisation on: what ``check`` reports, from either core."""
    a = _check(dpor.pure(), spec, kernel, monkeypatch, **kw)
    b = _check(dpor, spec, kernel, monkeypatch, **kw)
    assert a == b
    assert a[3] > 1 and bool(a[5]) == finds


@compiled
def test_order_by_enabler_reaches_the_compiled_core():
    """benchmarks/run.py and test_speed_paths set dpor.ORDER_BY_ENABLER: the compiled copy
    must see it (it reads its own module's global)."""
    sc = load_scenarios(ROOT / "hmm_races.py")["release_vs_fault"]
    try:
        dpor.ORDER_BY_ENABLER = False
        r = check(sc, "v6.1", mode="dpor", jobs=1, executions=300, minimize=False, tables=False)
        assert r.blocked > 0
    finally:
        dpor.ORDER_BY_ENABLER = True
    assert dpor.NATIVE.ORDER_BY_ENABLER is False     # set by the call above
    r = check(sc, "v6.1", mode="dpor", jobs=1, executions=300, minimize=False, tables=False)
    assert r.blocked == 0 and dpor.NATIVE.ORDER_BY_ENABLER is True


@compiled
def test_an_edited_dpor_py_runs_interpreted(tmp_path):
    """The compiled copy is taken only with the digest of the dpor.py beside it: a copy of the
    package whose dpor.py differs by a comment loads the interpreted module."""
    import shutil
    import subprocess
    import sys
    src = Path(dpor.__file__).resolve().parent.parent.parent
    dst = tmp_path / "src"
    shutil.copytree(src / "zonedev", dst / "zonedev", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "from zonedev.rt import dpor; print(dpor.NATIVE is not None)"
    env = {k: v for k, v in os.environ.items() if k != "ZONEDEV_PURE"}
    env["PYTHONPATH"] = str(dst)
    same = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert same.stdout.strip() == "True"      # the copy of the package takes its compiled copy
    with open(dst / "zonedev" / "rt" / "dpor.py", "a") as f:
        f.write("# edited\n")
    edited = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert edited.stdout.strip() == "False"
    env["ZONEDEV_PURE"] = "1"
    (dst / "zonedev" / "rt" / "dpor.py").write_bytes(Path(dpor.__file__).read_bytes())
    forced = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert forced.stdout.strip() == "False"


@compiled_keys
def test_the_compiled_state_keys_are_the_ones_in_use():
    assert state.NATIVE.SOURCE == native.digest(state.__file__)
    assert state.pure().NATIVE is None and state.pure().StateKeys is not state.NATIVE.StateKeys
    # both raise the one UnsoundKey the explorer catches
    assert state.pure().UnsoundKey is state.UnsoundKey is explore.UnsoundKey


def _stateful(keys, spec, kernel, monkeypatch, **kw):
    monkeypatch.setattr(state, "StateKeys", keys)
    monkeypatch.setattr(explore, "StateKeys", keys)
    r = check(str(ROOT.parent / spec), kernel, mode="stateful", jobs=1, tables=False, **kw)
    return (r.executions, r.blocked, r.steps, r.pruned, r.exhaustive, r.coverage(),
            [(f.signature, f.schedule) for f in r.findings])


@compiled_keys
@pytest.mark.parametrize("spec,kernel,kw,finds", [
    ("scenarios/hmm_races.py::fault_vs_migrate", "v6.1", {}, False),
    ("benchmarks/hmm3.py::two_faults_and_evict", "v6.1", {"executions": 600}, False),
    ("scenarios/teardown.py::teardown", "v5.18", {"params": {"users": 5}}, True),
    ("scenarios/teardown.py::getput", "v5.18", {}, True),
    ("scenarios/fsdax.py::f12_truncate_vs_odirect_unpin", "v5.18", {}, True),
    ("scenarios/catalogue.py::f9_fault_vs_migrate_to_ram", "v5.18", {}, True),
    ("scenarios/dpor_benchmarks.py::readers", None, {"params": {"n": 6}}, False),
])
def test_same_stateful_search_with_either_state_keys(spec, kernel, kw, finds, monkeypatch):
    """Symmetry, sleep sets, minimisation: what ``check --mode stateful`` reports."""
    current = state.StateKeys            # the compiled class's factory
    b = _stateful(current, spec, kernel, monkeypatch, **kw)
    a = _stateful(state.pure().StateKeys, spec, kernel, monkeypatch, **kw)
    assert a == b
    assert a[0] > 1 and bool(a[6]) == finds
