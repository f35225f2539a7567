"""The previous and the current Optimal-DPOR path (``zonedev.rt.dpor.ORDER_BY_ENABLER``, kept
selectable for benchmarks/run.py): the current one orders a step that waited (a completion, a
wait_event) after the event that made it ready instead of racing them, which removes the
infeasible reversals that ended sleep-set blocked on the real model, and explores the same
complete executions with the same findings."""

from pathlib import Path

import pytest

from zonedev.rt import dpor
from zonedev.rt.check import check

ROOT = Path(__file__).resolve().parent.parent / "scenarios"


def run(spec, kernel, previous, **kw):
    dpor.ORDER_BY_ENABLER = not previous
    try:
        return check(str(ROOT / spec), kernel, mode="dpor", minimize=False, tables=False, jobs=1, **kw)
    finally:
        dpor.ORDER_BY_ENABLER = True


def test_release_vs_fault_is_no_longer_sleep_set_blocked():
    # the first 300 executions of HMM_DMIRROR_RELEASE vs a CPU fault on v6.1: the previous path
    # ended some of them with the faulting CPU asleep before complete() and exit blocked waiting
    old = run("hmm_races.py::release_vs_fault", "v6.1", True, executions=300)
    new = run("hmm_races.py::release_vs_fault", "v6.1", False, executions=300)
    assert old.blocked > 0
    assert new.blocked == 0 and new.executions == 300


@pytest.mark.parametrize("spec,kernel", [
    ("k2026.py::f20_hmm_range_fault_livelock", "newest"),
    ("hmm_races.py::anon_teardown", "v6.1"),
    ("teardown.py::getput", "v5.18"),
])
def test_same_executions_and_findings(spec, kernel):
    kw = {"params": {"users": 2}} if "getput" in spec else {}
    old = run(spec, kernel, True, **kw)
    new = run(spec, kernel, False, **kw)
    assert old.exhaustive and new.exhaustive
    assert new.executions == old.executions
    assert new.blocked <= old.blocked
    assert sorted(f.signature for f in new.findings) == sorted(f.signature for f in old.findings)
