"""Bad input gets one line ``zonedev: error: WHERE: reason`` on stderr and exit 2, whatever
command it reaches; user code never chooses the exit status (issue 12)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main

HERE = Path(__file__).resolve().parent
PLANTED = str(HERE / "rt_planted.py")
ONE_LINE = re.compile(r"^zonedev: error: \S.*: \S.*$")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def bad(r, where: str):
    """Exit 2, stdout empty, stderr exactly one line naming ``where``."""
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and ONE_LINE.match(lines[0]), r.stderr
    assert f"zonedev: error: {where}" in lines[0], lines[0]
    assert "Traceback" not in r.output
    return lines[0]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("args, where", [
    (["check", PLANTED + "::wakeup", "--executions", "0"], "--executions"),
    (["check", PLANTED + "::wakeup", "--time", "-1"], "--time"),
    (["check", PLANTED + "::wakeup", "--time", "nan"], "--time"),
    (["check", PLANTED + "::wakeup", "--preemptions", "-1"], "--preemptions"),
    (["check", PLANTED + "::wakeup", "--memory", "lots"], "--memory"),
    (["check", PLANTED + "::wakeup", "--bogus"], "--bogus"),
    (["check", PLANTED + "::wakeup", "--kernel", "v9.bogus"], "--kernel"),
    (["check", PLANTED + "::wakeup", "--without", "0dc45ca1ce18XYZ"], "--without"),
    (["check", PLANTED, "-p", "bogus=1"], "-p bogus"),
    (["check", PLANTED + "::dec_and_test", "-p", "users=nan"], "-p users=nan"),
    (["check", PLANTED + "::dec_and_test", "-p", "users"], "-p users"),
    (["check"], "FILE[::SCENARIO]"),
    (["bogus"], "bogus"),
    (["replay", PLANTED + "::wakeup", "--schedule", "0*100000000000"], "--schedule"),
    (["replay", PLANTED + "::wakeup", "--schedule", "0.x"], "--schedule"),
    (["replay", PLANTED + "::wakeup", "--schedule", "5"], "--schedule"),
    (["replay", PLANTED + "::wakeup", "--kernel", "all", "--schedule", "0"], "--kernel"),
    (["replay", PLANTED, "--schedule", "0"], PLANTED + ":0"),
    (["lifecycle", "--without", "0dc45ca1ce18XYZ"], "--without"),
    (["lifecycle", "--type", "bogus"], "--type"),
    (["lifecycle", "--kernel", "bogus"], "--kernel"),
    (["patches", "--kernel", "bogus"], "--kernel"),
    (["selftest", "hmm", "-t", "bogus"], "--test"),
    (["selftest", "hmm", "--npages", "2"], "--npages"),
])
def test_bad_options_one_line(args, where):
    bad(run(*args), where)


def test_json_error_object_on_stdout():
    r = run("check", PLANTED + "::wakeup", "--executions", "0", "--json")
    assert r.exit_code == 2
    err = json.loads(r.stdout)
    assert err["status"] == 2 and err["where"] == "--executions"
    assert r.stderr.startswith("zonedev: error: --executions:")


def test_kernel_free_scenarios_still_check_kernel_options():
    bad(run("check", PLANTED + "::wakeup", "--kernel", "v1.0.bogus"), "--kernel")
    bad(run("check", PLANTED + "::wakeup", "--without", "deadbeef00"), "--without")


SCEN = """import sys, zonedev
from greenlet import GreenletExit

class Custom(BaseException):
    pass

def _raiser(exc):
    def t():
        raise exc
    return t

@zonedev.scenario(kernel=False)
def run_empty(k):
    return zonedev.Run({})

@zonedev.scenario(kernel=False)
def int_names(k):
    return zonedev.Run({1: lambda: None})

@zonedev.scenario(kernel=False)
def state_not_callable(k):
    return zonedev.Run({"a": lambda: None}, state=5)

@zonedev.scenario(kernel=False)
def setup_exit(k):
    raise SystemExit

@zonedev.scenario(kernel=False)
def setup_kbi(k):
    raise KeyboardInterrupt

@zonedev.scenario(kernel=False, params={"exc": "exit"})
def thread_raises(k, exc):
    e = {"exit": SystemExit(7), "bare": SystemExit, "kbi": KeyboardInterrupt, "genexit": GeneratorExit,
         "greenletexit": GreenletExit, "custom": Custom("mine")}[exc]
    return zonedev.Run({"a": _raiser(e), "b": lambda: None})

@zonedev.scenario(kernel=False, mode="stateful")
def state_raises(k):
    def boom():
        raise SystemExit(3)
    return zonedev.Run({"a": lambda: None}, state=boom)

@zonedev.scenario(kernel=False)
def invariant_exits(k):
    from zonedev.sync import Var
    v = Var(0, "v")
    def inv():
        raise SystemExit(5)
    return zonedev.Run({"a": lambda: v.set(1, "w")}, invariants=[inv])
