"""The HMM races on the checker: F9 (fault vs migration of the same device-private page) is a
use-after-free before 16ce101db85d (found with one preemption) and nothing on v6.1 (every
interleaving, by DPOR); RELEASE vs fault and anon_teardown are clean on v6.1.

DPOR finds F9 before the fix and proves v6.1 and newest clean exhaustively (about 2,700
executions, 5 s each)."""

import pytest

import zonedev

SCEN = "scenarios/hmm_races.py"


@pytest.mark.parametrize("kernel", ["v5.17", "v5.18", "v6.0"])
def test_fault_vs_migrate_is_a_use_after_free_before_16ce101db85d(kernel):
    res = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel=kernel, mode="bounded", preemptions=1,
                        stop_first=True, tables=False)
    assert res.verdict == "found"
    assert "use_after_free" in {f.kind for f in res.findings}
    uaf = [f for f in res.findings if f.kind == "use_after_free"][0]
    assert "dmirror_devmem_fault" in uaf.message and uaf.preemptions <= 1


@pytest.mark.parametrize("kernel", ["v6.1", "newest"])
def test_fault_vs_migrate_is_clean_from_v61(kernel):
    res = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel=kernel, mode="dpor", tables=False)
    # from v6.15 (1afaeb8293c9) do_swap_page trylocks the device page, so the two faults no
    # longer both run migrate_to_ram: far fewer interleavings matter
    assert res.exhaustive and res.executions > (1000 if kernel == "v6.1" else 20)
    assert res.verdict == "ok", [f.message for f in res.findings]


def test_fault_vs_migrate_dpor_finds_f9_on_v60():
    res = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel="v6.0", mode="dpor", stop_first=True, tables=False)
    assert "use_after_free" in {f.kind for f in res.findings}


def test_without_16ce101db85d_the_race_comes_back():
    res = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel="v6.1", without=["16ce101db85d"], mode="bounded",
                        preemptions=1, stop_first=True, tables=False)
    assert "use_after_free" in {f.kind for f in res.findings}


def test_fault_vs_migrate_to_sys_v60_and_v61():
    found = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel="v6.0", params={"migrator": "to_sys"},
                          mode="bounded", preemptions=1, stop_first=True, tables=False)
    assert "use_after_free" in {f.kind for f in found.findings}
    ok = zonedev.check(f"{SCEN}::fault_vs_migrate", kernel="v6.1", params={"migrator": "to_sys"},
                       mode="bounded", preemptions=2, tables=False)
    assert ok.verdict == "ok", [f.message for f in ok.findings]


def test_release_vs_fault_v61_exhaustive():
    res = zonedev.check(f"{SCEN}::release_vs_fault", kernel="v6.1", mode="dpor", tables=False)
    assert res.exhaustive
    assert res.verdict == "ok", [f.message for f in res.findings]


def test_anon_teardown_race_bounded():
    res = zonedev.check(f"{SCEN}::anon_teardown", kernel="v6.1", mode="bounded", preemptions=2, tables=False)
    assert res.executions > 100
    assert res.verdict == "ok", [f.message for f in res.findings]
