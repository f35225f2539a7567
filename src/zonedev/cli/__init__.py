"""The ``zonedev`` command.  Each subcommand lives in its own module here and is added below."""

from __future__ import annotations

import importlib

import click

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
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zonedev")
def main() -> None:
    """An executable model of Linux ZONE_DEVICE page refcounting, and its checker."""


for _name in SUBCOMMANDS:
    main.add_command(importlib.import_module(f"{__name__}.{_name}").command)
