"""Output people can read: tables that fit 100 columns, the commit that changed each lifecycle
cell, a legend, violations in the kernel's words, and counterexample tables without model
internals (issue 13)."""

from __future__ import annotations

import json

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
    assert "zone_device_page_init (v6.1..newest)" in r.output.replace("\n          ", " ")


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
