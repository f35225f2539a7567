"""The failure catalogue (scenarios/catalogue.py): for every entry, the verdict the checker gives
on the last kernel where the entry is expected to fail and on the first kernel after it equals
the declared expectation (the set of finding kinds, or nothing); F4, which no release had, is
found on v5.3 with its fix left out."""

from __future__ import annotations

import pytest

import zonedev
from zonedev.rt.scenario import load_scenarios

SCEN = "scenarios/catalogue.py"
CATALOGUE = load_scenarios(SCEN)


def _boundaries():
    """(scenario, kernel) pairs either side of each change of expected verdict that ends in
    "safe" or in a different failure (the last failing kernel, the first one after it)."""
    out = []
    for name, scen in CATALOGUE.items():
        kernels = list(scen.expect)
        pairs = [(a, b) for a, b in zip(kernels, kernels[1:]) if scen.expect[a] and scen.expect[a] != scen.expect[b]]
        if not pairs:
            continue
        a, b = pairs[-1]
        out += [(name, a), (name, b)]
    return out


def test_every_scenario_names_its_catalogue_entry():
    ids = sorted(int(s.refs[0][1:]) for s in CATALOGUE.values())
    assert ids == [1, 2, 4, 5, 6, 7, 8, 9, 10, 12, 16]
    for name, scen in CATALOGUE.items():
        assert name.startswith(scen.refs[0].lower() + "_"), name
        assert scen.doc and scen.expect


@pytest.mark.parametrize("name,kernel", _boundaries())
def test_expectation_holds_either_side_of_the_fix(name, kernel):
    scen = CATALOGUE[name]
    res = zonedev.check(scen, kernel=kernel, minimize=False, tables=False)
    assert res.verdict != "error", [f.message for f in res.findings]
    assert res.exhaustive
    assert {f.kind for f in res.findings} == set(scen.expected(kernel)), (name, kernel, res.summary())


def test_f2_changes_at_50f44ee7248a():
    """bisect's F2 answer: v5.0 fails, v5.2 is safe, and v5.2 without 50f44ee7248a fails again."""
    scen = CATALOGUE["f2_put_vs_devm_release"]
    res = zonedev.check(scen, kernel="v5.2", without=["50f44ee7248a"], minimize=False, tables=False)
    assert {f.kind for f in res.findings} == {"use_after_free"}


def test_f4_only_without_7ab0ad0e74f8():
    scen = CATALOGUE["f4_freed_private_page_keeps_anon_mapping"]
    assert zonedev.check(scen, kernel="v5.3", tables=False).verdict == "ok"
    res = zonedev.check(scen, kernel="v5.3", without=["7ab0ad0e74f8"], minimize=False, tables=False)
    assert {f.kind for f in res.findings} == {"stale_anon_mapping"}
    assert "PageAnon() is true" in res.findings[0].message


def test_f6_probe_sees_the_flag_steps_on_dax_only():
    """The probe is not a blanket alarm: a device-private page's free runs the same steps
    without a finding."""
    scen = CATALOGUE["f6_hmm_free_steps_on_dax_page"]
    res = zonedev.check(scen, kernel="v5.3", minimize=False, tables=False)
    assert "__ClearPageActive and __ClearPageWaiters on fsdax page" in res.findings[0].message
    assert zonedev.check(scen, kernel="v5.6", tables=False).verdict == "ok"
