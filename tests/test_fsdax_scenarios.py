"""scenarios/fsdax.py: every scenario's expectation holds on each kernel it names (the fsdax
kernels are cheap: each check is well under a second), the 2021 proposal fails generic/413 on the
kernel it was posted against and v6.15 does not, and F19 shows without its fix."""

from __future__ import annotations

import pytest

import zonedev
from zonedev.rt.scenario import load_scenarios

SCEN = "scenarios/fsdax.py"
FSDAX = load_scenarios(SCEN)
PROPOSAL = "scenarios/patches/remove_extra_refcount_2021.py"   # the seeds helper's patch of seed 003


def kinds(res):
    return {f.kind for f in res.findings}


CASES = [(name, kn) for name, scen in FSDAX.items() for kn in scen.expect]


@pytest.mark.parametrize("name,kn", CASES)
def test_expectation_holds(name, kn):
    scen = FSDAX[name]
    res = zonedev.check(scen, kernel=kn, tables=False, minimize=False)
    assert res.verdict != "error", res.error
    assert kinds(res) == set(scen.expected(kn)), (kn, [f.message for f in res.findings][:3])


def test_generic_413_on_the_2021_proposal():
    """F15: on v5.17 with the proposal the DAX-mapped page sits at 0; GUP warns and the O_DIRECT
    fails.  v6.15 makes fsdax 0-based with a reference per mapping and passes."""
    scen = FSDAX["generic_413_odirect_from_dax_mapping"]
    bad = zonedev.check(scen, kernel="v5.17", patches=[PROPOSAL], tables=False)
    assert kinds(bad) == {"get_on_free_page", "odirect_failed"}
    assert kinds(zonedev.check(scen, kernel="v5.17", tables=False)) == set()
    assert kinds(zonedev.check(scen, kernel="v6.15", tables=False)) == set()


def test_2021_proposal_truncate_vs_odirect():
    """Truncate racing O_DIRECT on the proposal: in every interleaving where the I/O runs while
    the page is mapped, GUP refuses the 0-refcount page (the WARN) and the write fails with
    -ENOMEM (not the -EFAULT of a buffer already truncated away); truncate itself never hangs."""
    scen = FSDAX["truncate_vs_odirect_put"]
    res = zonedev.check(scen, kernel="v5.17", patches=[PROPOSAL], tables=False)
    assert kinds(res) == {"get_on_free_page", "odirect_failed"}


def test_f19_without_its_fix():
    scen = FSDAX["f19_holes_mapped_to_zero_page"]
    res = zonedev.check(scen, kernel="v6.15", without=["98c183a4fccf"], tables=False)
    assert kinds(res) == {"dax_zero_page_associated"}
    assert kinds(zonedev.check(scen, kernel="v6.15", tables=False)) == set()
