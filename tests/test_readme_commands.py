"""The commands README.md shows work as printed with the README's install (issue 13): each quick
``zonedev ...`` line of its ``sh`` blocks runs through click's CliRunner from the checkout and
exits as it should; every command's ``--help`` has examples; fixed option values are choices
that complete in the shell."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zonedev.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

#: the README commands too slow for the suite (they are the benchmarks' and the matrix's job)
SLOW = ("zonedev matrix", "zonedev check scenarios/hmm_races.py::fault_vs_migrate")
#: what each quick command exits with: 1 where it shows a finding or a violation
EXIT = {
    "zonedev lifecycle --kernel v5.18 --type fsdax": 1,     # fsdax_waiter_never_woken on v5.18
    "zonedev check scenarios/teardown.py::teardown3 --kernel v5.18,v6.1": 1,
    "zonedev replay scenarios/teardown.py::teardown3 --kernel v5.18 --schedule '2*7.0*2' --step": 1,
}


def readme_commands() -> list[str]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("zonedev "):
                out.append(line)
    return out


QUICK = [c for c in readme_commands() if not c.startswith(SLOW) and "my_fix.py" not in c]


def test_the_readme_has_the_commands_the_issue_names():
    words = " ".join(QUICK)
    for needed in ("zonedev lifecycle", "zonedev kernels", "zonedev patches",
                   "zonedev check scenarios/teardown.py::teardown3", "zonedev trace check"):
        assert needed in words, needed


@pytest.mark.parametrize("command", QUICK)
def test_readme_command_runs_as_printed(command, monkeypatch):
    args = shlex.split(command)[1:]
    for a in args:
        if a.startswith("../shared/") and not (ROOT / a).exists():
            pytest.skip(f"{a} is beside the workplace's checkout, not beside this one")
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(main, args, input="\n" * 500)     # --step: enter at every step
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    assert r.exit_code == EXIT.get(command, 0), f"{command}\n{r.output}"
    assert "Traceback" not in r.output


def _commands(group: click.Group, prefix: tuple = ()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _c in _commands(main)] + [()], ids=lambda p: " ".join(p) or "zonedev")
def test_every_help_has_examples(path):
    r = CliRunner().invoke(main, [*path, "--help"])
    assert r.exit_code == 0
    text = r.output
    assert "Examples:" in text, text
    examples = text.split("Examples:", 1)[1].split("\n\n", 1)[0].strip().splitlines()
    assert examples and all(line.strip().startswith("zonedev") for line in examples)


def test_fixed_values_are_choices_that_complete():
    fixed = {("lifecycle",): "--type", ("check",): "--mode", ("selftest", "hmm"): "--variant",
             ("trace", "check"): "--type", ("trace", "export"): "--lifecycle"}
    cmds = dict(_commands(main))
    for path, opt in fixed.items():
        param = next(p for p in cmds[path].params if opt in p.opts)
        assert isinstance(param.type, click.Choice), (path, opt)
    # bash completion of `zonedev lifecycle --type f`
    r = CliRunner().invoke(main, [], prog_name="zonedev", env={
        "_ZONEDEV_COMPLETE": "bash_complete", "COMP_WORDS": "zonedev lifecycle --type f", "COMP_CWORD": "3"})
    assert r.output.split() == ["plain,fsdax"]
