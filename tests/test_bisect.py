"""``zonedev bisect``: the patch of the series at which a scenario's verdict changes.

The scenarios below are fixtures for the bisect tests (the library's own live in ``scenarios/``):

* ``f2_put_vs_release`` — F2: a user of a host-memory pgmap (pmem or device-dax: the ``generic``
  type) drops its page reference while the driver tears the pgmap down.  v4.5-v5.0 remove the memmap (arch_remove_memory) before anybody waits for the
  page references; 50f44ee7248a (v5.2) moves the wait (``cleanup``) before it.
* ``fsdax_unpin`` — the last unpin of an fsdax page (refcount back to 1) must wake the
  dax_layout_busy_page waiter.  d8ddc099c6b3 (v5.18, gup_put_folio) lost the wake-up;
  f4f451a16dd1 (v5.19, "Fixes: d8ddc099c6b3") restored it.  With the pre-v5.11 unpin path put
  back by a user patch (tests/bisect_old_unpin.py), the two patches merged before d8ddc099c6b3
  in v5.18 leave it calling the free_devmap_managed_page that 27674ef6c73f removed: those
  prefixes cannot run the scenario (skipped and named).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.patches import SERIES, kernel_at, kernel_index, patches_for, prefix_label, series, series_prefix
from zonedev.rt.bisect import bisect
from zonedev.rt.scenario import resolve
from zonedev.sync import World, use_world

ROOT = Path(__file__).resolve().parent.parent
HERE = "tests/test_bisect.py"
#: a user patch bringing back the pre-v5.11 unpin path (see the file)
OLD_UNPIN = str(ROOT / "tests" / "bisect_old_unpin.py")


def _memmap_state(drv):
    return lambda: (tuple(p.memmap_live for p in drv.pgmap.pages), len(drv.callbacks))


@zonedev.scenario(mode="stateful", expect={"v4.5..v5.0": "use_after_free", "v5.2..v5.17": "safe"},
                  refs=["F2", "50f44ee7248a"])
def f2_put_vs_release(k):
    """A GUP user's put_page of a pmem/device-dax page racing the driver's teardown: is the memmap
    still there when the put runs?  v4.5-v5.0: devm_memremap_pages_release removes it (arch_remove_memory) before
    the driver waits for the reference; fixed by 50f44ee7248a (v5.2)."""
    drv = ExampleDriver(k, "generic", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)                 # get_user_pages on the DAX mapping

    def user():
        k.put_page(page)             # the I/O is done

    return zonedev.Run({"user": user, "remove": drv.remove}, state=_memmap_state(drv), opaque=[drv])


@zonedev.scenario(expect={"v5.6..v5.17": "safe", "v5.18": "fsdax_waiter_never_woken", "v5.19..": "safe"},
                  refs=["d8ddc099c6b3", "f4f451a16dd1"])
def fsdax_unpin(k):
    """An fsdax page pinned for DMA (pin_user_page) is unpinned: does the last unpin, which takes
    the page back to its idle refcount 1, wake a truncate waiting in dax_layout_busy_page?"""
    drv = ExampleDriver(k, "fsdax", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.pin_user_page(page)

    def dma():
        k.unpin_user_page(page)

    return zonedev.Run({"dma": dma})


def run(*args: str):
    """``zonedev ARGS`` in-process from the repository root; returns the click result."""
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def first_line(res) -> str:
    return res.stdout.splitlines()[0]


# --- the series as kernels ---------------------------------------------------------------------

def test_kernel_at_is_the_series_prefix():
    i = SERIES.index("c_27674ef6c73f")
    k = kernel_at("27674ef6c73f")
    assert k.name == "v5.18@27674ef6c73f" == prefix_label(i)
    assert k.patches == series_prefix(i) == series()[:i + 1]
    # the prefix has what 27674ef6c73f removed gone and what the next patch adds not yet there
    assert not k.has("free_devmap_managed_page") and k.has("free_zone_device_page")
    assert not k.has("gup_put_folio") and kernel_at("d8ddc099c6b3").has("gup_put_folio")
    # a named kernel is the prefix up to its last patch
    j = kernel_index("v5.17")
    assert set(series_prefix(j)) == set(patches_for("v5.17"))
    assert kernel_index("5.17.3") == j and series()[j + 1].commit.startswith("27674ef6c73f")


# --- the Done-when cases ----------------------------------------------------------------------

def test_teardown_use_after_free_came_in_with_27674ef6c73f():
    res = run("bisect", "scenarios/teardown.py::teardown3", "--good", "v5.17", "--bad", "v5.18")
    assert res.exit_code == 0, res.output
    # v5.17 also has use_after_free (page_free still running when memunmap_pages returns, the
    # window of __put_devmap_managed_page's 2 -> 1 free); 27674ef6c73f takes the F7 half away
    assert first_line(res).startswith("27674ef6c73f is the first patch where teardown3's verdict changes: "
                                      "page_free_while_referenced, use_after_free -> use_after_free (the bad "
                                      "verdict came in; good v5.17, bad v5.18)")
    out = res.stdout
    assert '"mm: remove the extra ZONE_DEVICE struct page refcount" (v5.18)' in out
    assert "counterexample on the bad side (v5.18@27674ef6c73f)" in out
    assert "!! use_after_free" in out                       # the interleaving table
    replay = next(line.split("replay:", 1)[1].strip() for line in out.splitlines() if "replay:" in line)
    assert "--at 27674ef6c73f" in replay
    again = run(*shlex.split(replay)[1:])                   # the replay command reproduces it
    assert again.exit_code == 1 and "use_after_free" in again.stdout


def test_teardown_use_after_free_fixed_by_0dc45ca1ce18():
    res = run("bisect", "scenarios/teardown.py::teardown3", "--bad", "v5.18", "--good", "v6.1", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["direction"] == "fixed" and data["search"] == "binary"
    ch = data["change"]
    assert ch["commit"].startswith("0dc45ca1ce18") and ch["version"] == "v6.1"
    assert ch["before"]["verdict"] == ["use_after_free"] and ch["after"]["verdict"] == "safe"
    assert data["counterexample_side"] == "bad"
    cx = data["counterexample"]
    assert cx["kernel"] == ch["before"]["kernel"] == "v6.1@ef233450898f"
    assert [f["kind"] for f in cx["findings"]] == ["use_after_free"] and cx["findings"][0]["table"]
    # 9 patches between v5.18 and v6.1: a binary search checks the two ends and a few between
    assert len(data["probes"]) <= 6
    text = run("bisect", "scenarios/teardown.py::teardown3", "--bad", "v5.18", "--good", "v6.1")
    assert first_line(text).startswith("0dc45ca1ce18 is the first patch where teardown3's verdict changes: "
                                       "use_after_free -> safe (the bug was fixed")


def test_f2_fixed_by_50f44ee7248a_ends_from_expect():
    res = run("bisect", f"{HERE}::f2_put_vs_release")
    assert res.exit_code == 0, res.output
    assert first_line(res).startswith("50f44ee7248a is the first patch where f2_put_vs_release's verdict "
                                      "changes: use_after_free -> safe (the bug was fixed; bad v5.0, good v5.2)")
    assert "--good v5.2 --bad v5.0 (from expect=" in res.stderr


def test_f2_binary_search_is_a_handful_of_checks():
    sc = resolve(f"{ROOT / HERE}::f2_put_vs_release")[0]
    with use_world(World()) as mine:
        res = bisect(sc, good="v5.2", bad="v4.12")
    assert not mine.objects                  # the kernels bisect built live in worlds of their own
    assert res.direction == "fixed" and res.change.commit == "50f44ee7248a"
    between = res.newer - res.older                                   # 12 patches on v5.2's side
    assert between >= 10 and res.checks() <= 2 + math.ceil(math.log2(between))   # the ends + halving
    assert res.before.kinds == {"use_after_free"} and res.change.kinds == frozenset()


def test_catalogue_f2_scenario_bisects_to_50f44ee7248a():
    names = [n for n in zonedev.rt.scenario.load_scenarios(ROOT / "scenarios" / "catalogue.py")
             if n.startswith("f2_")]
    assert names, "scenarios/catalogue.py has no f2_ scenario"
    for args in (["--bad", "v5.0", "--good", "v5.2"], []):           # [] : the ends from its expect=
        res = run("bisect", f"scenarios/catalogue.py::{names[0]}", *args)
        assert res.exit_code == 0, res.output
        assert first_line(res).startswith(f"50f44ee7248a is the first patch where {names[0]}'s verdict "
                                          f"changes: use_after_free -> safe (the bug was fixed")


# --- skipping, both directions, never changing ------------------------------------------------

def test_untestable_prefixes_are_skipped_and_named():
    # Since 4509b42c3896 (v5.11, kernel_2025_2026 C6) unpin_user_page goes through put_page, so the
    # v5.18 prefixes 27674ef6c73f and 5cbf9942c963 (free_devmap_managed_page gone, gup_put_folio not
    # yet there) are testable for fsdax_unpin.  A user patch that brings the pre-v5.11 unpin back
    # (it calls free_devmap_managed_page, which those prefixes no longer have) makes them untestable.
    res = run("bisect", f"{HERE}::fsdax_unpin", "--good", "v5.17", "--bad", "v5.18", "--patch", OLD_UNPIN)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert first_line(res).startswith("d8ddc099c6b3 is the first patch where fsdax_unpin's verdict changes: "
                                      "safe -> fsdax_waiter_never_woken (the bug came in")
    assert "or one of the 2 patches right before it, which could not be tested:" in out
    assert "27674ef6c73f" in out and "5cbf9942c963" in out
    assert "has no free_devmap_managed_page()" in out
    # without the user patch every prefix is testable
    plain = run("bisect", f"{HERE}::fsdax_unpin", "--good", "v5.17", "--bad", "v5.18")
    assert "could not be tested:" not in plain.stdout and plain.stdout.startswith("d8ddc099c6b3 is the first patch")
    # default ends: the first change expect= declares (v5.17 safe -> v5.18 finding)
    dflt = run("bisect", f"{HERE}::fsdax_unpin", "--json", "--patch", OLD_UNPIN)
    data = json.loads(dflt.stdout)
    assert (data["good"]["kernel"], data["bad"]["kernel"]) == ("v5.17", "v5.18")
    assert data["change"]["commit"].startswith("d8ddc099c6b3")
    assert data["change"]["or_untested"] == [p for p in data["skipped"]]
    assert sorted(c[:12] for c in data["skipped"]) == ["27674ef6c73f", "5cbf9942c963"]


def test_fix_named_with_its_fixes_tag():
    res = run("bisect", f"{HERE}::fsdax_unpin", "--bad", "v5.18", "--good", "v5.19")
    assert res.exit_code == 0, res.output
    assert first_line(res).startswith("f4f451a16dd1 is the first patch")
    fix = next(p for p in series() if p.commit.startswith("f4f451a16dd1"))
    assert fix.fixes.startswith("d8ddc099c6b3")


def test_verdict_never_changes():
    res = run("bisect", "scenarios/teardown.py::teardown3", "--good", "v6.1", "--bad", "newest")
    assert res.exit_code == 1, res.output
    assert first_line(res).startswith("teardown3: the verdict never changes between v6.1 and newest: safe")
    assert "(linear search)" in res.stdout
    n = kernel_index("newest") - kernel_index("v6.1")
    assert f"{n + 1} checks" in res.stdout                  # every prefix between was checked


def test_versions_as_people_write_them():
    res = run("bisect", "scenarios/teardown.py::teardown3", "--good", "5.17.3", "--bad", "5.18.0-1-amd64")
    assert res.exit_code == 0, res.output
    assert first_line(res).startswith("27674ef6c73f is the first patch")
    assert "modelled as v5.17" in res.stderr


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["scenarios/teardown.py::teardown3", "--good", "v6.x", "--bad", "v6.1"], "--good: unknown kernel 'v6.x'"),
    (["scenarios/teardown.py::teardown3", "--good", "v6.1", "--bad", "6.1.5"], "are the same modelled kernel"),
    (["scenarios/teardown.py::teardown3"], "declares no expect="),
    (["scenarios/teardown.py::nosuch", "--good", "v5.17", "--bad", "v5.18"], "no scenario 'nosuch'"),
    (["scenarios/teardown.py", "--good", "v5.17", "--bad", "v5.18"], "say FILE::SCENARIO"),
    (["scenarios/teardown.py::teardown3", "--good", "v4.5", "--bad", "v5.18"], "cannot run on v4.5"),
    (["scenarios/teardown.py::teardown3", "--good", "v5.17", "--bad", "v5.18", "-p", "users=3"], "no parameter"),
])
def test_bad_input_is_one_line_exit_2(args, words):
    res = run("bisect", *args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zonedev: error: ") and words in lines[0], lines


def test_default_ends_from_expect():
    from zonedev.rt.bisect import BisectError, default_ends
    from zonedev.rt.expect import parse_expect
    from zonedev.rt.scenario import Scenario

    def sc(expect):
        return Scenario(fn=lambda k: None, name="s", expect=parse_expect(expect), file="s.py", line=3)

    # the first change expect= declares; the safe side is good
    assert default_ends(sc({"v5.18..v6.0": "use_after_free", "v6.1..": "safe"}), None, None)[:2] == ("v6.1", "v6.0")
    assert default_ends(sc({"..v5.17": "safe", "v5.18..": "hang"}), None, None)[:2] == ("v5.17", "v5.18")
    # neither side safe: the side that lost a finding is good, else the older one
    two = ["page_free_while_referenced", "use_after_free"]
    assert default_ends(sc({"v5.0..v5.17": two, "v5.18..": "use_after_free"}), None, None)[:2] == ("v5.18", "v5.17")
    assert default_ends(sc({"v5.0..v5.17": "hang", "v5.18..": "use_after_free"}), None, None)[:2] == ("v5.17", "v5.18")
    # one end given: the nearest kernel expect= gives another verdict
    assert default_ends(sc({"v5.18..v6.0": "use_after_free", "v6.1..": "safe"}), None, "v5.18")[:2] == ("v6.1", "v5.18")
    with pytest.raises(BisectError, match=r"^s.py:3: scenario s: expect= gives every kernel the same verdict"):
        default_ends(sc({"all": "safe"}), None, None)
