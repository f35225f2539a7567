"""``zonedev matrix``: the grid, its mismatches and errors, JSON, bad input, the pool.

Every scenario here is a tiny file in ``tmp_path``: the teardown race (two puts against
``memunmap_pages``) on v5.18, where 27674ef6c73f's missing pgmap reference makes it a
use-after-free, and v6.1, where 0dc45ca1ce18 makes it safe.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.rt.matrix import MatrixError, collect

ROOT = Path(__file__).resolve().parent.parent

TEARDOWN = '''
import zonedev
from zonedev.linux.drivers.example import ExampleDriver


def _race(k):
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)
    return zonedev.Run({"gup_user": lambda: k.put_page(page), "migration": lambda: k.put_page(page),
                        "memunmap": drv.remove}, opaque=[drv])
'''

RIGHT = TEARDOWN + '''

@zonedev.scenario(expect={"v5.18": "use_after_free", "v6.1": "safe"}, mode="stateful",
                  refs=["F8", "27674ef6c73f", "0dc45ca1ce18"])
def teardown3(k):
    """Two puts race memunmap_pages: use-after-free on v5.18, safe from v6.1 (0dc45ca1ce18)."""
    return _race(k)


@zonedev.scenario(kernels=["v6.1"])
def no_expectation(k):
    """Not a matrix row: it declares no expect=."""
    return _race(k)
'''

WRONG = TEARDOWN + '''

@zonedev.scenario(expect={"v6.1": "safe", "v5.18": "safe"}, mode="stateful")
def wrong(k):
    """The same race, deliberately expected safe on v5.18."""
    return _race(k)
'''

BOOM = '''
import zonedev


@zonedev.scenario(expect={"v6.1": "safe"})
def boom(k):
    """The driver's probe fails while the scenario is set up."""
    raise RuntimeError("probe failed: no BAR")
'''

NOPUT = '''
from zonedev import Patch

PATCH = Patch(commit="0000000noput", title="mm: make put_page a no-op (what if)", version="v6.1")


@PATCH.define
def put_page(k, page):
    """put_page that never drops the reference: memunmap_pages waits for it forever."""
