"""Commands people paste: the replay command of a finding, quoted so that it runs as printed."""

from __future__ import annotations

import shlex
from typing import Any, Iterable


def _words(verb: str, spec: str, kernel: str | None, without: Iterable[str],
           patches: Iterable[str]) -> list[str]:
    """``zonedev VERB FILE::NAME --kernel K [--without C]... [--patch P]...``, unquoted."""
    words = ["zonedev", verb, spec]
    if kernel and kernel != "-":
        words += ["--kernel", kernel.split("+")[0].split("-")[0]]
    for w in without:
        words += ["--without", w]
    for p in patches:
        words += ["--patch", str(p)]
    return words


def replay_command(spec: str, kernel: str | None, schedule: str, params: dict[str, Any] | None = None,
                   without: Iterable[str] = (), patches: Iterable[str] = ()) -> str:
    """``zonedev replay FILE::NAME --kernel K [-p N=V]... [--without C]... [--patch P]... --schedule S``.

    ``kernel`` is the modelled kernel's base name (a label such as ``v6.1-0dc45ca1ce18`` is cut
    back to ``v6.1``: the left-out and extra patches are given as options)."""
    words = _words("replay", spec, kernel, without, patches)
    for key, value in (params or {}).items():
        words += ["-p", f"{key}={value}"]
    words += ["--schedule", schedule if schedule else "''"]
    return " ".join(w if w == "''" else shlex.quote(w) for w in words)


def check_command(spec: str, kernel: str | None, without: Iterable[str] = (),
                  patches: Iterable[str] = ()) -> str:
    """``zonedev check FILE::NAME --kernel K [--without C]... [--patch P]...``, quoted."""
    return " ".join(shlex.quote(w) for w in _words("check", spec, kernel, without, patches))


def wrap_command(command: str, width: int, first: int = 0, indent: str = "      ") -> str:
    """``command`` on lines of at most ``width`` columns (the first already holds ``first``
    columns), broken before an option with a shell line continuation (`` \\``), so that it still
    runs when pasted as printed.  A word longer than a line stays whole."""
    if first + len(command) <= width:
        return command
    chunks: list[str] = []
    for w in shlex.split(command):
        q = shlex.quote(w)
        if chunks and not (w.startswith("-") and len(w) > 1):
            chunks[-1] += " " + q           # a value stays with its option
        else:
            chunks.append(q)
    lines = [""]
    room = width - first
    for chunk in chunks:
        if not lines[-1]:
            lines[-1] = chunk
        elif len(lines[-1]) + 1 + len(chunk) + 2 <= room:
            lines[-1] += " " + chunk
        else:
            lines.append(indent + chunk)
            room = width
    return " \\\n".join(lines)
