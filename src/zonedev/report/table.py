"""Counterexamples people can read: one column per thread, one row per step.

Each cell names the kernel function and the primitive it performed, then the refcount or pgmap
changes that step made (the event log).  The step where a finding showed is marked ``>>``.
"""

from __future__ import annotations

import textwrap

from ..rt.replay import Trace

MAX_COL = 60


def _cell_lines(text_lines: list[str], width: int) -> list[str]:
    out: list[str] = []
    for line in text_lines:
        out.extend(textwrap.wrap(line, width, subsequent_indent="  ") or [""])
    return out


def render(trace: Trace, mark_steps: set[int] | None = None, upto: int | None = None) -> str:
    """The interleaving table of ``trace``; rows in ``mark_steps`` get ``>>``; rows after
    ``upto`` are summarised in one line."""
    names = trace.names
    n = len(names)
    marks = mark_steps if mark_steps is not None else {s.index for s in trace.steps if s.findings}
    steps = trace.steps if upto is None else trace.steps[: upto + 1]
    # column widths
    widths = [len(nm) for nm in names]
    cells: list[list[str]] = []
    for st in steps:
        lines = [st.text()] + ["  " + e for e in st.events]
        for f in st.findings:
            lines.append(f"!! {f.kind}")
        width = min(MAX_COL, max(len(x) for x in lines))
        widths[st.thread] = max(widths[st.thread], width)
        cells.append(lines)
    widths = [min(MAX_COL, w) for w in widths]
    idx_w = max(4, len(str(len(trace.steps))) + 1)
    sep = "+-" + "-" * (idx_w + 3) + "-+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [sep, "| " + "step".ljust(idx_w + 3) + " | " + " | ".join(nm.ljust(w) for nm, w in zip(names, widths)) + " |", sep]
    for st, lines in zip(steps, cells):
        wrapped = _cell_lines(lines, widths[st.thread])
        for j, line in enumerate(wrapped):
            mark = ">> " if (j == 0 and st.index in marks) else "   "
            num = str(st.index) if j == 0 else ""
            row = [""] * n
            row[st.thread] = line
            out.append("| " + mark + num.ljust(idx_w) + " | " +
                       " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    if trace.waiting and (upto is None or upto >= len(trace.steps) - 1):
        row = [""] * n
        for t, what in trace.waiting.items():
            row[t] = what[: widths[t]]
        out.append("| " + "   " + "end".ljust(idx_w) + " | " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    out.append(sep)
    if upto is not None and len(trace.steps) > upto + 1:
        out.append(f"  ({len(trace.steps) - upto - 1} more steps to the end of the execution)")
    return "\n".join(out)
