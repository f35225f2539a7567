"""Output people can read: tables that fit 100 columns, the commit that changed each lifecycle
cell, a legend, violations in the kernel's words, and counterexample tables without model
internals (issue 13)."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from zonedev.cli import main


def run(*args: str, columns: int = 100):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)})


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_lifecycle_all_fits_100_columns_with_marks_and_legend():
    r = run("lifecycle", "--kernel", "all")
    assert r.exit_code == 0, r.output
    assert widest(r.output) <= 100
    lines = r.output.splitlines()
    # consecutive kernels with the same life share a row
    row = next(line for line in lines if line.startswith("v5.18..v6.0"))
    # the allocate cell changed from v5.17's 2/5 to 1/5 with 27674ef6c73f, marked with a letter
    cells = row.split()
    assert cells[2:4] == ["1/5", cells[3]] and len(cells[3]) == 1
    letter = cells[3]
    assert any(line.strip().startswith(f"{letter}  27674ef6c73f") for line in lines)
    # v6.1's allocation takes a pgmap reference: 0dc45ca1ce18
    assert any("0dc45ca1ce18" in line for line in lines)
    assert "5 = 1 + 4 pages" in r.output and "pgmap->ref" in r.output
    calls = r.output.replace("\n          ", " ")
    assert "zone_device_page_init (v6.1..newest)" in calls
    # a call that changed is marked too: folio_free from 3a5a06554566 (v6.19)
    m = re.search(r"put_page -> folio_free \(v6\.19\.\.newest\) (\w+)", calls)
    assert m and any(line.strip().startswith(f"{m.group(1)}  3a5a06554566") for line in lines)


def test_lifecycle_violation_in_the_kernels_words_exits_1():
    r = run("lifecycle", "--kernel", "all", "--type", "fsdax")
    assert r.exit_code == 1, r.output
    assert widest(r.output) <= 100
    text = " ".join(r.output.split())
    assert "fsdax_waiter_never_woken: missing wake_up_var(&page->_refcount)" in text
    assert "!1" in r.output and "!2" in r.output
    # one kernel, no violation: exit 0; with one: exit 1
    assert run("lifecycle", "--kernel", "v5.17", "--type", "fsdax").exit_code == 0
    one = run("lifecycle", "--kernel", "v5.18", "--type", "fsdax")
    assert one.exit_code == 1 and "fsdax_waiter_never_woken" in one.output


def test_lifecycle_narrow_and_json_unchanged():
    for cols in (60, 80, 120):
        r = run("lifecycle", "--kernel", "all", "--type", "p2pdma", columns=cols)
        assert widest(r.output) <= cols, cols
    r = run("lifecycle", "--kernel", "v5.18,v6.1", "--json")
    data = json.loads(r.output)
    assert [d["kernel"] for d in data] == ["v5.18", "v6.1"]
    for d in data:
        assert {"kernel", "type", "pgmap_type", "pfn", "steps"} <= set(d)
        for s in d["steps"]:
            assert {"phase", "op", "refcount", "pgmap_refs", "pgmap_ref_state", "callbacks", "violations"} <= set(s)
    assert [s["refcount"] for s in data[1]["steps"]] == [0, 1, 2, 1026, 1025, 1, 0, 0]


def test_single_kernel_marks_against_the_kernel_before():
    r = run("lifecycle", "--kernel", "v6.1")
    assert r.exit_code == 0
    assert "from v6.0" in r.output
    assert "ef233450898f" in r.output and "0dc45ca1ce18" in r.output
    assert "kernel call" in r.output and "zone_device_page_init" in r.output


# --- counterexamples -------------------------------------------------------------------------

NAMED = '''
import zonedev
from zonedev.sync import Atomic, Var


@zonedev.scenario(kernel=False)
def lost_update(k):
    """Two CPUs bump a counter with a plain read and write: one update is lost."""
    hits = Var(0, "stats.hits")
    done = Atomic(0, "done")

    def bump():
        v = hits.get()
        hits.set(v + 1)
        done.add_return(1)

    def lost():
        return None if hits.peek() == 2 else f"hits {hits.peek()}"

    return zonedev.Run({"cpu0": bump, "cpu1": (lambda: bump())},
                       finally_=[zonedev.Check(lost, "leak", "no lost update")])
'''


def test_counterexample_fits_one_table_per_schedule_kernel_names_only():
    spec = "scenarios/hmm_races.py::fault_vs_migrate"
    r = run("check", spec, "--kernel", "v5.18,v6.0")
    assert r.exit_code == 1, r.output
    lines = r.output.splitlines()
    # everything fits, the replay command too (continued with " \\" before an option)
    assert all(len(line) <= 100 for line in lines), [line for line in lines if len(line) > 100]
    replay = "\n".join(lines[lines.index(next(x for x in lines if x.startswith("    replay:"))):][:2])
    # (page_free's load of pgmap->ops is a step of its own since the lifetime check, issue 10)
    assert replay.endswith("-p migrator=fault --schedule '0*3.1*86.0*2'") and " \\\n" in replay
    import shlex
    assert shlex.split(replay.split("replay:", 1)[1].replace("\\\n", "")) == [
        "zonedev", "replay", spec, "--kernel", "v5.18", "-p", "migrator=fault", "--schedule", "0*3.1*86.0*2"]
    # two findings per kernel share one schedule: one table, printed once for both kernels
    assert sum(1 for line in lines if line.lstrip().startswith("step  CPU 0: cpu_fault")) == 1
    assert "(the same interleaving as finding 1 above)" in r.output
    assert "(the interleaving of finding 1 of fault_vs_migrate on v5.18 above)" in r.output
    assert len(lines) < 200                      # it printed 530 lines before (793 for three kernels)
    # kernel function names only; no model helpers, lambdas or changes to the same value
    for noise in ("<lambda>", "_dec:", "_inc:", "set_page_field", "None -> None", "static_branch_unlikely"):
        assert noise not in r.output, noise
    # the race as kernel people draw it: the refcount steps under the function that made them
    assert "folio_put" in r.output and "pfn 0x400007 _refcount 1 -> 0" in r.output
    assert ">> 89  dmirror_devmem_fault:" in r.output and "!! use_after_free" in r.output
    # a run of uneventful steps is one row naming its kernel functions
    assert any(line.strip().startswith("3-17") and "... 15 steps: do_user_addr_fault" in line for line in lines)


def test_counterexample_narrow_terminal_and_quiet():
    spec = "scenarios/hmm_races.py::fault_vs_migrate"
    r = run("check", spec, "--kernel", "v5.18", columns=72)
    assert all(len(line) <= 72 for line in r.output.splitlines())
    q = run("check", spec, "--kernel", "v5.18,v6.0", "--quiet")
    assert q.exit_code == 1
    out = q.output.splitlines()
    assert len(out) == 2 and out[0].startswith("fault_vs_migrate  v5.18  FOUND 2")
    assert out[1].startswith("fault_vs_migrate  v6.0  FOUND 2") and "exhaustive]" in out[1]
    ok = run("check", "scenarios/teardown.py::teardown3", "--kernel", "v6.1", "-q")
    assert ok.exit_code == 0 and len(ok.output.splitlines()) == 1 and "no violation" in ok.output


def test_named_sync_object_shown_by_its_name(tmp_path):
    f = tmp_path / "named.py"
    f.write_text(NAMED)
    r = run("check", f"{f}::lost_update")
    assert r.exit_code == 1, r.output
    assert "READ_ONCE(stats.hits)" in r.output and "WRITE_ONCE(stats.hits)" in r.output
    assert "<lambda>" not in r.output
    # the lambda thread's steps are named by the function it calls
    assert "bump: READ_ONCE(stats.hits)" in r.output
