"""``zonedev lifecycle``: one device page's life on one kernel, or on all of them side by side.

memremap -> allocate -> get -> pin -> put -> unpin -> free -> memunmap, with the page's
refcount, the pgmap reference count and the callbacks the kernel ran after each step.  The
driver is ``zonedev.linux.drivers.example``.
"""

from __future__ import annotations

import sys
import traceback

import click

from ._errors import BadInput, dumps, fail

from ..lifecycle import PHASES, lifecycle
from ..linux.drivers.example import TYPES
from ..patches import KERNELS, PatchFileError, UnknownKernel

def _key(r: dict, i: int) -> tuple:
    """What a cell shows: refcount, pgmap refs and violations of step ``i`` (or absence)."""
    if r.get("absent"):
        return ("absent",)
    s = r["steps"][i]
    return (s["refcount"], s["pgmap_refs"], tuple(s["violations"]))


def _previous(name: str) -> str | None:
    i = KERNELS.index(name) if name in KERNELS else -1
    return KERNELS[i - 1] if i > 0 else None


def _call_key(r: dict, i: int) -> tuple:
    """What the calls section shows of step ``i``: the kernel call and the callbacks it ran."""
    if r.get("absent"):
        return ("absent",)
    s = r["steps"][i]
    return (str(s["op"]), tuple(map(str, s["callbacks"])))


def changed_by(results: list[dict], kind: str, key=_key, memo: dict | None = None) -> dict[tuple[str, int], object]:
    """``(kernel, step index) -> Patch``: for each cell that differs from the kernel just before
    (the previous modelled kernel, run if not among ``results``), the patch of the series that
    first made it differ.  The patches between the two kernels are applied one at a time, in
    merge order, on top of the older kernel; a prefix that cannot run the lifecycle (it calls a
    function a later patch of the same release brings) is passed over.  Only plain kernels.
    ``key`` says what of a step is compared (:func:`_key`: the cell's numbers and violations);
    ``memo`` keeps the runs of kernels and prefixes for another call."""
    from ..patches import patches_for
    memo = {} if memo is None else memo
    done = memo.setdefault("kernels", {})
    done.update({r["kernel"]: r for r in results})
    out: dict[tuple[str, int], object] = {}
    for r in results:
        name = r["kernel"]
        prev = _previous(name)
        if prev is None or name not in KERNELS or r.get("built_as"):
            continue
        if prev not in done:
            done[prev] = lifecycle(prev, kind)
        before = done[prev]
        if key is not _key and (r.get("absent") or before.get("absent")):
            continue                    # a type coming in is marked once, on the cells
        cells = range(1) if r.get("absent") or before.get("absent") else range(len(PHASES))
        differ = [i for i in cells if key(r, i) != key(before, i)]
        if not differ:
            continue
        old = patches_for(prev)
        new = [p for p in patches_for(name) if p not in old]
        if len(new) == 1:
            for i in differ:
                out[(name, i)] = new[0]
            continue
        left = set(differ)
        for j in range(1, len(new) + 1):
            if not left:
                break
            if j == len(new):
                step_r = r
            else:
                runs = memo.setdefault("prefixes", {})
                if (prev, name, j) not in runs:
                    try:
                        runs[(prev, name, j)] = lifecycle(f"{prev}+{j}", kind, patches=tuple(old) + tuple(new[:j]))
                    except Exception:       # an untestable prefix: pass it over
                        runs[(prev, name, j)] = None
                step_r = runs[(prev, name, j)]
                if step_r is None:
                    continue
            for i in sorted(left):
                if key(step_r, i) != key(before, i):
                    out[(name, i)] = new[j - 1]
                    left.discard(i)
    return out


def _groups(results: list[dict]) -> list[list[dict]]:
    """Consecutive kernels whose life is the same (numbers, calls, callbacks, violations)."""
    def sig(r: dict) -> tuple:
        if r.get("absent"):
            return ("absent",)
        return tuple((s["refcount"], s["pgmap_refs"], str(s["op"]), tuple(map(str, s["callbacks"])),
                      tuple(s["violations"])) for s in r["steps"])
    groups: list[list[dict]] = []
    for r in results:
        if groups and sig(groups[-1][-1]) == sig(r) and not r.get("built_as"):
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _span(group: list[dict]) -> str:
    """``v5.7..v5.17`` for consecutive modelled kernels, else the names (``v5.17, v6.1``)."""
    return _kernels([r["kernel"] for r in group])


def _letters():
    import string
    for c in string.ascii_lowercase:
        yield c
    for c1 in string.ascii_lowercase:
        for c2 in string.ascii_lowercase:
            yield c1 + c2