"""


@pytest.mark.parametrize("name, line", [
    ("run_empty", 14), ("int_names", 18), ("state_not_callable", 22), ("setup_exit", 26), ("setup_kbi", 30),
])
def test_broken_scenarios_are_bad_input_with_file_and_line(tmp_path, name, line):
    f = write(tmp_path, "scen.py", SCEN)
    msg = bad(run("check", f"{f}::{name}"), f"{f}:{line}: scenario {name}")
    assert "Traceback" not in msg


@pytest.mark.parametrize("exc, shown", [("exit", "SystemExit: 7"), ("bare", "SystemExit"),
                                        ("kbi", "KeyboardInterrupt"), ("genexit", "GeneratorExit"),
                                        ("greenletexit", "GreenletExit"), ("custom", "Custom: mine")])
def test_exceptions_from_threads_are_findings_not_exit_codes(tmp_path, exc, shown):
    f = write(tmp_path, "scen.py", SCEN)
    r = run("check", f"{f}::thread_raises", "-p", f"exc={exc}", "--json")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    kinds = {(x["kind"], x["message"]) for x in data[0]["findings"]}
    assert ("exception", shown) in kinds


def test_state_and_invariant_raising_base_exceptions(tmp_path):
    f = write(tmp_path, "scen.py", SCEN)
    bad(run("check", f"{f}::state_raises"), f"{f}:")
    r = run("check", f"{f}::invariant_exits", "--json")
    assert r.exit_code == 1
    assert "inv raised SystemExit: 5" in json.loads(r.stdout)[0]["findings"][0]["message"]


def test_bad_mode_refused_at_load(tmp_path):
    f = write(tmp_path, "m.py", "import zonedev\n\n@zonedev.scenario(kernel=False, mode='bogus')\n"
                                "def s(k):\n    return zonedev.Run({'a': lambda: None})\n")
    bad(run("check", f), f"{f}:3: scenario s: mode 'bogus'")


def test_scenario_file_exiting_at_import(tmp_path):
    f = write(tmp_path, "x.py", "import sys\nsys.exit(7)\n")
    bad(run("check", f), f"{f}:2: SystemExit: 7")
    g = write(tmp_path, "y.py", "raise SystemExit\n")
    bad(run("check", g), f"{g}:1: SystemExit")


PATCHES = {
    "commit_int.py": ("from zonedev.patches import Patch\n\nPATCH = Patch(commit=5, title='x', version='v6.1')\n",
                      3, "commit must be a non-empty string"),
    "functions5.py": ("from zonedev.patches import Patch\nPATCH = Patch(commit='abcdef0123', title='x', "
                      "version='v6.1', functions=5)\n", 2, "functions must be a dict"),
    "badversion.py": ("from zonedev.patches import Patch\nPATCH = Patch(commit='abcdef0123', title='x', "
                      "version='soon')\n", 2, "is not a kernel version"),
    "exits.py": ("import sys\nsys.exit(7)\n", 2, "SystemExit: 7"),
    "nopatch.py": ("X = 1\n", 1, "defines no PATCH"),
}


@pytest.mark.parametrize("name", sorted(PATCHES))
@pytest.mark.parametrize("cmd", ["check", "lifecycle", "replay"])
def test_bad_patch_files(tmp_path, name, cmd):
    text, line, reason = PATCHES[name]
    f = write(tmp_path, name, text)
    args = {"check": ["check", PLANTED + "::wakeup"], "lifecycle": ["lifecycle"],
            "replay": ["replay", PLANTED + "::wakeup", "--schedule", "0"]}[cmd]
    msg = bad(run(*args, "--patch", f), f"{f}:{line}:")
    assert reason in msg


def test_patch_file_not_py_and_path_too_long(tmp_path):
    f = write(tmp_path, "p.txt", "PATCH = 5\n")
    bad(run("lifecycle", "--patch", f), f"{f}: a patch file is a Python file")
    bad(run("lifecycle", "--patch", "a" * 5000 + ".py"), "a" * 50)
    bad(run("check", "b" * 5000 + ".py"), "b" * 50)


def test_patch_function_raising_in_lifecycle_names_its_line(tmp_path):
    f = write(tmp_path, "raises.py", "from zonedev.patches import Patch\nPATCH = Patch(commit='abcdef0123', "
              "title='x', version='v6.1')\n\n@PATCH.define\ndef put_page(k, page):\n    raise RuntimeError('boom')\n")
    msg = bad(run("lifecycle", "--patch", f), f"{f}:6:")
    assert "RuntimeError: boom" in msg


def test_lifecycle_on_oldest_kernel_without_a_patch_prints_its_table():
    r = run("lifecycle", "--kernel", "v4.14", "--without", "5042db43cc26")
    assert r.exit_code == 0, r.output
    assert "allocate" in r.stdout and "get_page, lock_page" in r.stdout


def test_process_exit_status_is_never_chosen_by_user_code(tmp_path):
    """In a real process (not CliRunner): sys.exit(7) in a thread is a finding (exit 1)."""
    f = write(tmp_path, "scen.py", SCEN)
    p = subprocess.run([sys.executable, "-m", "zonedev", "check", f"{f}::thread_raises", "-p", "exc=exit"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "SystemExit: 7" in p.stdout and "Traceback" not in p.stderr


def test_json_holds_parameters_json_cannot(tmp_path):
    f = write(tmp_path, "p.py", "import zonedev\n\n@zonedev.scenario(kernel=False, params={'x': float('nan'), "
                                "'o': object()})\ndef s(k, x, o):\n    return zonedev.Run({'a': lambda: None})\n")
    r = run("check", f, "--json")
    assert r.exit_code == 0, r.output
    params = json.loads(r.stdout)[0]["params"]
    assert params["x"] == "nan" and params["o"].startswith("<object object")
