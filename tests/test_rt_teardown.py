"""The v5.18 teardown use-after-free (fixed by 0dc45ca1ce18 in v6.1) on the real model."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.rt.engine import Runner
from zonedev.rt.replay import replay
from zonedev.rt.scenario import load_scenarios

TEARDOWN = Path(__file__).resolve().parent.parent / "scenarios" / "teardown.py"


@pytest.fixture(scope="module")
def sc():
    return load_scenarios(TEARDOWN)


def test_three_threads_find_the_v518_use_after_free(sc):
    res = zonedev.check(sc["teardown3"], "v5.18")
    uaf = [f for f in res.findings if f.kind == "use_after_free"]
    assert uaf and res.exhaustive
    f = uaf[0]
    assert f.preemptions == 0          # memunmap_pages alone, while both references are held
    assert f.thread == "memunmap"
    proto = zonedev.kernel("v5.18")
    trace = replay(Runner(sc["teardown3"], proto), f.schedule)
    assert any(g.signature == f.signature for g in trace.findings)
    assert "memunmap" in f.table and ">>" in f.table


def test_three_threads_are_clean_on_v61(sc):
    res = zonedev.check(sc["teardown3"], "v6.1")
    assert res.ok and res.exhaustive and res.executions > 1
    assert res.summary().split("  ")[2].startswith(f"no violation, {res.executions} executions")


def test_cli_verdicts_per_kernel():
    r = CliRunner().invoke(main, ["check", f"{TEARDOWN}::teardown3", "--kernel", "v5.18,v6.1"])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.startswith("teardown3")]
    assert "v5.18  FOUND" in lines[0] and "use_after_free" in lines[0]
    assert "v6.1  no violation" in lines[1]


@pytest.mark.parametrize("users", [1, 2, 3])
def test_family_stateful_agrees_with_unreduced_search(sc, users):
    for kern in ("v5.18", "v6.1"):
        st = zonedev.check(sc["teardown"], kern, params={"users": users}, minimize=False, tables=False)
        nosym = zonedev.check(sc["teardown"], kern, params={"users": users}, symmetry=False,
                              minimize=False, tables=False)
        kinds = lambda r: {f.kind for f in r.findings}
        assert kinds(st) == kinds(nosym)
        assert ("use_after_free" in kinds(st)) == (kern == "v5.18")
        if users == 1:
            naive = zonedev.check(sc["teardown"], kern, params={"users": users}, mode="naive",
                                  minimize=False, tables=False)
            assert kinds(naive) == kinds(st)


def test_leaving_out_the_fix_brings_the_bug_back():
    r = CliRunner().invoke(main, ["check", f"{TEARDOWN}::teardown3", "--kernel", "v6.1",
                                  "--without", "0dc45ca1ce18"])
    assert r.exit_code == 1
    assert r.output.startswith("teardown3  v6.1-0dc45ca1ce18  FOUND")
    # the replay command; a long one goes on over lines ending in " \\" (joined here)
    assert "--kernel v6.1 --without 0dc45ca1ce18 --schedule" in r.output.replace(" \\\n" + " " * 16, " ")


def test_memunmap_waiting_for_a_reference_nobody_drops_is_a_hang(sc):
    res = zonedev.check(sc["forgotten_put"], "v6.1")
    hangs = [f for f in res.findings if f.kind == "hang"]
    assert hangs and res.exhaustive
    assert "memunmap waits in wait_for_completion on private@0x100000.done" in hangs[0].message


def test_a_user_patch_file_changes_the_verdict(tmp_path):
    patch = tmp_path / "nowait.py"
    patch.write_text(
        "from zonedev import Patch\n"
        "PATCH = Patch(commit='feedface0001', title='memunmap_pages: no wait (planted)', version='v6.1')\n"
        "\n"
        "@PATCH.define\n"
        "def memunmap_pages(k, pgmap):\n"
        "    pgmap.ref.kill('percpu_ref_kill')\n"
        "    k.pageunmap_range(pgmap)\n")
    r = CliRunner().invoke(main, ["check", f"{TEARDOWN}::teardown3", "--kernel", "v6.1",
                                  "--patch", str(patch)])
    assert r.exit_code == 1, r.output
    assert "use_after_free" in r.output.splitlines()[0]
    bad = tmp_path / "broken.py"
    bad.write_text("from zonedev import Patch\nPATCH = Patch(commit='x')\n")
    r = CliRunner().invoke(main, ["check", f"{TEARDOWN}::teardown3", "--kernel", "v6.1", "--patch", str(bad)])
    assert r.exit_code == 2 and f"{bad}:2" in r.output and "Traceback" not in r.output
