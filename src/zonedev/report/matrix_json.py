"""``matrix.json``: the matrix as one JSON document (fields in ``docs/json.md``, schema 1).

Built from what :func:`zonedev.rt.matrix.matrix` returns, plus the commands a reader pastes to
see a cell again (``replay`` for a counterexample, ``check`` for the cell alone), quoted so they
run as printed.
"""

from __future__ import annotations

from typing import Any

from .commands import check_command, replay_command

SCHEMA = 1


def replay_of(cell: dict[str, Any], result: Any) -> str | None:
    """The replay command of the cell's counterexample (None without one)."""
    cx = cell["counterexample"]
    if not cx:
        return None
    return replay_command(cell["scenario"], cell["kernel"], cx["schedule"],
                          without=result.without, patches=result.patches)


def check_of(cell: dict[str, Any], result: Any) -> str:
    """The command that checks this cell alone, with the run's patches."""
    return check_command(cell["scenario"], cell["kernel"], without=result.without,
                         patches=result.patches)


def question(scenario: Any) -> str:
    """The first paragraph of a scenario's docstring, on one line."""
    return " ".join(scenario.doc.split("\n\n")[0].split())


def document(result: Any) -> dict[str, Any]:
    """The ``matrix.json`` document of a :class:`~zonedev.rt.matrix.MatrixResult`."""
    return {
        "schema": SCHEMA,
        "kernels": list(result.kernels),
        "scenarios": [{"scenario": r.spec, "question": question(r.scenario),
                       "refs": list(r.scenario.refs),
                       "kernels": [k for k in result.kernels if r.scenario.applies(k)]}
                      for r in result.rows],
        "cells": [dict(c, replay=replay_of(c, result), check=check_of(c, result)) for c in result.cells],
        "summary": result.summary(),
    }
