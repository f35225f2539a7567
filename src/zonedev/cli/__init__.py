"""The ``zonedev`` command.  Each subcommand lives in its own module here and is added below."""

from __future__ import annotations

import importlib

import click

from ._errors import Group

#: subcommand modules; each defines ``command`` (a click command)
SUBCOMMANDS = [
    "check",
    "matrix",
    "replay",
    "lifecycle",
    "kernels",
    "patches",
    "selftest",
    "bisect",
    "trace",
    "lab",
]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zonedev")
def main() -> None:
    """An executable model of Linux ZONE_DEVICE page refcounting, and its checker.

    Exit status: 0 nothing found, 1 found, 2 bad input (one line: zonedev: error: WHERE:
    reason), 130 interrupted (SIGINT), 143 terminated (SIGTERM).

    \b
    Examples:
      zonedev lifecycle --kernel all
      zonedev check scenarios/teardown.py::teardown3 --kernel v5.18,v6.1
      zonedev matrix
      zonedev COMMAND --help

    \b
    Shell completion (bash; zsh and fish likewise):
      eval "$(_ZONEDEV_COMPLETE=bash_source zonedev)"
    """


for _name in SUBCOMMANDS:
    main.add_command(importlib.import_module(f"{__name__}.{_name}").command)
