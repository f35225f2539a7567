"""docs/tutorial.md stays true: every ``zonedev`` command in its ``sh`` blocks runs, in order, with
the exit status the comment after it declares (``# exit 1``; none: 0).

The commands run in-process (click's CliRunner) in a scratch directory that holds a link to the
checkout's ``scenarios/`` and the files the tutorial asks the reader to write (its ``python``
blocks whose first line is ``# NAME.py``), so relative paths mean what they mean at the top of a
checkout and nothing is written into it.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from zonedev.cli import main

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"

_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
_FILE = re.compile(r"^#\s*([\w./-]+\.py)\s*$")


def blocks() -> list[tuple[str, str]]:
    return _BLOCK.findall(TUTORIAL.read_text())


def commands() -> list[tuple[str, int]]:
    """(command line, expected exit status) for every ``zonedev`` line of the sh blocks."""
    out = []
    for lang, body in blocks():
        if lang != "sh":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("zonedev "):
                m = _EXIT.search(line)
                out.append((line, int(m.group(1)) if m else 0))
    return out


def files() -> dict[str, str]:
    """The files the tutorial has the reader write: python blocks headed ``# NAME.py``."""
    out = {}
    for lang, body in blocks():
        first = body.splitlines()[0] if body.strip() else ""
        m = _FILE.match(first)
        if lang == "python" and m:
            out[m.group(1)] = body
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tutorial")
    (d / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    for name, text in files().items():
        (d / name).write_text(text)
    return d


def test_the_tutorial_covers_the_journey():
    cmds = [c for c, _ in commands()]
    for sub in ("kernels", "lifecycle", "matrix", "check", "replay", "bisect"):
        assert any(c.split()[1] == sub for c in cmds), f"the tutorial runs no `zonedev {sub}`"
    assert any("--patch" in c for c in cmds) and {"my_teardown.py", "my_patch.py"} <= set(files())


@pytest.mark.parametrize("line, status", commands(), ids=[c for c, _ in commands()])
def test_command(workdir, line, status):
    args = shlex.split(line, comments=True)[1:]
    old = os.getcwd()
    os.chdir(workdir)
    try:
        res = CliRunner().invoke(main, args)
    finally:
        os.chdir(old)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == status, (
        f"docs/tutorial.md: `{line}` exited {res.exit_code}, the tutorial says {status} "
        f"(a model change moves schedules: update the command from its own output)\n{res.output[-3000:]}")
