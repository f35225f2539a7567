"""Interrupts lose nothing (issue 12): SIGINT/SIGTERM stop a run at the next execution boundary
with the findings so far (valid JSON under --json), exit 130/143, the progress line cleared;
--checkpoint/--resume continue it, and an interrupted-and-resumed run ends with exactly the
counts and findings of an uninterrupted one (DPOR, stateful, random, PCT)."""

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main
from zonedev.rt.check import check
from zonedev.rt.outcome import clear_stop, request_stop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLANTED = str(HERE / "rt_planted.py")
BUDGET = str(HERE / "budget_scenarios.py")
LONG = [PLANTED + "::dec_and_test", "-p", "users=5", "--mode", "dpor"]   # ~1.5 s of DPOR, one leak
# (auto would run the stateful search on its identical users, done before it can be interrupted)


def sig(r):
    """Everything an exploration ends with, but the time it took."""
    d = r.as_dict() if hasattr(r, "as_dict") else dict(r)
    keep = ("verdict", "executions", "blocked", "pruned", "steps", "states", "traces", "exhaustive")
    return ({k: d[k] for k in keep},
            [(f["kind"], f["message"], f["schedule"], f["preemptions"], f["steps"]) for f in d["findings"]])


def stop_after(n):
    """A progress callback that asks for a stop (as the SIGINT handler does) at execution n."""
    def progress(execs):
        if execs >= n:
            request_stop(signal.SIGINT)
    return progress


CASES = {
    "dpor": (PLANTED + "::dec_and_test", {"params": {"users": 4}}),
    "source-dpor": (PLANTED + "::dec_and_test", {"params": {"users": 4}}),
    "stateful": (BUDGET + "::scribblers", {"params": {"threads": 3, "writes": 4}}),
    "random": (PLANTED + "::dec_and_test", {"params": {"users": 3}, "executions": 400, "seed": 7}),
    "pct": (PLANTED + "::dec_and_test", {"params": {"users": 3}, "executions": 400, "seed": 7}),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_interrupted_and_resumed_equals_uninterrupted(mode, tmp_path):
    spec, kw = CASES[mode]
    full = check(spec, mode=mode, **kw)
    assert full.executions > 50
    cp = str(tmp_path / "cp")
    resume = None
    stops = 0
    # interrupted three times at arbitrary executions, resumed each time
    for at in (1, 17, full.executions // 2):
        try:
            part = check(spec, mode=mode, checkpoint=cp, resume=resume, progress=stop_after(at), **kw)
        finally:
            clear_stop()
        assert part.stopped == "interrupted" and not part.exhaustive
        assert part.executions + part.blocked <= full.executions + full.blocked
        stops += 1
        resume = cp
    last = check(spec, mode=mode, resume=resume, **kw)
    assert stops == 3 and sig(last) == sig(full)


def _cli(*args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "zonedev", *args], cwd=ROOT, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT / "src"), **(env or {})), **kw)


def _wait_for(path, proc, limit=30.0):
    t0 = time.time()
    while not os.path.exists(path):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.time() - t0 < limit
        time.sleep(0.02)


