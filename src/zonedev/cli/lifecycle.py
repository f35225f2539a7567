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

from ..linux.drivers.example import TYPES, ExampleDriver, UnknownType
from ..patches import KERNELS, PatchFileError, UnknownKernel, kernel
from ..sync import World, use_world
from ..sync.world import WouldBlockForever

PHASES = ("memremap", "allocate", "get", "pin", "put", "unpin", "free", "memunmap")


def _callbacks(events, start: int) -> list[str]:
    out = []
    for e in events[start:]:
        f = e.field
        if f == "callback" or f.endswith(".callback"):
            out.append(e.new)
        elif f.endswith(".done"):
            out.append(e.func)
    return out


def lifecycle(kernel_name: str, kind: str, nr_pages: int = 4, without=(), extra=(), keep: dict | None = None) -> dict:
    """Run the life of one page; the JSON object ``zonedev lifecycle --json`` prints.

    A kernel without that pgmap type gives ``{"kernel", "type", "absent": true, "steps": []}``.
    ``keep``, when given, receives the run's ``world``, kernel ``k`` and ``pgmap`` (for exports).
    """
    with use_world(World()) as world:
        k = kernel(kernel_name, without=tuple(without), extra=tuple(extra))
        try:
            drv = ExampleDriver(k, kind, nr_pages=nr_pages)
        except UnknownType as e:
            return {"kernel": kernel_name, "type": kind, "absent": True, "reason": str(e), "steps": []}
        pgmap = drv.pgmap
        if keep is not None:
            keep.update(world=world, k=k, pgmap=pgmap)
        steps: list[dict] = []
        page = None

        def step(phase, fn):
            ev, vi = len(world.events), len(world.violations)
            try:
                op = fn()
            except WouldBlockForever as e:
                op = f"hang: {e}"
            ref = pgmap.ref
            shown = page if page is not None else (pgmap.pages[0] if pgmap.pages else None)
            steps.append({
                "phase": phase,
                "op": op,
                "refcount": shown._refcount.peek() if shown is not None else None,
                "pgmap_refs": ref.count if ref is not None else None,
                "pgmap_ref_state": _ref_state(ref),
                "callbacks": _callbacks(world.events, ev),
                "violations": [v.kind for v in world.violations[vi:]],
            })

        step("memremap", drv.probe)

        def allocate():
            nonlocal page
            page, op = drv.alloc()
            return op or "get_page, lock_page"   # the oldest kernels: a plain reference, locked
        step("allocate", allocate)
        step("get", lambda: (k.get_page(page), "get_page")[1])
        if k.has("pin_user_page"):
            step("pin", lambda: (k.pin_user_page(page), "pin_user_page")[1])
            step("put", lambda: (k.put_page(page), "put_page")[1])
            step("unpin", lambda: (k.unpin_user_page(page), "unpin_user_page")[1])
        else:   # before v5.6 a DMA user held a plain get_user_pages() reference
            step("pin", lambda: (k.get_user_page_ref(page), "get_user_pages")[1])
            step("put", lambda: (k.put_page(page), "put_page")[1])
            step("unpin", lambda: (k.put_page(page), "put_page")[1])
        step("free", lambda: drv.release(page))
        step("memunmap", drv.remove)
        out = {"kernel": kernel_name, "type": kind, "pgmap_type": drv.type, "pfn": page.pfn,
               "steps": steps}
        if without or extra:
            out["built_as"] = k.name
        return out


def _ref_state(ref) -> str | None:
    if ref is None:
        return None
    if ref.exited:
        return "exited"
    if ref.released:
        return "drained"
    if ref.dead:
        return "killed"
    return "live"


def _cell(r: dict, i: int) -> str:
    if r.get("absent"):
        return "(absent)"
    s = r["steps"][i]
    cb = ",".join(map(str, s["callbacks"]))
    cell = f"{s['refcount']}/{s['pgmap_refs']}" + (f" [{cb}]" if cb else "")
    if s["violations"]:
        cell += " !" + ",".join(s["violations"])
    return cell


def _table(results: list[dict]) -> str:
    """Rows = steps; one column per kernel, as wide as its widest cell:
    ``refcount/pgmap refs [callbacks] !violations``; with one kernel, the kernel call too."""
    heads = [f"{r['kernel']} {(r.get('pgmap_type') or '').replace('MEMORY_DEVICE_', '')}".rstrip()
             for r in results]
    cols = [[_cell(r, i) for i in range(len(PHASES))] for r in results]
    if len(results) == 1 and not results[0].get("absent"):
        heads.append("kernel call")
        cols.append([str(s["op"]) for s in results[0]["steps"]])
    widths = [max(len(h), *(len(c) for c in col)) + 2 for h, col in zip(heads, cols)]
    head = f"{'step':<10}" + "".join(f"{h:<{w}}" for h, w in zip(heads, widths))
    lines = [head.rstrip(), "-" * len(head.rstrip())]
    for i, phase in enumerate(PHASES):
        lines.append((f"{phase:<10}" + "".join(f"{col[i]:<{w}}" for col, w in zip(cols, widths))).rstrip())
    lines.append("cells: page refcount/pgmap percpu_ref count [callbacks run] !violations")
    return "\n".join(lines)


@click.command("lifecycle")
@click.option("--kernel", "kernel_name", default="newest", show_default=True,
              help="a kernel: a version (6.12, 6.1.0-56-amd64), a modelled name, a comma list, or 'all'")
@click.option("--type", "kind", default="private", show_default=True, help="|".join(TYPES))
@click.option("--without", "without", multiple=True, metavar="COMMIT",
              help="leave this patch out (a commit id prefix, 7+ characters); repeatable")
@click.option("--patch", "extra", multiple=True, metavar="FILE",
              help="apply a patch of your own (a Python file defining PATCH) on top; repeatable")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def command(kernel_name: str, kind: str, without: tuple, extra: tuple, as_json: bool) -> None:
    """Print a device page's life (memremap, allocate, get, pin, put, unpin, free, memunmap)."""
    if kind not in TYPES:
        fail(f"--type: unknown type {kind!r}; known: {', '.join(TYPES)}")
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
        click.echo(_table(results))


def _patch_where(e: BaseException, files: tuple) -> str:
    """``file:line`` of the innermost frame of ``e`` in one of the user's patch files."""
    import os
    wanted = {os.path.realpath(f) for f in files}
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if os.path.realpath(fr.filename) in wanted:
            return f"{fr.filename}:{fr.lineno}"
    return ""
