"""``zonedev check`` and ``zonedev replay`` from the command line."""

import json
from pathlib import Path

from click.testing import CliRunner

from zonedev.cli import main

HERE = Path(__file__).resolve().parent
PLANTED = str(HERE / "rt_planted.py")
BENCH = str(HERE.parent / "scenarios" / "dpor_benchmarks.py")


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def test_clean_scenario_exits_0_with_one_line():
    r = run("check", f"{BENCH}::readers", "-p", "n=5")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1
    assert "no violation, 32 executions" in lines[0] and "exhaustive" in lines[0]


def test_finding_exits_1_with_table_and_replay_command():
    r = run("check", f"{PLANTED}::dec_and_test")
    assert r.exit_code == 1, r.output
    assert "FOUND 1 (leak)" in r.output
    assert "schedule: " in r.output and "zonedev replay" in r.output
    assert "CPU 0: put0" in r.output and "CPU 1: put1" in r.output   # one column per thread


def test_replay_reproduces_the_finding_exactly():
    out = json.loads(run("check", f"{PLANTED}::release_twice", "--json").output)
    f = out[0]["findings"][0]
    r = run("replay", f"{PLANTED}::release_twice", "--schedule", f["schedule"])
    assert r.exit_code == 1
    assert f">> release_twice (step {f['step']}, {f['thread']})" in r.output
    r2 = run("replay", f"{PLANTED}::release_twice", "--schedule", f["schedule"])
    assert r2.output == r.output                    # same result on every run
    # a clean interleaving replays clean
    r3 = run("replay", f"{PLANTED}::release_twice", "--schedule", "0*2.1*3")
    assert r3.exit_code == 0 and "no violation" in r3.output


def test_replay_step_mode_pauses_at_each_step():
    r = run("replay", f"{PLANTED}::wakeup", "--schedule", "0.1", "--step", input="\n\n\n")
    assert "step   0  waiter" in r.output and "step   1  setter" in r.output
    assert ">> hang" in r.output


def test_json_is_machine_readable():
    r = run("check", f"{PLANTED}::wakeup", "--json")
    data = json.loads(r.output)
    assert r.exit_code == 1
    assert data[0]["verdict"] == "found" and data[0]["findings"][0]["kind"] == "hang"


def test_modes_from_the_command_line():
    r = run("check", f"{PLANTED}::release_twice", "--mode", "pct", "--depth", "2", "--seed", "3",
            "--executions", "50", "--json")
    d = json.loads(r.output)[0]
    assert d["mode"] == "pct(d=2)" and d["executions"] == 50 and d["seed"] == 3 and not d["exhaustive"]
    r = run("check", f"{PLANTED}::dec_and_test", "--preemptions", "0")
    assert r.exit_code == 0 and "bounded(0)" in r.output


def test_bad_inputs_exit_2_with_file_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import zonedev\n\n@zonedev.scenario\ndef s(k):\n    return (\n")
    r = run("check", str(bad))
    assert r.exit_code == 2
    assert f"{bad}:5" in r.output or f"{bad}:6" in r.output
    assert "Traceback" not in r.output
    boom = tmp_path / "boom.py"
    boom.write_text("import zonedev\nx = 1\nraise RuntimeError('nope')\n")
    r = run("check", str(boom))
    assert r.exit_code == 2 and f"{boom}:3: RuntimeError: nope" in r.output
    r = run("check", f"{PLANTED}::no_such")
    assert r.exit_code == 2 and "no scenario 'no_such'" in r.output
    r = run("check", f"{PLANTED}::dec_and_test", "-p", "bogus=1")
    assert r.exit_code == 2 and "no parameter 'bogus'" in r.output
    r = run("replay", f"{PLANTED}::dec_and_test", "--schedule", "0.0.0.0.5")
    assert r.exit_code == 2 and "cannot run" in r.output or "no thread" in r.output
    assert "Traceback" not in r.output


def test_unknown_kernel_exits_2(tmp_path):
    f = tmp_path / "k.py"
    f.write_text("import zonedev\n\n@zonedev.scenario\ndef s(k):\n    return zonedev.Run([])\n")
    r = run("check", str(f), "--kernel", "v9.99")
    assert r.exit_code == 2 and "unknown kernel 'v9.99'" in r.output
    assert "Traceback" not in r.output