def render_lifecycle(results: list[dict], kind: str, nr_pages: int = 4, columns: int | None = None) -> str:
    """The text ``zonedev lifecycle`` prints: one row per kernel (consecutive kernels with the
    same life share a row), one column per step; each cell ``refcount/pgmap refs``, marked with
    the letter of the patch that changed it from the kernel before; then the kernel calls and
    callbacks of each step, the patches, a legend and the violations in the kernel's words."""
    from rich.table import Table
    from rich.text import Text

    from ..report.console import render

    memo: dict = {}
    changes = changed_by(results, kind, memo=memo)
    call_changes = changed_by(results, kind, key=_call_key, memo=memo)
    letter_of: dict[int, str] = {}
    patches: list = []
    letters = _letters()

    def mark(name: str, i: int, table: dict | None = None) -> str:
        p = (changes if table is None else table).get((name, i))
        if p is None:
            return ""
        if id(p) not in letter_of:
            letter_of[id(p)] = next(letters)
            patches.append(p)
        return letter_of[id(p)]

    violations: list[tuple[str, str, str, str]] = []     # (number, kernels, step, text)
    single = len(results) == 1
    groups = _groups(results)
    present = [g for g in groups if not g[0].get("absent")]
    type_name = next((g[0].get("pgmap_type") for g in present), None) or kind
    title = f"{kind}: a {type_name} page of the example driver ({nr_pages} pages), step by step"
    if single and not present:
        return title

    if single:
        r = results[0]
        t = Table(title=None, box=None, pad_edge=False, show_edge=False, header_style="bold")
        t.add_column("step", no_wrap=True)
        t.add_column("r/p", no_wrap=True)
        t.add_column("kernel call", overflow="fold")
        t.add_column("callbacks run", overflow="fold")
        t.add_column("violation", overflow="fold")
        for i, (phase, s) in enumerate(zip(PHASES, r["steps"])):
            m = mark(r["kernel"], i)
            vtext = ""
            for kind_, words in zip(s["violations"], s.get("violation_words") or s["violations"]):
                violations.append((str(len(violations) + 1), r["kernel"], phase, f"{kind_}: {words}"))
                vtext += f"!{len(violations)} {kind_} "
            t.add_row(phase, f"{s['refcount']}/{s['pgmap_refs']}" + (f" {m}" if m else ""), str(s["op"]),
                      ", ".join(map(str, s["callbacks"])), Text(vtext.strip(), style="bold red"))
        head = f"{r['kernel']}: {title}" + (f" (built as {r['built_as']})" if r.get("built_as") else "")
        parts: list = [head, t]
    else:
        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", collapse_padding=True)
        t.add_column("kernel", no_wrap=True)
        for phase in PHASES:
            t.add_column(phase, no_wrap=False, overflow="fold")
        for g in groups:
            r = g[0]
            if r.get("absent"):
                m = mark(r["kernel"], 0)
                t.add_row(_span(g) + (f" {m}" if m else ""), *["-"] * len(PHASES))
                continue
            row = []
            for i, (phase, s) in enumerate(zip(PHASES, r["steps"])):
                m = mark(r["kernel"], i)
                cell = Text(f"{s['refcount']}/{s['pgmap_refs']}")
                if m:
                    cell.append(f" {m}", style="cyan")
                for kind_, words in zip(s["violations"], s.get("violation_words") or s["violations"]):
                    violations.append((str(len(violations) + 1), _span(g), phase, f"{kind_}: {words}"))
                    cell.append(f" !{len(violations)}", style="bold red")
                row.append(cell)
            t.add_row(_span(g), *row)
        parts = [title, t]
        # the kernel calls and callbacks of each step, with the kernels that ran them
        calls = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
        calls.add_column("step", no_wrap=True)
        calls.add_column("calls", overflow="fold")
        for i, phase in enumerate(PHASES):
            seen: list[list] = []
            for g in present:
                s = g[0]["steps"][i]
                what = str(s["op"]) + (" -> " + ", ".join(map(str, s["callbacks"])) if s["callbacks"] else "")
                if seen and seen[-1][0] == what:
                    seen[-1][1] += [r["kernel"] for r in g]
                else:
                    seen.append([what, [r["kernel"] for r in g]])
            calls.add_row(phase, "; ".join(
                f"{w} ({_kernels(ks)})" + (f" {m}" if (m := mark(ks[0], i, call_changes)) else "")
                for w, ks in seen))
        parts += ["", "kernel calls of each step (-> the callbacks the kernel ran), the kernels that make them "
                  "and the patch that changed them:", calls]
    if patches:
        pt = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
        pt.add_column("", no_wrap=True)
        pt.add_column("", overflow="fold")
        for p in patches:
            pt.add_row(f"  {letter_of[id(p)]}", f"{p.commit[:12]} {p.title} ({p.version})")
        shown = [r["kernel"] for r in results]
        gaps = [f"{n} from {_previous(n)}" for n in shown[1:] if n in KERNELS and _previous(n) != shown[shown.index(n) - 1]]
        what = ("the patch that changed the cell or the call from the modelled kernel just before"
                + (f" ({', '.join(gaps)})" if gaps else "")
                if not single else f"the patch that changed the cell from {_previous(results[0]['kernel'])}")
        parts += ["", f"{what}:", pt]
    parts += ["", _legend(results, nr_pages, kind, marks=bool(patches), violations=bool(violations),
                          absent=any(r.get("absent") for r in results))]
    if violations:
        parts += ["", "violations, in the kernel's words:"]
        vt = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
        vt.add_column("", no_wrap=True, style="bold red")
        vt.add_column("", overflow="fold")
        for n, where, phase, text in violations:
            vt.add_row(f"  !{n}", f"{where}, {phase}: {text}")
        parts.append(vt)
    return render(*parts, columns=columns)