def _interrupt(tmp_path, signum):
    cp = str(tmp_path / "cp")
    p = _cli("check", *LONG, "--json", "--checkpoint", cp, "--checkpoint-every", "0.1",
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(cp, p)
    p.send_signal(signum)
    out, err = p.communicate(timeout=60)
    assert "Traceback" not in err
    part = json.loads(out)[0]                      # valid JSON, with what was covered
    assert part["stopped"] == "interrupted" and part["note"].startswith("interrupted")
    assert 0 < part["executions"] < 14400 and not part["exhaustive"]
    return p.returncode, cp


def test_sigterm_exits_143_with_json(tmp_path):
    status, cp = _interrupt(tmp_path, signal.SIGTERM)
    assert status == 143 and os.path.exists(cp)


def test_sigint_stops_cleanly_and_resume_matches(tmp_path):
    status, cp = _interrupt(tmp_path, signal.SIGINT)
    assert status == 130
    q = _cli("check", *LONG, "--json", "--resume", cp, "--checkpoint", cp,
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out2, err2 = q.communicate(timeout=120)
    assert q.returncode == 1, err2
    full = check(PLANTED + "::dec_and_test", params={"users": 5}, mode="dpor")
    assert sig(json.loads(out2)[0]) == sig(full)
    assert not os.path.exists(cp)                  # finished: nothing left to resume


def test_progress_line_cleared_and_findings_printed_on_sigint(tmp_path):
    master, slave = pty.openpty()                  # stderr a terminal: the progress line is shown
    p = _cli("check", *LONG, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    t0 = time.time()
    while b"executions," not in seen:              # the progress line is up
        assert time.time() - t0 < 30 and p.poll() is None
        seen += os.read(master, 4096)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert p.returncode == 130
    last_progress = seen.rindex(b"executions,")
    assert b"\r\x1b[K" in seen[last_progress:]      # cleared after its last update
    assert b"zonedev: interrupted: the findings so far are above" in seen
    assert "dec_and_test  -  " in out and "NOT exhaustive" in out and "note: interrupted" in out


def test_resume_across_processes_with_other_hash_seeds(tmp_path):
    """The stateful search's visited states and symmetric order survive a new process (string
    hashing differs between processes)."""
    cp = str(tmp_path / "cp")
    args = ["check", BUDGET + "::scribblers", "-p", "threads=3", "-p", "writes=4", "--json"]
    p = _cli(*args, "--executions", "300", "--checkpoint", cp, env={"PYTHONHASHSEED": "1"},
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and json.loads(out)[0]["stopped"] == "executions", err
    q = _cli(*args, "--resume", cp, env={"PYTHONHASHSEED": "2"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out2, err2 = q.communicate(timeout=60)
    full = check(BUDGET + "::scribblers", params={"threads": 3, "writes": 4})
    assert sig(json.loads(out2)[0]) == sig(full), err2


def test_checkpoint_of_another_run_is_refused(tmp_path):
    cp = str(tmp_path / "cp")
    r = CliRunner().invoke(main, ["check", PLANTED + "::dec_and_test", "-p", "users=4", "--executions", "3",
                                  "--checkpoint", cp])
    assert os.path.exists(cp), r.output
    r = CliRunner().invoke(main, ["check", PLANTED + "::dec_and_test", "-p", "users=3", "--resume", cp])
    assert r.exit_code == 2 and r.stderr.startswith(f"zonedev: error: {cp}: a checkpoint of another")
    import pickle
    Path(cp).write_bytes(pickle.dumps({"format": 1, "identity": None, "state": {}}))   # an older zonedev's
    r = CliRunner().invoke(main, ["check", PLANTED + "::dec_and_test", "-p", "users=4", "--resume", cp])
    assert r.exit_code == 2 and r.stderr.startswith(f"zonedev: error: {cp}: a checkpoint of another zonedev "
                                                    f"version (format 1, this one reads 2): start the search again")
    Path(cp).write_bytes(b"not a pickle")
    r = CliRunner().invoke(main, ["check", PLANTED + "::dec_and_test", "-p", "users=4", "--resume", cp])
    assert r.exit_code == 2 and r.stderr.startswith(f"zonedev: error: {cp}: not a zonedev checkpoint")
    r = CliRunner().invoke(main, ["check", PLANTED + "::wakeup", "--checkpoint", str(tmp_path / "no" / "cp")])
    assert r.exit_code == 2 and r.stderr.startswith(f"zonedev: error: {tmp_path}/no/cp: cannot write a checkpoint")
    r = CliRunner().invoke(main, ["check", PLANTED, "--checkpoint", cp])
    assert r.exit_code == 2 and "--checkpoint: a checkpoint is of one scenario on one kernel" in r.stderr


def _wait_for_handler(p, signum, timeout=60.0):
    """Until process ``p`` catches ``signum`` (its SigCgt mask in /proc): before that, the
    signal would kill it with the default action and say nothing about zonedev's handling."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (signum - 1) & 1:
                return
        time.sleep(0.05)
    raise AssertionError(f"the process did not install a handler for signal {signum} in {timeout} s")


def test_commands_that_do_not_explore_stop_at_once():
    """replay (here stuck in a thread that spins) stops at the first SIGTERM: 143, no traceback,
    and the signal is not mistaken for the model's own exception."""
    p = _cli("replay", BUDGET + "::spin", "--schedule", "0.1", "--step-timeout", "60",
             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_handler(p, signal.SIGTERM)     # a loaded machine can take over a second to start
    time.sleep(0.5)
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143 and "Traceback" not in err and ">> exception" not in out


def test_a_state_deeper_than_the_recursion_limit_is_saved_and_loaded(tmp_path):
    """Optimal-DPOR's wakeup trees nest as deep as an execution is long: a teardown with 200
    users saved its checkpoint with a RecursionError traceback.  Such a state round-trips."""
    from zonedev.rt.checkpoint import Checkpoints
    root = node = [0, (), (), []]
    for i in range(1, sys.getrecursionlimit() * 5):
        child = [i, (), (), []]
        node[3].append(child)
        node = child
    ident = {"scenario": "x.py::y", "kernel": "v6.1"}
    Checkpoints(str(tmp_path / "deep.ckpt"), None, ident).save({"stack": (root,)})
    back = Checkpoints(None, str(tmp_path / "deep.ckpt"), ident).load()["stack"][0]
    depth = 0
    while back[3]:
        back = back[3][0]
        depth += 1
    assert depth == sys.getrecursionlimit() * 5 - 1 and back[0] == depth