'''


@pytest.fixture
def lib(tmp_path, monkeypatch):
    """A scenario library in tmp_path (with a patches/ dir and a helper module to skip)."""
    d = tmp_path / "scenarios"
    (d / "patches").mkdir(parents=True)
    (d / "teardown.py").write_text(RIGHT)
    (d / "helpers.py").write_text("X = 1\n")
    (d / "patches" / "noput.py").write_text(NOPUT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, ["matrix", *args])


def test_default_library_grid_matches_and_exits_0(lib):
    r = run("--jobs", "1")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["scenario", "v5.18", "v6.1"]
    assert lines[1].split() == ["teardown3", "uaf", "safe"]
    assert "  uaf    use_after_free: " in r.stdout
    assert re.search(r"^matrix: 2 cells: 2 match, 0 differ; all exhaustive; [\d.]+s on 1 process$",
                     r.stdout, re.M), r.stdout
    assert "mismatches" not in r.stdout and r.stderr == ""      # no progress when not a terminal


def test_library_found_from_a_subdirectory_and_missing_library_is_bad_input(lib, tmp_path, monkeypatch):
    rows = collect([], cwd=tmp_path / "scenarios" / "patches")
    assert [r.name for r in rows] == ["teardown3"]
    assert rows[0].spec == str(tmp_path / "scenarios" / "teardown.py") + "::teardown3"
    with pytest.raises(MatrixError, match=r"^scenarios/: no scenario library in / or any parent"):
        collect([], cwd=Path("/"))
    monkeypatch.chdir("/")
    r = run()
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("zonedev: error: scenarios/: no scenario library") and r.stderr.count("\n") == 1


def test_wrong_expectation_is_marked_listed_with_a_replay_that_runs(lib):
    Path("wrong.py").write_text(WRONG)
    r = run("wrong.py", "--jobs", "1")
    assert r.exit_code == 1, r.output
    grid = r.stdout.splitlines()
    assert grid[1].split() == ["wrong", "uaf!", "safe"]
    assert "!: differs from the expected verdict" in " ".join(r.stdout.split())
    assert "  wrong.py::wrong on v5.18: expected safe, got use_after_free" in r.stdout
    replay = next(line for line in grid if line.strip().startswith("replay: ")).split("replay: ", 1)[1]
    assert replay.startswith("zonedev replay wrong.py::wrong --kernel v5.18 --schedule '")
    assert "matrix: 2 cells: 1 match, 1 differs;" in r.stdout
    # the printed command runs as printed (through a shell: the schedule's '*' is quoted)
    cmd = shlex.quote(sys.executable) + " -m " + replay
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
    assert p.returncode == 1, p.stderr
    assert ">> use_after_free" in p.stdout


def test_scenario_raising_is_a_cell_error_not_a_crash(lib):
    Path("boom.py").write_text(BOOM)
    r = run("boom.py", "scenarios/teardown.py", "--jobs", "2")
    assert r.exit_code == 1, r.output
    assert "ERR!" in r.stdout
    line = next(x for x in r.stdout.splitlines() if "boom.py::boom on v6.1: " in x)
    assert re.search(r"boom\.py:\d+: scenario boom: RuntimeError: probe failed: no BAR", line), line
    assert "teardown3" in r.stdout and "3 cells: 2 match, 0 differ, 1 error" in r.stdout


def test_jobs_1_and_2_give_the_same_cells(lib):
    Path("wrong.py").write_text(WRONG)
    one = zonedev.matrix(["scenarios", "wrong.py"], jobs=1)
    two = zonedev.matrix(["scenarios", "wrong.py"], jobs=2)
    strip = [{k: v for k, v in c.items() if k != "seconds"} for c in one.cells]
    assert strip == [{k: v for k, v in c.items() if k != "seconds"} for c in two.cells]
    assert len(one.cells) == 4 and two.jobs == 2 and one.jobs == 1
    cx = one.cell("scenarios/teardown.py::teardown3", "v5.18")["counterexample"]
    assert cx["threads"] == ["gup_user", "migration", "memunmap"]
    fail = cx["steps"][cx["failing_step"]]
    assert fail["findings"] == ["use_after_free"] and cx["kind"] == "use_after_free"
    assert any(ev["function"] == "__remove_pages" and ev["pfn"] == 0x100000 for ev in fail["events"])
    assert cx["reproduced"]


def _documented(section: str) -> set[str]:
    """The fields docs/json.md documents under ``### section``."""
    text = (ROOT / "docs" / "json.md").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n##", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", body, re.M))


def test_json_has_exactly_the_documented_fields(lib):
    Path("wrong.py").write_text(WRONG)
    r = run("--json", "--jobs", "1", "scenarios", "wrong.py")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert set(doc) == _documented("Document") and doc["schema"] == 1
    assert doc["kernels"] == ["v5.18", "v6.1"]
    for row in doc["scenarios"]:
        assert set(row) == _documented("scenario")
    for cell in doc["cells"]:
        assert set(cell) == _documented("cell")
        assert cell["verdict"] == "safe" or cell["verdict"] == sorted(cell["verdict"])
    assert set(doc["summary"]) == _documented("summary")
    found = [c for c in doc["cells"] if c["counterexample"]]
    assert len(found) == 2
    cx = found[0]["counterexample"]
    assert set(cx) == _documented("counterexample")
    for st in cx["steps"]:
        assert set(st) == _documented("step")
        for ev in st["events"]:
            assert set(ev) == _documented("event")
    bad = [c for c in doc["cells"] if not c["match"]]
    assert [(c["scenario"], c["kernel"], c["expected"], c["verdict"]) for c in bad] == \
        [("wrong.py::wrong", "v5.18", "safe", ["use_after_free"])]
    assert doc["summary"]["mismatches"] == 1 and doc["summary"]["matches"] == 3


def test_patch_changes_cells_and_the_summary_says_how_many(lib):
    r = run("--patch", "scenarios/patches/noput.py", "--jobs", "1", "-q")
    assert r.exit_code == 1, r.output
    assert "scenarios/teardown.py::teardown3 on v6.1: expected safe, got hang" in r.stdout
    assert "replay: zonedev replay scenarios/teardown.py::teardown3 --kernel v6.1 " \
           "--patch scenarios/patches/noput.py --schedule " in r.stdout
    assert "with patch scenarios/patches/noput.py: 1 cell differs from the series' expectations" in r.stdout
    w = run("--without", "0dc45ca1ce18", "--kernel", "v6.1", "--jobs", "1", "-q")
    assert "expected safe, got use_after_free" in w.stdout and w.exit_code == 1
    assert "with without 0dc45ca1ce18" not in w.stdout and "without 0dc45ca1ce18: 1 cell differs" in w.stdout


def test_kernel_versions_as_written_and_folding(lib, monkeypatch):
    r = run("--kernel", "5.18.3,6.1.0-56-amd64", "--kernel", "6.12", "--jobs", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].split() == ["scenario", "v5.18", "v6.1", "v6.2"]
    assert r.stdout.splitlines()[1].split() == ["teardown3", "uaf", "safe", "-"]
    assert r.stderr.count("zonedev: 6.12 -> modelled as v6.2") == 1     # the mapping, said once
    monkeypatch.setenv("COLUMNS", "20")
    r = run("--jobs", "1")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["scenario", "v5.18"] and lines[1].split() == ["teardown3", "uaf"]
    assert lines[2] == "" and lines[3].split() == ["scenario", "v6.1"]
    assert lines[4].split() == ["teardown3", "safe"]


@pytest.fixture
def default_sigint():
    """Python's default SIGINT handler, however this process was started: `pytest &` in a
    non-interactive shell starts it with SIGINT ignored, Python then installs no handler, and
    matrix() rightly leaves an ignored Ctrl-C ignored (the test failed exactly then)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_keeps_the_cells_done(lib, default_sigint):
    """A real SIGINT to this process after the first cell: the run stops, keeps that cell, and
    a later run in the same process is not stopped by it."""
    Path("wrong.py").write_text(WRONG)
    seen = []

    def ctrl_c_after_one(done, total, cell, running):
        if cell is not None:
            seen.append(cell)
            if done == 1:
                os.kill(os.getpid(), signal.SIGINT)

    for jobs in (1, 2):
        seen.clear()
        res = zonedev.matrix(["scenarios", "wrong.py"], jobs=jobs, progress=ctrl_c_after_one)
        assert res.interrupted and res.planned == 4 and len(res.cells) == 1 == len(seen), jobs
        assert res.cells[0] == seen[0] and not res.ok and res.summary()["interrupted"]
    again = zonedev.matrix(["scenarios"], jobs=1)
    assert not again.interrupted and len(again.cells) == 2 and again.ok


def test_ctrl_c_on_the_command_line_prints_what_is_done_and_exits_130(lib):
    Path("wrong.py").write_text(WRONG)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # stop after the first cell: the progress hook is the test's, the handler the command's
    code = ("import os, signal, zonedev.rt.matrix as m\n"
            "orig = m.matrix\n"
            "def first_then_ctrl_c(*a, **kw):\n"
            "    kw['progress'] = lambda d, t, c, r: c is not None and os.kill(os.getpid(), signal.SIGINT)\n"
            "    return orig(*a, **kw)\n"
            "m.matrix = first_then_ctrl_c\n"
            "from zonedev.cli import main\n"
            "main(['matrix', 'scenarios', 'wrong.py', '--jobs', '1'], prog_name='zonedev')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 130, p.stderr
    assert "interrupted: 1 of 4 cells run" in p.stdout and "?: not run (interrupted)" in " ".join(p.stdout.split())


@pytest.mark.parametrize("args,where", [
    (["nosuch.py"], "nosuch.py:0: no such scenario file or directory"),
    (["scenarios/teardown.py::nosuch"], "scenarios/teardown.py:1: no scenario 'nosuch'"),
    (["scenarios/teardown.py::no_expectation"], "scenario no_expectation declares no expect="),
    (["scenarios/helpers.py"], "scenarios/helpers.py:1: defines no scenario"),
    (["--kernel", "v6.x"], "--kernel: "),
    (["--kernel", "9999"], "--kernel: "),
    (["--jobs", "0"], "--jobs: 0: "),
    (["--jobs", "two"], "--jobs: two: "),
    (["--patch", "broken.py"], "broken.py:4: "),
    (["--patch", "missing.py"], "missing.py: no such file"),
    (["--without", "deadbeef00"], "--without: "),
    (["badexpect.py"], "badexpect.py:4: scenario s: expect names an unknown kernel"),
    (["badkind.py"], "badkind.py:4: scenario s: expected verdict names an unknown finding kind"),
    (["--html", "nodir/m.html"], "--html: nodir: no such directory"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(lib, args, where):
    Path("broken.py").write_text("from zonedev import Patch\n\n\nPATCH = Patch(commit=1, title=)\n")
    head = "import zonedev\n\n\n"
    Path("badexpect.py").write_text(head + '@zonedev.scenario(expect={"v6.1": "safe", "v9.9": "hang"})\n'
                                    "def s(k):\n    return zonedev.Run([])\n")
    Path("badkind.py").write_text(head + '@zonedev.scenario(expect={"v6.1": "use_after_fre"})\n'
                                  "def s(k):\n    return zonedev.Run([])\n")
    r = run(*args, "--html", "m.html") if "--html" not in args else run(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    err = [line for line in r.stderr.splitlines() if not line.startswith("zonedev: ") or "error" in line]
    assert len(err) == 1 and err[0].startswith("zonedev: error: ") and where in err[0], r.stderr
    assert not Path("m.html").exists() and not list(Path(".").glob(".m.html*"))


def test_bounded_cells_say_so_with_their_bound(lib):
    Path("bounded.py").write_text(TEARDOWN + '''

@zonedev.scenario(expect={"v5.18": "use_after_free", "v6.1": "safe"}, bound={"preemptions": 0})
def bounded(k):
    """The race with no preemption at all: still found on v5.18 (memunmap first, then the puts)."""
    return _race(k)
''')
    r = run("bounded.py", "--jobs", "1", "--json")
    cells = json.loads(r.stdout)["cells"]
    assert r.exit_code == 0, r.output
    assert [(c["exhaustive"], c["bound"], c["mode"]) for c in cells] == [(False, {"preemptions": 0}, "bounded(0)")] * 2
    r = run("bounded.py", "--jobs", "1", "-q")
    assert "matrix: 2 cells: 2 match, 0 differ; 2 not exhaustive: bounded v5.18,v6.1 (preemptions=0);" in r.stdout