def _legend(results: list[dict], nr_pages: int, kind: str, marks: bool, violations: bool, absent: bool) -> str:
    """What ``r/p`` means, with the kernels where the pgmap count holds page references."""
    at_map: list[str] = []
    per_alloc: list[str] = []
    per_ref: list[str] = []
    for r in results:
        if r.get("absent"):
            continue
        st = r["steps"]
        p = [s["pgmap_refs"] for s in st]
        c = [s["refcount"] for s in st]
        if None in p or None in c:
            continue
        if p[0] == 1 + nr_pages:
            at_map.append(r["kernel"])
        if p[1] == p[0] + 1:
            per_alloc.append(r["kernel"])
        if p[2] - p[1] == c[2] - c[1] != 0:
            per_ref.append(r["kernel"])
    text = ("r/p: r is the page's refcount (page_ref_count() of the page the driver allocates), "
            "p the count of the pgmap's percpu_ref (pgmap->ref): the reference the pgmap holds on "
            "itself until teardown kills it")
    extra = []
    if at_map:
        extra.append(f"one per page of the range, taken when it is mapped ({_kernels(at_map)}: "
                     f"{1 + nr_pages} = 1 + {nr_pages} pages)")
    if per_alloc:
        extra.append(f"one per allocated page, dropped when the page is freed ({_kernels(per_alloc)})")
    if per_ref:
        extra.append(f"one per page reference, taken and dropped with the page's ({_kernels(per_ref)})")
    if extra:
        text += ", plus " + "; ".join(extra)
    text += "."
    if marks:
        text += (" A letter marks a cell (or a call) that differs from the kernel before and names the patch "
                 "that made it differ.")
    if violations:
        text += " !N is a violation, listed below."
    if absent:
        text += f" - : the kernel has no {kind} pgmap type."
    return text


def _kernels(names: list[str]) -> str:
    """``v5.0, v5.2, v5.3`` -> ``v5.0..v5.3`` where the names are consecutive modelled kernels."""
    runs: list[list[str]] = []
    for n in names:
        if runs and n in KERNELS and runs[-1][-1] in KERNELS and KERNELS.index(n) == KERNELS.index(runs[-1][-1]) + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(r[0] if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


@click.command("lifecycle")
@click.option("--kernel", "kernel_name", default="newest", show_default=True,
              help="a kernel: a version (6.12, 6.1.0-56-amd64), a modelled name, a comma list, or 'all'")
@click.option("--type", "kind", type=click.Choice(TYPES), default="private", show_default=True,
              help="the pgmap type of the example driver's pages")
@click.option("--without", "without", multiple=True, metavar="COMMIT",
              help="leave this patch out (a commit id prefix, 7+ characters); repeatable")
@click.option("--patch", "extra", multiple=True, metavar="FILE",
              help="apply a patch of your own (a Python file defining PATCH) on top; repeatable")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def command(kernel_name: str, kind: str, without: tuple, extra: tuple, as_json: bool) -> None:
    """Print a device page's life (memremap, allocate, get, pin, put, unpin, free, memunmap):
    the page refcount and pgmap reference count after each step, the patch that changed each
    value, and the violations in the kernel's words (exit 1 when one is shown).

    \b
    Examples:
      zonedev lifecycle
      zonedev lifecycle --kernel all --type fsdax
      zonedev lifecycle --kernel 6.1 --without 0dc45ca1ce18
      zonedev lifecycle --kernel v5.18,v6.1 --json"""
    from .check import check_patch_options, resolve_kernels
    names = resolve_kernels((kernel_name,))
    check_patch_options(without, extra)
    single = len(names) == 1
    try:
        results = [lifecycle(n, kind, without=without, extra=extra) for n in names]
    except UnknownKernel as e:
        fail(f"--without: {e}")
    except PatchFileError as e:
        fail(str(e))
    except BaseException as e:
        if not (without or extra) or type(e).__name__ == "Interrupted":
            raise
        # a patch set the example driver cannot run on (it needs a function or fact that the
        # left-out patch provided), or a user patch whose code fails
        raise BadInput(f"{_patch_where(e, extra) or '--patch' if extra else '--without'}: this patch set "
                       f"cannot run the {kind} lifecycle: {type(e).__name__}: {e}".rstrip(": ")) from None
    if single and results[0].get("absent"):
        if as_json:
            click.echo(dumps(results, indent=1))
            return
        fail(f"--type: {results[0]['reason']}")
    if as_json:
        click.echo(dumps(results, indent=1))
    else:
        click.echo(render_lifecycle(results, kind))
    if any(s["violations"] for r in results for s in r["steps"]):
        sys.exit(1)


def _patch_where(e: BaseException, files: tuple) -> str:
    """``file:line`` of the innermost frame of ``e`` in one of the user's patch files."""
    import os
    wanted = {os.path.realpath(f) for f in files}
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if os.path.realpath(fr.filename) in wanted:
            return f"{fr.filename}:{fr.lineno}"
    return ""
