"""Counterexamples people can read, in the shape kernel commit messages draw races::

    step  CPU 0: cpu_fault                     CPU 1: migrate
    ----  -----------------------------------  -----------------------------------
       0  do_user_addr_fault: lock_mm_...
     3-7                                       ... 5 steps: do_user_addr_fault,
                                               handle_mm_fault, dmirror_devmem_fault
      18                                       get_page
                                                 pfn 0x400007 _refcount 1 -> 2
    >> 88 dmirror_devmem_fault: vmf->page->...
          !! use_after_free

One column per thread, one row per step, no box borders.  A cell names the kernel function and
the primitive it performed (a named sync object by its name: ``READ_ONCE(cpu1 idle)``), then the
refcount, mapcount, flag and pgmap changes the step made (changes to the same value are left
out).  Runs of one thread's steps that change nothing and find nothing are folded into one row
listing the kernel functions they ran.  The step where a finding showed is marked ``>>``.
"""

from __future__ import annotations

import inspect
import textwrap
from functools import lru_cache

from ..rt.replay import Step, Trace

#: a run of at least this many uneventful steps of one thread is folded into one row
FOLD = 3
#: primitives that only read a static key: an uneventful step doing one is always folded
#: (into the next row of its thread, or a row naming its function alone)
QUIET = frozenset({"static_branch_unlikely", "static_branch_likely", "static_key_enabled"})
#: the widest a thread's column grows when there is room
MAX_COL = 64
GAP = 2


@lru_cache(maxsize=1)
def _generic() -> tuple[frozenset[str], frozenset[str]]:
    """The default labels of the sync primitives (``READ_ONCE``, ``atomic_read``, ...) and the
    default names of sync objects (``var``, ``lock``): a step labelled with the first on an
    object whose name is not one of the second shows the object's name."""
    from ..sync import primitives

    labels: set[str] = set()
    names: set[str] = set()
    for cls in vars(primitives).values():
        if not inspect.isclass(cls):
            continue
        for attr, fn in vars(cls).items():
            if not inspect.isfunction(fn):
                continue
            params = inspect.signature(fn).parameters
            p = params.get("label")
            if p is not None and isinstance(p.default, str):
                labels.add(p.default)
            p = params.get("name")
            if attr == "__init__" and p is not None and isinstance(p.default, str):
                names.add(p.default)
    return frozenset(labels), frozenset(names)


def step_head(st: Step) -> str:
    """``function: primitive`` of one step, with a named object's name where the primitive is a
    bare ``READ_ONCE`` / ``atomic_read`` / ... ."""
    labels, default_names = _generic()
    label = st.label
    if label in labels and st.obj and st.obj not in default_names and st.obj not in label:
        label = f"{label}({st.obj})"
    if not st.func or st.func == st.label:
        return label
    return f"{st.func}: {label}"


def _event_lines(st: Step) -> list[str]:
    raw = getattr(st, "raw_events", None)
    if raw is None:         # a Step made elsewhere: the strings as they are
        return list(st.events)
    out = []
    for e in raw:
        if e.old == e.new:
            continue
        where = f"pfn {e.pfn:#x} " if e.pfn is not None else ""
        who = "" if e.func in (st.func, st.label) else f"{e.func}: "
        out.append(f"{who}{where}{e.field} {e.old} -> {e.new}")
    return out


def _eventful(st: Step, marks: set[int]) -> bool:
    return bool(st.findings or st.index in marks or _event_lines(st))


def _rows(steps: list[Step], marks: set[int]) -> list[tuple[str, int, list[str], bool]]:
    """``(step label, thread, cell lines, marked)``: a run of :data:`FOLD` or more uneventful
    steps of one thread is one row naming the kernel functions it ran; a shorter run followed by
    an eventful step of the same thread shares that step's row (``22-23``)."""
    rows: list[tuple[str, int, list[str], bool]] = []

    def cell(st: Step) -> list[str]:
        return [step_head(st)] + ["  " + e for e in _event_lines(st)] + [f"!! {f.kind}" for f in st.findings]

    i = 0
    while i < len(steps):
        st = steps[i]
        j = i
        while j < len(steps) and steps[j].thread == st.thread and not _eventful(steps[j], marks):
            j += 1
        if j - i >= FOLD or (j - i == 1 and st.label in QUIET and st.index not in marks
                             and not (j < len(steps) and steps[j].thread == st.thread)):
            funcs: list[str] = []
            for s in steps[i:j]:
                name = s.func or s.label
                if name and (not funcs or funcs[-1] != name):
                    funcs.append(name)
            if j - i == 1:
                rows.append((str(st.index), st.thread, [f"... {', '.join(funcs)}"], False))
            else:
                rows.append((f"{steps[i].index}-{steps[j - 1].index}", st.thread,
                             [f"... {j - i} steps: {', '.join(funcs)}"], False))
            i = j
        elif j > i and j < len(steps) and steps[j].thread == st.thread:
            rows.append((f"{st.index}-{steps[j].index}", st.thread, cell(steps[j]), steps[j].index in marks))
            i = j + 1
        else:
            rows.append((str(st.index), st.thread, cell(st), st.index in marks))
            i += 1
    return rows


