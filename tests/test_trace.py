"""Real kernel traces in and out: the samples agree with the model of the kernel they came from,
an edited copy with a forbidden transition is reported at its line, exports read back."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main
from zonedev.trace.formats import TraceError, parse_lines

import os

# shared/ lies beside the checkout (CI, the workplace); a worktree one level deeper looks higher up
_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = next((d for d in [Path(os.environ.get("ZONEDEV_SHARED", "/nonexistent")) / "reference" / "samples",
                            *(p / "shared" / "reference" / "samples" for p in _ROOT.parents)] if d.is_dir()),
               _ROOT.parent / "shared" / "reference" / "samples")
CONSOLE = SAMPLES / "guest-6.1.0-56-zdsnap-console.log"
needs_samples = pytest.mark.skipif(not CONSOLE.is_file(), reason="shared/reference/samples is not beside this checkout")


def run(*args):
    return CliRunner().invoke(main, ["trace", *args])


@needs_samples
def test_console_log_agrees_with_the_kernel_it_came_from():
    r = run("check", str(CONSOLE), "--json")         # kernel from its 'Linux version 6.1.0-56-amd64' line
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["kernel"] == "v6.1" and out["ok"] and out["pages"] == 5
    assert run("check", str(CONSOLE), "--kernel", "6.12").exit_code == 0      # 6.12 -> v6.2: still 1-based


@needs_samples
def test_v615_rules_disagree_idle_fsdax_rests_at_0():
    r = run("check", str(CONSOLE), "--kernel", "v6.15")
    assert r.exit_code == 1
    assert "65536 fsdax pages still referenced at the last snapshot (65536 at 1); on v6.15 an idle fsdax page rests at 0" in r.output
    assert ":459: trace_from_other_kernel: __put_devmap_managed_page_refs does not exist on v6.15" in r.output


@needs_samples
def test_edited_copy_reports_the_forbidden_transition_at_its_line(tmp_path):
    lines = CONSOLE.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if "zdput:" in line)
    edited = lines[:i + 1] + [
        "         daxhold-118     [001] .....    10.990000: page_ref_mod_and_test: pfn=0x40409 flags=reserved "
        "count=0 mapcount=0 mapping=0000000000000000 mt=0 val=-1 ret=1"] + lines[i + 1:]
    f = tmp_path / "edited.log"
    f.write_text("\n".join(edited) + "\n")
    r = run("check", str(f))
    assert r.exit_code == 1
    assert f"{f}:{i + 2}: put_on_free_page: pfn 0x40409: fsdax page 1 -> 0, below the refcount it rests at on v6.1 (1)" in r.output
    # the same line on v6.15, where fsdax pages are 0-based, is not a put on an idle page
    assert "put_on_free_page" not in run("check", str(f), "--kernel", "v6.15").output


@needs_samples
def test_page_ref_examples_parse_and_other_pages_are_left_alone():
    r = run("check", str(SAMPLES / "page_ref_examples.txt"), "--kernel", "6.1")
    assert r.exit_code == 0 and "4 other pages (no pgmap range known) left alone" in r.output


def test_malformed_lines_are_file_line_errors(tmp_path):
    f = tmp_path / "bad.trace"
    f.write_text("# comment\n  cat-1 [000] ..... 1.0: page_ref_mod: pfn=0xZZ count=1 val=1\n")
    r = run("check", str(f), "--kernel", "v6.1")
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == f"zonedev: error: {f}:2: '0xZZ' is not a number"
    with pytest.raises(TraceError):
        list(parse_lines(["x-1 [000] 1.0: page_ref_mod: flags=none"], "t"))


def test_a_device_private_leak_names_the_last_holder(tmp_path):
    f = tmp_path / "leak.trace"
    f.write_text("# zonedev: pgmap type=1 (MEMORY_DEVICE_PRIVATE) start_pfn=0x100000 nr=1 kernel=v6.1\n"
                 "  drv-100 [000] ..... 1.000001: page_ref_set: pfn=0x100000 flags=none count=1 mapcount=0 mapping=0 mt=0 val=1\n"
                 "  gup-101 [001] ..... 1.000002: page_ref_mod: pfn=0x100000 flags=none count=2 mapcount=0 mapping=0 mt=0 val=1\n"
                 "  drv-100 [000] ..... 1.000003: page_ref_mod_and_test: pfn=0x100000 flags=none count=1 mapcount=0 mapping=0 mt=0 val=-1 ret=0\n")
    r = run("check", str(f), "--kernel", "v6.1")
    assert r.exit_code == 1
    assert "leak: pfn 0x100000 (private) at refcount 1 at the end, rests at 0; last raised at line 2 (drv-100), line 3 (gup-101)" in r.output


@pytest.mark.parametrize("kernel,kind", [("v4.14", "generic"), ("v5.18", "private"), ("v6.1", "private"),
                                         ("v6.1", "fsdax"), ("v6.2", "p2pdma"), ("v6.15", "fsdax")])
def test_exported_lifecycles_read_back_clean(tmp_path, kernel, kind):
    out = tmp_path / "life.trace"
    r = run("export", "--lifecycle", kind, "--kernel", kernel, "-o", str(out))
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "page_ref_mod_and_test: pfn=0x100000" in text and "# zonedev: pgmap type=" in text
    r = run("check", str(out), "--kernel", kernel)
    assert r.exit_code == 0, r.output


def test_export_of_a_counterexample():
    root = Path(__file__).resolve().parents[1]
    r = run("export", f"{root}/scenarios/teardown.py::teardown3", "--kernel", "v5.18")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("# zonedev trace export: ") and "page_ref_mod: pfn=0x100000" in r.output
    assert run("export", "--kernel", "v6.1").exit_code == 2
