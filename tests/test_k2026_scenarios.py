"""scenarios/k2026.py: the 2025-26 bug classes found before their fixes and absent after."""

from __future__ import annotations

from pathlib import Path

import pytest

import zonedev
from zonedev.rt.scenario import load_scenarios

SCEN = str(Path(__file__).resolve().parents[1] / "scenarios" / "k2026.py")


def kinds(res):
    return {f.kind for f in res.findings}


def test_f17_found_without_the_fix_absent_with_it():
    bad = zonedev.check(f"{SCEN}::f17_large_folio_reuse", kernel="v6.19", without=["12b2285bf3d1"], tables=False)
    # the old tail's put lands on the old head; the head's free drops two pgmap refs for one
    assert {"put_on_free_page", "alloc_after_kill", "leak"} <= kinds(bad), kinds(bad)
    for k in ("v6.19", "newest"):
        good = zonedev.check(f"{SCEN}::f17_large_folio_reuse", kernel=k, tables=False)
        assert good.verdict == "ok" and good.exhaustive, [f.message for f in good.findings]


def test_f20_fixed_by_b570f37a2ce4():
    sc = load_scenarios(SCEN)["f20_hmm_range_fault_livelock"]
    for k in ("v6.15", "v6.19"):            # busy retry after the failed trylock (1afaeb8293c9)
        old = zonedev.check(sc, kernel=k, executions=200, tables=False)
        assert kinds(old) == {"livelock"}, (k, kinds(old), old.note)
        assert "hmm_range_fault" in old.findings[0].message
    new = zonedev.check(sc, kernel="v7.0", executions=200, tables=False)
    assert new.verdict == "ok" and new.exhaustive and not new.note


@pytest.mark.parametrize("name", ["f17_large_folio_reuse", "f20_hmm_range_fault_livelock"])
def test_expectations_declared(name):
    sc = load_scenarios(SCEN)[name]
    assert sc.expect and sc.refs[0].startswith("F")


@pytest.mark.parametrize("name,before", [("f22_pmd_lock_leak", "hang"), ("f23_pgtable_leak", "leak")])
def test_thp_insert_bugs_found_before_v71_and_fixed_in_it(name, before):
    for k in ("v6.19", "v7.0"):
        res = zonedev.check(f"{SCEN}::{name}", kernel=k, tables=False)
        assert kinds(res) == {before}, (k, [f.message for f in res.findings])
    res = zonedev.check(f"{SCEN}::{name}", kernel="v7.1", tables=False)
    assert res.verdict == "ok" and res.exhaustive


def test_versions_map_onto_the_new_kernels():
    from zonedev.patches import KERNELS, kernel_range, resolve, series
    assert {p.version for p in series()} <= set(KERNELS)
    assert [resolve(v).name for v in ("7.0-rc4", "6.18", "6.19.3", "7.1-rc6", "7.2", "5.12")] == \
        ["v7.0", "v6.17", "v6.19", "v7.1", "v7.1", "v5.11"]
    assert kernel_range("v6.17") == "6.17 - 6.18" and kernel_range("v7.0") == "7.0"
