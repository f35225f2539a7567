"""Every replay command ``zonedev check`` prints runs as printed, through a shell (quoting
included; a finding at the very start has an empty schedule, printed as ``--schedule ''``)."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLANTED = str(HERE / "rt_planted.py")

EARLY = '''import zonedev

@zonedev.scenario(kernel=False, params={"label": "it's"})
def raises_at_once(k, label):
    def t():
        raise RuntimeError(label)
    return zonedev.Run({"a": t})
'''

NOOP_PATCH = '''from zonedev.patches import Patch

PATCH = Patch(commit="feedface1234", title="a patch that changes nothing", version="v5.18")
'''


def _replays(output: str) -> list[str]:
    # a long command goes on over lines ending in " \\" (a shell line continuation)
    return [m.group(1) for m in re.finditer(r"^    replay:   ((?:.* \\\n)*.*)$", output, re.M)]


def _run_as_printed(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    assert cmd.startswith("zonedev replay ")
    line = shlex.quote(sys.executable) + " -m " + cmd          # the printed words, through sh
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(line, shell=True, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, kind", [
    ([PLANTED + "::dec_and_test"], "leak"),
    ([PLANTED + "::wakeup"], "hang"),
    ([PLANTED + "::crash"], "exception"),
    (["EARLY::raises_at_once"], "exception"),
    (["scenarios/teardown.py::teardown", "--kernel", "v5.18", "-p", "users=2", "--patch", "PATCH"],
     "use_after_free"),
    (["scenarios/teardown.py::teardown3", "--at", "27674ef6c73f"], "use_after_free"),
])
def test_printed_replay_commands_run_as_printed(tmp_path, args, kind):
    d = tmp_path / "a dir with 'quotes' and spaces"
    d.mkdir()
    (d / "early scenarios.py").write_text(EARLY)
    (d / "no-op patch.py").write_text(NOOP_PATCH)
    files = {"EARLY": str(d / "early scenarios.py"), "PATCH": str(d / "no-op patch.py")}
    args = [files["EARLY"] + a[len("EARLY"):] if a.startswith("EARLY") else files.get(a, a) for a in args]
    r = CliRunner().invoke(main, ["check", *args, "--no-minimize"])
    assert r.exit_code == 1, r.output
    cmds = _replays(r.stdout)
    assert cmds
    for cmd in cmds:
        p = _run_as_printed(cmd, ROOT)
        assert p.returncode == 1, (cmd, p.stderr)
        assert f">> {kind}" in p.stdout, (cmd, p.stdout)
    if args[0].endswith("::raises_at_once"):      # found before any step: the empty schedule
        assert cmds[0].endswith("-p 'label=it'\"'\"'s' --schedule ''"), cmds
