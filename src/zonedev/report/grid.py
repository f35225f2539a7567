"""The matrix as text: scenarios down, kernels across, fitted to the terminal.

Each cell is ``safe``, ``-`` (the scenario does not apply to that kernel), or the finding kinds
in short form (``uaf`` for ``use_after_free``; the legend under the grid spells out the ones
used).  A cell that differs from the scenario's expectation ends in ``!``; a cell whose scenario
failed is ``ERR!``; a cell an interrupted run did not reach is ``?``.  Kernel columns that do not
fit the width are folded into further blocks, each repeating the scenario names.

The text reads what :func:`zonedev.rt.matrix.matrix` returns (a :class:`MatrixResult`).
"""

from __future__ import annotations

import textwrap
from typing import Any

from ..sync.kinds import KINDS
from .matrix_json import check_of, replay_of

GAP = 2


def short(kind: str) -> str:
    """A finding kind in a few letters: the initials of a compound name (``use_after_free`` ->
    ``uaf``), a single word kept whole up to five letters, else its first four."""
    if "_" in kind:
        return "".join(w[0] for w in kind.split("_") if w)
    return kind if len(kind) <= 5 else kind[:4]


def abbreviations(kinds: set[str]) -> dict[str, str]:
    """kind -> its short form, unique among ``kinds`` (a clash gets a digit: ``pru``, ``pru2``)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for kind in sorted(kinds):
        s = base = short(kind)
        n = 2
        while s in used or (s in KINDS and s != kind) or s in ("safe", "ERR"):
            s = f"{base}{n}"
            n += 1
        used.add(s)
        out[kind] = s
    return out


def kinds_in(result: Any) -> set[str]:
    found: set[str] = set()
    for c in result.cells:
        for v in (c["verdict"], c["expected"]):
            if isinstance(v, list):
                found.update(v)
    return found


def cell_text(cell: dict[str, Any] | None, applies: bool, abbr: dict[str, str]) -> str:
    if not applies:
        return "-"
    if cell is None:
        return "?"
    if cell["error"] is not None:
        return "ERR!"
    v = cell["verdict"]
    text = "safe" if v == "safe" else "+".join(abbr[k] for k in v)
    return text if cell["match"] else text + "!"


def labels(result: Any) -> list[str]:
    """Row labels: the scenario name, or ``file::name`` when two files share a name."""
    names = [r.name for r in result.rows]
    return [r.name if names.count(r.name) == 1 else r.spec for r in result.rows]


def grid(result: Any, width: int) -> str:
    """The grid of ``result`` in blocks of kernel columns that fit ``width`` characters."""
    abbr = abbreviations(kinds_in(result))
    by_key = {(c["scenario"], c["kernel"]): c for c in result.cells}
    files = []
    for r in result.rows:
        if r.file not in files:
            files.append(r.file)
    grouped = len(files) > 1
    names = labels(result)
    indent = "  " if grouped else ""
    label_w = max([len(indent + n) for n in names] + [len("scenario")])
    texts = {k: [cell_text(by_key.get((r.spec, k)), r.scenario.applies(k), abbr) for r in result.rows]
             for k in result.kernels}
    col_w = {k: max([len(k)] + [len(t) for t in texts[k]]) for k in result.kernels}
    blocks: list[list[str]] = []
    cur: list[str] = []
    used = label_w
    for k in result.kernels:
        need = GAP + col_w[k]
        if cur and used + need > width:
            blocks.append(cur)
            cur, used = [], label_w
        cur.append(k)
        used += need
    if cur:
        blocks.append(cur)
    out: list[str] = []
    for b, ks in enumerate(blocks):
        if b:
            out.append("")
        out.append(("scenario".ljust(label_w) + "".join(" " * GAP + k.ljust(col_w[k]) for k in ks)).rstrip())
        last_file = None
        for i, r in enumerate(result.rows):
            if grouped and r.file != last_file:
                out.append(r.file)
                last_file = r.file
            line = (indent + names[i]).ljust(label_w)
            line += "".join(" " * GAP + texts[k][i].ljust(col_w[k]) for k in ks)
            out.append(line.rstrip())
    return "\n".join(out)


def legend(result: Any, width: int) -> str:
    """What the short forms and marks in the grid mean: only the ones the grid uses."""
    abbr = abbreviations(kinds_in(result))
    items = ["safe: nothing found", "-: not applicable",
             "!: differs from the expected verdict"]
    if result.errors:
        items.append("ERR: the scenario failed (see below)")
    if result.interrupted:
        items.append("?: not run (interrupted)")
    lines = textwrap.wrap("legend: " + "; ".join(items), max(40, width - 1), subsequent_indent="  ")
    for kind, s in sorted(abbr.items(), key=lambda kv: kv[1]):
        meaning = KINDS.get(kind, "")
        line = f"  {s:<6} {kind}" + (f": {meaning}" if meaning else "")
        lines.append(line if len(line) <= width else line[: max(20, width - 3)] + "...")
    return "\n".join(lines)


def words(verdict: Any) -> str:
    """A verdict field (``"safe"`` or a list of kinds) as words."""
    if verdict is None:
        return "an error"
    return verdict if isinstance(verdict, str) else ", ".join(verdict)


def mismatches(result: Any) -> str:
    """Each cell that differs from its expectation: expected vs got, and the command that shows
    it (the replay of the counterexample, or the check that finds nothing); then cell errors."""
    out: list[str] = []
    mm = result.mismatches
    if mm:
        out.append(f"mismatches ({len(mm)}):")
        for c in mm:
            out.append(f"  {c['scenario']} on {c['kernel']}: expected {words(c['expected'])}, "
                       f"got {words(c['verdict'])}")
            replay = replay_of(c, result)
            if replay:
                out.append(f"    replay: {replay}")
            else:
                out.append(f"    check:  {check_of(c, result)}")
    errs = result.errors
    if errs:
        out.append(f"errors ({len(errs)}):")
        for c in errs:
            out.append(f"  {c['scenario']} on {c['kernel']}: {c['error']}")
            out.append(f"    check:  {check_of(c, result)}")
    return "\n".join(out)


def kernel_ranges(kernels: list[str], columns: list[str]) -> str:
    """Kernels as ranges of consecutive columns: ``v5.6..v6.0,v6.2`` (``A..B`` inclusive)."""
    idx = sorted(columns.index(k) for k in kernels)
    parts: list[str] = []
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        a, b = columns[idx[i]], columns[idx[j]]
        parts.append(a if i == j else f"{a},{b}" if j == i + 1 else f"{a}..{b}")
        i = j + 1
    return ",".join(parts)


def _bound(b: dict | None) -> str:
    if not b:
        return "search cut"
    return ", ".join(f"{k}={v}" for k, v in b.items())


def summary(result: Any) -> str:
    """One line: cells, matches, mismatches, errors, cells not exhaustive (with their bounds),
    wall time; with a what-if patch, a second line saying how many cells it changes."""
    s = result.summary()
    parts = [f"{s['cells']} cells", f"{s['matches']} match"]
    parts.append(f"{s['mismatches']} differ{'s' if s['mismatches'] == 1 else ''}")
    if s["errors"]:
        parts.append(f"{s['errors']} error{'s' if s['errors'] != 1 else ''}")
    head = f"matrix: {parts[0]}: " + ", ".join(parts[1:])
    ne = s["not_exhaustive"]
    if ne:
        groups: dict[tuple, list[str]] = {}
        for c in ne:
            groups.setdefault((c["scenario"].rsplit("::", 1)[-1], _bound(c["bound"])), []).append(c["kernel"])
        head += f"; {len(ne)} not exhaustive: " + ", ".join(
            f"{name} {kernel_ranges(ks, result.kernels)} ({bound})" for (name, bound), ks in groups.items())
    else:
        head += "; all exhaustive"
    head += f"; {s['seconds']:.1f}s on {s['jobs']} process{'es' if s['jobs'] != 1 else ''}"
    lines = [head]
    if s["interrupted"]:
        lines.append(f"interrupted: {s['cells']} of {s['planned']} cells run")
    what = [f"with patch {p}" for p in s["patches"]] + [f"without {w}" for w in s["without"]]
    if what:
        n = s["mismatches"]
        lines.append(f"{', '.join(what)}: {n} cell{'s' if n != 1 else ''} differ"
                     f"{'s' if n == 1 else ''} from the series' expectations")
    return "\n".join(lines)
