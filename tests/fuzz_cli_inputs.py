"""Generated inputs for the CLI fuzz test (tests/test_fuzz_cli.py) and its longer run
(benchmarks/fuzz.py): command lines over every subcommand, and malformed scenario and patch
files, as a new user might write them.  Not collected by pytest (no test_ prefix).

:func:`invocation` is a Hypothesis strategy drawing ``(files, argv)``: ``files`` maps names to
texts to write into a fresh directory, ``argv`` the arguments (``{dir}`` stands for it).
:func:`judge` runs one invocation in-process and returns what is wrong with the outcome (empty
when the promises hold: no traceback, exit status in {0, 1, 2, 130}, exit 2 with the one-line
form, valid JSON under ``--json``, no run past its budget).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import threading
import _thread
import time
from pathlib import Path

from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLANTED = str(HERE / "rt_planted.py")
BUDGET = str(HERE / "budget_scenarios.py")

#: the time budget every generated check/replay gets (seconds), and how long past it is a hang
TIME = 0.5
STEP = 0.5
HANG = 20.0

ONE_LINE = re.compile(r"^zonedev: error: \S.*: \S.*$")
NOTE = re.compile(r"^zonedev: (?!error:)\S.*$")

# -- values a user might type ------------------------------------------------------------------
weird_text = st.sampled_from([
    "", " ", "-", "--", "x", "nan", "inf", "-inf", "-1", "0", "1", "1e309", "99999999999999999999",
    "0x10", "1.5", "true", "all", "newest", "v6.1", "6.12", "6.1.0-56-amd64", "7.0-rc4", "v4.5",
    "v9.9", "v6.1,v5.18", "v6.1,,", "ünïcødé", "a" * 300, "a" * 5000 + ".py", "'", '"', "$(id)",
    "0dc45ca1ce18", "0dc45ca1ce18XYZ", "0dc45ca", "27674ef6c73f", "v4.5-base", "\t", "%s", "{}",
    "0*3.1.2", "0*100000000000", "0.1.0.1", "9", "0*0", "1*2.x", "", "0,1,0", "a\0b", "\x0c", " :x",
]) | st.text(max_size=12)
number = st.sampled_from(["0", "1", "2", "3", "7", "-1", "-5", "nan", "inf", "0.001", "1e9", "abc", ""])
kernel = st.sampled_from(["v6.1", "v5.18", "newest", "all", "6.12", "v4.14", "bogus", "v6.1,v5.18",
                          "", "4.0", "v6.15"]) | weird_text

SCENARIO_SPECS = [PLANTED, f"{PLANTED}::dec_and_test", f"{PLANTED}::wakeup", f"{PLANTED}::crash",
                  f"{PLANTED}::nosuch", f"{ROOT}/scenarios/teardown.py::teardown3", f"{ROOT}/scenarios/teardown.py::teardown",
                  f"{BUDGET}::spin", f"{BUDGET}::scribblers", "nosuch.py", "{dir}/gen.py",
                  "{dir}/gen.py::s", "{dir}/gen.py::nosuch", "{dir}", f"{ROOT}/README.md", "{dir}/patch.py"]

# -- generated scenario files ------------------------------------------------------------------
EXCEPTIONS = ["SystemExit(7)", "SystemExit", "SystemExit(0)", "KeyboardInterrupt", "GeneratorExit",
              "GreenletExit", "Custom('mine')", "ValueError('v')", "AssertionError", "RecursionError",
              "MemoryError", "StopIteration", "Exception"]
threads_arg = st.sampled_from([
    '{"a": body, "b": other}', '{"a": body, "b": other}', '{"a": body, "b": other}', '[body, other, other]', '{}', '[]', '{1: body}', '{"": body}', '[body, other]', '5', 'None',
    '"ab"', '{"a": 5}', '{"a": body}', '(body for _ in range(2))', '{"a": body, "b": body, "c": other}',
])
state_arg = st.sampled_from(["None", "None", "None", "5", "boom", "lambda: 1", "lambda: object()", "body"])
checks_arg = st.sampled_from(["()", "()", "()", "()", "[boom]", "[5]", "[lambda: False]", "[lambda: 'bad']", "5"])
deco_arg = st.sampled_from([
    "kernel=False", "kernel=False", "kernel=False", "kernel=False", "kernel=False, mode='random'", "kernel=False, mode='bogus'", "kernel=False, mode='stateful'", "kernel=False, mode='pct'",
    "kernel=False, params=5", "kernel=False, params={'n': 2}", "kernel=False, kernels='v6.1'",
    "kernel=False, bound={'x': 1}", "kernels=['v6.1']", "expect={'v6.1': 'safe'}", "expect={'v6.1': 'nokind'}",
    "expect=5", "kernel=False, refs='F1'", "name=5, kernel=False", "kernel=False, bound=3",
])
body_kind = st.sampled_from(["ok", "raise", "spin", "sync", "sync_raise", "deep"])
module_tail = st.sampled_from(["", "", "", "", "", "import sys\nsys.exit(3)\n", "raise SystemExit\n", "raise KeyboardInterrupt\n",
                               "def broken(:\n", "x = undefined_name\n", "s = 5\n"])
returns = st.sampled_from(["zonedev.Run(threads, invariants=inv, finally_=fin, state=state)"] * 5 + ["None", "5",
                           "zonedev.Run(threads)", "raise_it()"])


@st.composite
def scenario_file(draw) -> str:
    exc = draw(st.sampled_from(EXCEPTIONS))
    kind = draw(body_kind)
    bodies = {
        "ok": "return None",
        "raise": f"raise {exc}",
        "spin": "while True:\n    pass",
        "sync": "v.set(1, 'W')\nv.get('R')",
        "sync_raise": f"v.set(1, 'W')\nraise {exc}",
        "deep": "def f(n):\n    return f(n + 1)\nf(0)",
    }
    params = "n=2" if "params={'n': 2}" in (deco := draw(deco_arg)) else ""
    return f'''import sys
import zonedev
from greenlet import GreenletExit
from zonedev.sync import Var


class Custom(BaseException):
    pass


def raise_it():
    raise {exc}


@zonedev.scenario({deco})
def s(k{", " + params if params else ""}):
    v = Var(0, "v")

    def body():
{textwrap.indent(bodies[kind], "        ")}

    def other():
        v.get("R")

    def boom():
        raise {exc}
    threads = {draw(threads_arg)}
    inv = {draw(checks_arg)}
    fin = {draw(checks_arg)}
    state = {draw(state_arg)}
    return {draw(returns)}
{draw(module_tail)}'''


@st.composite
def patch_file(draw) -> str:
    commit = draw(st.sampled_from(["'abcdef0123'"] * 6 + ["5", "''", "None", "'0dc45ca1ce18'", "b'x'"]))
    version = draw(st.sampled_from(["'v6.1'"] * 4 + ["'v5.18'"] * 2 + ["'soon'", "6.1", "'v4.5'", "None"]))
    functions = draw(st.sampled_from([""] * 8 + [", functions=5", ", functions={'put_page': 5}", ", functions={1: len}",
                                      ", facts={1: 2}", ", fixes=7", ", base='bogus'", ", base='v6.1'"]))
    define = draw(st.sampled_from([""] * 6 + ["@PATCH.define\ndef put_page(k, page):\n    raise {e}\n",
                                   "@PATCH.define\ndef get_page(k, page):\n    sys.exit(9)\n",
                                   "PATCH.remove('put_page')\n", "PATCH = 5\n", "import sys\nsys.exit(4)\n"]))
    exc = draw(st.sampled_from(EXCEPTIONS))
    return (f"import sys\nfrom greenlet import GreenletExit\nfrom zonedev.patches import Patch\n\n"
            f"class Custom(BaseException):\n    pass\n\n"
            f"PATCH = Patch(commit={commit}, title='t', version={version}{functions})\n\n"
            + define.replace("{e}", exc))


# -- command lines -----------------------------------------------------------------------------
def _opts(pairs):
    return st.lists(st.sampled_from(pairs), max_size=4).flatmap(
        lambda names: st.tuples(*[_opt(n) for n in names]) if names else st.just(()))


def _opt(name):
    if name.startswith("!"):                     # a flag
        return st.just([name[1:]])
    good, odd = VALUES.get(name, ([], []))
    choices = []
    if good:
        choices += [st.sampled_from(good)] * 3   # mostly what a user means, sometimes not
    choices.append(st.sampled_from(odd) if odd else weird_text)
    choices.append(weird_text)
    return st.one_of(choices).map(lambda v: [name, v])


KERNELS = ["v6.1", "v5.18", "newest", "6.12", "v4.14", "v6.1,v5.18", "v6.15", "5.19"]
#: option -> (values a user means, odd values)
VALUES = {
    "--kernel": (KERNELS, ["bogus", "", "4.0", "all", "v6.1,,", "v9.9"]),
    "-k": (KERNELS, ["bogus", ""]),
    "--executions": (["1", "2", "7", "50"], ["0", "-1", "nan", "1e9", "abc", ""]),
    "--time": (["0.2", "0.5"], ["0", "-1", "nan", "inf", "abc", ""]),
    "--preemptions": (["0", "1", "2"], ["-1", "nan", "x"]),
    "--depth": (["1", "2", "3"], ["0", "-3", "100000"]),
    "--seed": (["0", "1", "42"], ["-1", "x", "1e3"]),
    "--memory": (["4G", "512M", "1M"], ["0", "lots", "1.5G", "-1M", "10", ""]),
    "--mode": (["auto", "dpor", "stateful", "random", "pct", "naive", "bounded", "source-dpor"], ["bogus"]),
    "-p": (["users=2", "users=3", "atomic=yes", "wake=true", "n=2", "buggy=false"],
           ["users=nan", "users", "bogus=1", "n=inf", "users=-1", "users=99999999999999999999999", "=1", "users=x"]),
    "--patch": (["{dir}/patch.py"], ["{dir}/patch.txt", "nosuch.py", "a" * 5000 + ".py", "{dir}"]),
    "--schedule": (["0", "0.1", "0*2.1*2", "1.0", "", "0*3.1.2"], ["0*100000000000", "9", "0*0", "1*2.x", "-1"]),
    "-s": (["0", "0.1", "1.0"], ["x"]),
    "--step-timeout": (["0.5"], ["0", "nan", "-1"]),
    "--type": (["private", "coherent", "fsdax", "generic", "p2pdma"], ["bogus", ""]),
    "-t": (["open_close", "migrate", "anon_read"], ["bogus", ""]),
    "--variant": (["private", "coherent"], ["bogus"]),
    "--npages": (["7", "16"], ["0", "-1", "x", "100000"]),
    "--page-ints": (["16", "1"], ["0", "2000"]),
    "--chunk-pages": (["64", "8"], ["1", "x"]),
    "--jobs": (["1", "2"], ["0", "-1", "x", "nan"]),
    "--good": (KERNELS, ["bogus", ""]),
    "--bad": (KERNELS, ["bogus", ""]),
    "--at": (["0dc45ca1ce18", "27674ef6c73f"], ["0dc45ca1ce18XYZ", "bogus", ""]),
    "--checkpoint": (["{dir}/cp"], ["/nonexistent/dir/cp", "{dir}"]),
    "--resume": (["{dir}/cp"], ["{dir}/patch.py", "nosuch"]),
    "--without": (["0dc45ca1ce18", "27674ef6c73f", "5042db43cc26"], ["0dc45ca1ce18XYZ", "deadbeef00"]),
    "--pfns": (["0x100000-0x1fffff"], ["x", "5-1"]),
}


COMMON = ["--kernel", "--kernel", "--patch", "--without", "-p", "-p", "!--json", "!--json", "--bogus"]
COMMANDS = {
    "check": COMMON + ["--executions", "--time", "--preemptions", "--depth", "--seed", "--memory", "--mode",
                       "!--first", "!--no-minimize", "--step-timeout", "--checkpoint", "--resume", "--at"],
    "replay": COMMON + ["--schedule", "--step-timeout", "--at"],
    "lifecycle": ["--kernel", "--type", "--without", "--patch", "!--json", "--bogus"],
    "kernels": ["!--json", "--bogus"],
    "patches": ["--kernel", "!--json", "--bogus"],
    "selftest hmm": ["--kernel", "-t", "--variant", "--npages", "--page-ints", "--chunk-pages", "--bogus"],
    "matrix": ["--kernel", "--patch", "--without", "--jobs", "!--json", "--bogus"],
    "bisect": ["--good", "--bad", "--patch", "-p", "!--json", "--bogus"],
    "trace check": ["--kernel", "--type", "--pfns", "!--json", "--bogus"],
    "bogus": ["--bogus"],
}
POSITIONAL = {"check": True, "replay": True, "matrix": True, "bisect": True, "trace check": True}


@st.composite
def invocation(draw) -> tuple[dict[str, str], list[str]]:
    cmd = draw(st.sampled_from(sorted(COMMANDS) + ["check"] * 6 + ["replay"] * 3 + ["lifecycle"] * 2))
    argv = cmd.split()
    if cmd == "matrix":       # a whole matrix is minutes of honest work: a file, never none
        argv.append(draw(st.sampled_from(["{dir}/gen.py", "{dir}/gen.py::s", PLANTED, "nosuch.py", "{dir}"])
                         | weird_text.filter(lambda x: bool(x.strip()))))
    elif POSITIONAL.get(cmd) and draw(st.integers(0, 9)):
        argv.append(draw(st.one_of(st.sampled_from(SCENARIO_SPECS), st.sampled_from(SCENARIO_SPECS), weird_text)))
    for pair in draw(_opts(COMMANDS[cmd])):
        argv.extend(pair)
    if cmd in ("check", "replay"):
        # budgets on every run that could explore, so that a hang is a real hang
        argv += ["--time", str(TIME), "--step-timeout", str(STEP)] if cmd == "check" else ["--step-timeout", str(STEP)]
        if cmd == "replay" and "--schedule" not in argv and "-s" not in argv and draw(st.integers(0, 9)):
            argv += ["--schedule", draw(st.one_of(st.sampled_from(["0", "0.1", "1.0", "0*2.1", ""]), weird_text))]
    if cmd == "selftest hmm" and "-t" not in argv:
        argv += ["-t", "open_close"]                    # one case: the whole suite is not a fuzz input
    if cmd == "bisect":
        argv = [a for a in argv if a != f"{ROOT}/scenarios/teardown.py::teardown"]
    files = {"gen.py": draw(scenario_file()), "patch.py": draw(patch_file()), "patch.txt": "PATCH = 1\n"}
    return files, argv


# -- running one input and judging it ----------------------------------------------------------
def run_one(files: dict[str, str], argv: list[str], where: Path):
    """Write ``files`` into ``where``, run ``argv`` in this process with ``where`` as the
    working directory (whatever a generated option writes lands there); return (result, seconds,
    hung).  A watchdog interrupts the run (as a SIGINT would) past :data:`HANG` seconds."""
    from click.testing import CliRunner
    from zonedev.cli import main
    where.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (where / name).write_text(text)
    args = [a.replace("{dir}", str(where)) for a in argv]
    done = threading.Event()
    hung = []

    def watchdog():
        if not done.wait(HANG):
            hung.append(True)
            _thread.interrupt_main()
    threading.Thread(target=watchdog, daemon=True).start()
    t0 = time.perf_counter()
    cwd = os.getcwd()
    os.chdir(where)
    try:
        r = CliRunner().invoke(main, args, catch_exceptions=True)
    finally:
        os.chdir(cwd)
        done.set()
    return r, time.perf_counter() - t0, bool(hung)


def judge(r, seconds: float, hung: bool, argv: list[str]) -> list[str]:
    """What is wrong with one outcome (empty: every promise held)."""
    bad = []
    out, err = r.stdout, r.stderr
    if hung:
        bad.append(f"hang: still running after {HANG:g} s")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        bad.append(f"uncaught {type(r.exception).__name__}: {r.exception}")
    if "Traceback (most recent call last)" in out + err:
        bad.append("a traceback was printed")
    if r.exit_code not in (0, 1, 2, 130):
        bad.append(f"exit status {r.exit_code}")
    lines = err.splitlines()
    if r.exit_code == 2:
        errors = [x for x in lines if x.startswith("zonedev: error:")]
        if not errors:
            bad.append("exit 2 without a 'zonedev: error:' line")
        bad += [f"not the one-line form: {x[:120]!r}" for x in errors if not ONE_LINE.match(x)]
        others = [x for x in lines if not x.startswith("zonedev: error:") and not NOTE.match(x)
                  and not x.startswith("#")]
        if others:
            bad.append(f"other stderr lines with exit 2: {others[0][:120]!r}")
        if "--json" not in argv and out.strip() and argv[0] not in ("check", "matrix", "bisect"):
            bad.append("exit 2 printed on stdout")
    if "--json" in argv and r.exit_code in (0, 1, 2) and argv[0] not in ("selftest",):
        try:
            json.loads(out)
        except ValueError:
            bad.append(f"--json stdout is not JSON: {out[:80]!r}")
    return bad