def _fit(need: list[int], avail: int) -> list[int]:
    """Column widths: each thread's natural width when they all fit, else the narrow ones keep
    theirs and the wide ones share what is left equally (at least 12 columns each)."""
    if sum(need) <= avail:
        return need
    out = list(need)
    wide = sorted(range(len(need)), key=lambda t: need[t])
    left, count = avail, len(need)
    for t in wide:
        share = left // count
        out[t] = max(12, min(need[t], share))
        left -= out[t]
        count -= 1
    return out


def render(trace: Trace, mark_steps: set[int] | None = None, upto: int | None = None,
           width: int | None = None) -> str:
    """The interleaving table of ``trace`` fitting ``width`` columns (default: the output's width
    less the 4 columns callers indent it by); rows in ``mark_steps`` get ``>>``; rows after
    ``upto`` are summarised in one line."""
    if width is None:
        from .console import width as out_width
        width = out_width() - 4
    names = trace.names
    n = max(1, len(names))
    marks = mark_steps if mark_steps is not None else {s.index for s in trace.steps if s.findings}
    steps = trace.steps if upto is None else trace.steps[: upto + 1]
    rows = _rows(steps, marks)
    idx_w = max(4, max((len(r[0]) for r in rows), default=4)) + 3      # ">> " + the step label
    heads = [f"CPU {t}: {nm}" if len(names) > 1 else nm for t, nm in enumerate(names)]
    need = [len(h) for h in heads] + [0] * (n - len(heads))
    for _label, thread, lines, _m in rows:
        need[thread] = max(need[thread], *(len(x) for x in lines))
    cols = _fit([min(MAX_COL, w) for w in need], max(12 * n, width - idx_w - GAP * n))

    def line(num: str, cells: list[str]) -> str:
        return (num.rjust(idx_w) + "".join(" " * GAP + c.ljust(w) for c, w in zip(cells, cols))).rstrip()

    out = [line("step", [h[:w] for h, w in zip(heads, cols)]),
           line("----", ["-" * min(w, max(len(h), 4)) for h, w in zip(heads, cols)])]
    for label, thread, lines, marked in rows:
        wrapped: list[str] = []
        for text in lines:
            indent = " " * (len(text) - len(text.lstrip(" "))) + "  "
            wrapped.extend(textwrap.wrap(text, cols[thread], subsequent_indent=indent, break_on_hyphens=False,
                                         drop_whitespace=True) or [""])
        for j, text in enumerate(wrapped):
            num = ((">> " if marked else "") + label) if j == 0 else ""
            cells = [""] * n
            cells[thread] = text
            out.append(line(num, cells))
    if trace.waiting and (upto is None or upto >= len(trace.steps) - 1):
        cells = [""] * n
        for t, what in trace.waiting.items():
            cells[t] = textwrap.shorten(what, cols[t], placeholder="...")
        out.append(line("end", cells))
    if upto is not None and len(trace.steps) > upto + 1:
        out.append(f"  ({len(trace.steps) - upto - 1} more steps to the end of the execution)")
    return "\n".join(out)


def shared(findings: list, label: str = "finding {i}") -> list[tuple[str | None, str | None]]:
    """Per finding, ``(table, None)`` for the first finding of each schedule -- the fullest of
    the tables of the findings that share that schedule -- or ``(None, "finding 1")`` naming the
    finding whose table shows its interleaving."""
    best: dict[str, str] = {}
    first: dict[str, int] = {}
    for i, f in enumerate(findings, 1):
        if not f.table:
            continue
        key = f.schedule
        first.setdefault(key, i)
        if key not in best or f.table.count("\n") > best[key].count("\n"):
            best[key] = f.table
    out: list[tuple[str | None, str | None]] = []
    for i, f in enumerate(findings, 1):
        if not f.table:
            out.append((None, None))
        elif first[f.schedule] == i:
            out.append((best[f.schedule], None))
        else:
            out.append((None, label.format(i=first[f.schedule])))
    return out
