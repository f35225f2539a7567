"""Where text output goes: a width that fits the terminal, colour only on a terminal.

On a terminal the width is the terminal's; when the output is piped or captured it is
``$COLUMNS`` if set, else 100 columns, and there is no colour (nor with ``NO_COLOR`` set).
Tables are built with ``rich`` and rendered to plain strings here, so the commands print them
with ``click.echo`` like everything else.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from typing import Any

#: the width assumed when the output is not a terminal and $COLUMNS is not set
PIPED_WIDTH = 100


def is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def width() -> int:
    """Columns to fit: $COLUMNS, else the terminal's width, else :data:`PIPED_WIDTH`."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) >= 40:
        return int(env)
    if is_terminal():
        return max(40, shutil.get_terminal_size((PIPED_WIDTH, 24)).columns)
    return PIPED_WIDTH


def render(*renderables: Any, columns: int | None = None) -> str:
    """``renderables`` (rich tables, text) as one string fitting ``columns`` (default :func:`width`);
    styled only on a terminal."""
    from rich.console import Console

    tty = is_terminal() and "NO_COLOR" not in os.environ
    con = Console(file=io.StringIO(), width=columns or width(), force_terminal=tty,
                  color_system="standard" if tty else None, highlight=False, emoji=False,
                  legacy_windows=False)
    for r in renderables:
        con.print(r)
    text = con.file.getvalue()          # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))
