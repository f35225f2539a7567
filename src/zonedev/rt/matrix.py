"""The matrix: every scenario with expected verdicts, on every kernel it applies to.

A *row* is a scenario that declares ``expect=`` (see :mod:`zonedev.rt.expect`); a *column* is a
modelled kernel; a *cell* is one :func:`zonedev.rt.check.check` of that scenario on that kernel,
exhaustive unless the scenario declares a ``bound``.  A cell records what was found (``"safe"``
or the sorted finding kinds), what the scenario expected there, whether they agree, how the
search went (exhaustive or not, executions, seconds), the scenario's references, and the
counterexample of its first finding as plain data: the threads, and each step's thread, kernel
function, primitive label and refcount/pgmap events, the failing step marked (the material of a
race diagram; ``report/`` draws it).

Cells run in a process pool, one cell a task, so a slow cell does not hold up the others; with
``jobs=1`` they run in this process.  Workers return plain dicts (nothing from the model crosses
a process boundary).  A scenario that raises is a cell with an ``error``, never a crash; an
interrupted run (Ctrl-C) keeps the cells done so far.

With ``patches``/``without`` the expectations stay those the scenario declares for the series'
kernels, so the cells a what-if patch changes show as mismatches: that is the point of trying a
patch on the matrix.

This module is the rt layer's: it reads scenarios and runs the checker, and draws nothing.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..patches import KERNELS, PatchFileError, UnknownKernel, kernel as make_kernel, resolve_list
from .check import build_kernel, check
from .engine import Runner
from .expect import verdict_of
from .guard import Interrupted
from .outcome import clear_stop, request_stop, stop_requested
from .replay import replay
from .scenario import Scenario, ScenarioFileError, load_scenarios

__all__ = ["MatrixError", "MatrixResult", "Row", "collect", "default_library", "matrix", "run_cell"]

#: steps kept after the failing step in a counterexample when the execution runs on much longer
#: (the same cut as the text table's: the race is before the failure, the rest is unwinding)
TAIL = 13

#: the directory name of what-if patch files inside a scenario library (not scenarios)
PATCH_DIR = "patches"


class MatrixError(ValueError):
    """Input the matrix cannot use: ``WHERE: reason`` (one line)."""


@dataclass(frozen=True)
class Row:
    """One scenario with expectations: ``spec`` is ``FILE::NAME`` with FILE as the user can
    type it from the current directory."""

    spec: str
    file: str
    name: str
    path: str                   # the file, absolute (what workers load)
    scenario: Scenario = field(compare=False, repr=False)


# -- collecting rows -------------------------------------------------------------------------------

def default_library(cwd: str | Path | None = None) -> Path:
    """The ``scenarios/`` directory of the checkout: in ``cwd`` or the nearest parent holding one."""
    here = Path(cwd or os.getcwd()).resolve()
    for d in (here, *here.parents):
        lib = d / "scenarios"
        if lib.is_dir():
            return lib
    raise MatrixError(f"scenarios/: no scenario library in {here} or any parent directory "
                      f"(run in a zonedev checkout, or name FILE|DIR|FILE::NAME)")


def _display(path: Path, cwd: Path) -> str:
    """``path`` as the user would type it from ``cwd`` (relative below it, else absolute)."""
    path = path.resolve()
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _library_files(d: Path) -> list[Path]:
    """The Python files of a scenario directory, sorted; ``patches/`` (what-if patch files),
    private files (``_x.py``) and caches are not scenarios."""
    out = []
    for f in sorted(d.rglob("*.py")):
        rel = f.relative_to(d).parts
        if any(p == PATCH_DIR or p == "__pycache__" or p.startswith((".", "_")) for p in rel):
            continue
        out.append(f)
    return out


def _load(path: Path) -> dict[str, Scenario]:
    try:
        return load_scenarios(path)
    except ScenarioFileError as e:
        raise MatrixError(str(e)) from None


def _load_library_file(path: Path) -> dict[str, Scenario]:
    """A file of a library directory: its scenarios, none for a file that defines no scenario at
    all (a helper module, skipped)."""
    try:
        return load_scenarios(path)
    except ScenarioFileError as e:
        if "defines no scenario" in str(e):
            return {}
        raise MatrixError(str(e)) from None


def collect(paths: Iterable[str] = (), cwd: str | Path | None = None) -> list[Row]:
    """Rows from ``FILE``, ``DIR`` or ``FILE::NAME`` arguments (the default library when none):
    the scenarios that declare ``expect=``, in file order, each once."""
    cwd = Path(cwd or os.getcwd()).resolve()
    args = list(paths) or [_display(default_library(cwd), cwd)]
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()

    def add(path: Path, sc: Scenario) -> None:
        key = (str(path.resolve()), sc.name)
        if key not in seen:
            seen.add(key)
            disp = _display(path, cwd)
            rows.append(Row(f"{disp}::{sc.name}", disp, sc.name, str(path.resolve()), sc))

    for arg in args:
        file, sep, name = str(arg).partition("::")
        path = Path(file) if Path(file).is_absolute() else cwd / file
        try:
            path.is_dir()
        except (OSError, ValueError) as e:          # a name too long, a NUL byte
            shown = file if len(file) <= 120 else file[:117] + "..."
            raise MatrixError(f"{shown}:0: {getattr(e, 'strerror', None) or e}") from None
        if sep:
            if not path.is_file():
                raise MatrixError(f"{file}:0: no such scenario file")
            found = _load(path)
            if name not in found:
                raise MatrixError(f"{file}:1: no scenario {name!r} (scenarios: {', '.join(found)})")
            sc = found[name]
            if sc.expect is None:
                raise MatrixError(f"{file}:{sc.line}: scenario {name} declares no expect= "
                                  f"(the matrix runs scenarios with expected verdicts)")
            add(path, sc)
        elif path.is_dir():
            for f in _library_files(path):
                for sc in _load_library_file(f).values():
                    if sc.expect is not None:
                        add(f, sc)
        elif path.is_file():
            with_expect = [sc for sc in _load(path).values() if sc.expect is not None]
            if not with_expect:
                raise MatrixError(f"{file}:1: no scenario declares expect= "
                                  f"(the matrix runs scenarios with expected verdicts)")
            for sc in with_expect:
                add(path, sc)
        else:
            raise MatrixError(f"{file}:0: no such scenario file or directory")
    if not rows:
        raise MatrixError(f"{args[0]}: no scenario declares expect= (the matrix runs scenarios "
                          f"with expected verdicts)")
    return rows


def kernels_of(kernel: str | Iterable[str] | None) -> list[str]:
    """``--kernel`` values as users write them (``all``, ``6.12``, comma lists) -> modelled
    kernels, in the order given; empty for None."""
    if kernel is None:
        return []
    items = [kernel] if isinstance(kernel, str) else list(kernel)
    try:
        return [r.name for r in resolve_list([k for k in items if k])]
    except UnknownKernel as e:
        raise MatrixError(f"--kernel: {e}") from None


def _validate_patches(kernels: list[str], patches: tuple, without: tuple) -> None:
    """Build each column's kernel once with the patches, so a patch that does not load (or a
    ``--without`` that names nothing, or cannot be reverted) is refused before any cell runs."""
    if not patches and not without:
        return
    for k in kernels:
        try:
            make_kernel(k, without=without, extra=patches)
        except PatchFileError as e:
            raise MatrixError(str(e)) from None
        except UnknownKernel as e:
            raise MatrixError(f"--without: {e}" if without else str(e)) from None


# -- one cell --------------------------------------------------------------------------------------

def _plain(v: Any) -> Any:
    """An event value as JSON-safe data."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def counterexample(scenario: Scenario, kernel: str, finding: Any, params: dict,
                   patches: tuple = (), without: tuple = ()) -> dict[str, Any]:
    """The finding's schedule replayed with the event log on, as plain data (see docs/json.md)."""
    proto, _ = build_kernel(scenario, kernel, patches, without)
    trace = replay(Runner(scenario, proto, params), finding.schedule)
    fail = finding.step if 0 <= finding.step < len(trace.steps) else None
    last = len(trace.steps) if fail is None or fail >= len(trace.steps) - TAIL else fail + 1
    steps = []
    for st in trace.steps[:last]:
        steps.append({
            "step": st.index, "thread": st.thread, "function": st.func, "label": st.label,
            "object": st.obj,
            "events": [{"function": e.func, "pfn": e.pfn, "field": e.field,
                        "old": _plain(e.old), "new": _plain(e.new), "text": str(e)} for e in st.raw_events],
            "findings": [f.kind for f in st.findings],
            "preempted": st.preempted,
        })
    return {
        "kind": finding.kind, "message": finding.message, "detail": finding.detail,
        "thread": finding.thread, "schedule": finding.schedule,
        "preemptions": finding.preemptions,
        "threads": list(trace.names),
        "steps": steps,
        "failing_step": fail,
        "omitted_steps": len(trace.steps) - last,
        "waiting": [{"thread": t, "what": what} for t, what in sorted(trace.waiting.items())]
        if last == len(trace.steps) else [],
        "reproduced": any(g.signature == finding.signature for g in trace.findings),
    }


def run_cell(task: dict[str, Any], tick: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One cell: ``task`` = {index, file, name, kernel, patches, without}.  Returns plain data;
    whatever the scenario raises becomes the cell's ``error``.  ``tick(executions)`` is the
    checker's progress callback (in-process runs only)."""
    t0 = time.perf_counter()
    cell: dict[str, Any] = {"index": task["index"], "verdict": None, "match": False,
                            "exhaustive": False, "bound": None, "executions": 0, "mode": None,
                            "counterexample": None, "error": None, "note": ""}
    try:
        sc = load_scenarios(task["file"])[task["name"]]
        res = check(sc, task["kernel"], patches=tuple(task["patches"]),       # bound: check's keywords
                    without=tuple(task["without"]), tables=False, progress=tick, **sc.bound)
        cell["mode"] = res.mode
        cell["executions"] = res.executions
        if res.verdict == "error":
            cell["error"] = res.error
        else:
            kinds = {f.kind for f in res.findings}
            expected = sc.expected(task["kernel"]) or frozenset()
            cell["verdict"] = verdict_of(kinds)
            cell["match"] = kinds == set(expected)
            cell["exhaustive"] = res.exhaustive
            if not res.exhaustive:
                cell["bound"] = dict(sc.bound)
                cell["note"] = res.note
            if res.findings:
                try:
                    cell["counterexample"] = counterexample(sc, task["kernel"], res.findings[0],
                                                            res.params, tuple(task["patches"]),
                                                            tuple(task["without"]))
                except Exception as e:  # the verdict stands; say why there is no diagram
                    cell["note"] = f"the counterexample did not replay: {type(e).__name__}: {e}"
    except Exception as e:  # the scenario's own code (or a patch's) failed: this cell's error
        cell["error"] = f"{type(e).__name__}: {e}"
        cell["verdict"] = None
        cell["match"] = False
        cell["counterexample"] = None
    cell["seconds"] = round(time.perf_counter() - t0, 3)
    return cell


def _quiet_worker() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops the pool and keeps what is done;
    SIGTERM (how the parent stops the pool) ends a worker at once, whatever handler it was
    forked with."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    clear_stop()


@contextmanager
def _stop_on_ctrl_c() -> Iterator[None]:
    """Ctrl-C asks the run to stop (the cell being checked ends at its next execution boundary,
    the cells done are kept), as the command line's handlers do; installed only where Python's
    default handler is in place (a script, a notebook), so a caller's own handling stands."""
    try:
        mine = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    except ValueError:
        mine = False
    if not mine:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop_requested():
            raise Interrupted(signum)       # a second Ctrl-C: at once
        request_stop(signum)

    clear_stop()
    try:
        old = signal.signal(signal.SIGINT, handler)
    except ValueError:                      # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        clear_stop()                        # later checks in this process run normally


# -- the whole matrix ------------------------------------------------------------------------------

@dataclass
class MatrixResult:
    """What :func:`matrix` returns: the kernels (columns), the rows, and one dict per cell run
    (fields as in ``docs/json.md``)."""

    kernels: list[str]
    rows: list[Row]
    cells: list[dict[str, Any]]
    planned: int
    seconds: float
    jobs: int
    patches: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)
    interrupted: bool = False

    def cell(self, spec: str, kernel: str) -> dict[str, Any] | None:
        for c in self.cells:
            if c["scenario"] == spec and c["kernel"] == kernel:
                return c
        return None

    @property
    def mismatches(self) -> list[dict[str, Any]]:
        return [c for c in self.cells if not c["match"] and c["error"] is None]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [c for c in self.cells if c["error"] is not None]

    @property
    def ok(self) -> bool:
        """Every cell run matched its expectation (and the run was not interrupted)."""
        return not self.interrupted and all(c["match"] for c in self.cells)

    def summary(self) -> dict[str, Any]:
        return {
            "cells": len(self.cells),
            "planned": self.planned,
            "matches": sum(1 for c in self.cells if c["match"]),
            "mismatches": len(self.mismatches),
            "errors": len(self.errors),
            "not_exhaustive": [{"scenario": c["scenario"], "kernel": c["kernel"], "bound": c["bound"]}
                               for c in self.cells if c["error"] is None and not c["exhaustive"]],
            "seconds": round(self.seconds, 3),
            "jobs": self.jobs,
            "patches": list(self.patches),
            "without": list(self.without),
            "interrupted": self.interrupted,
        }


def matrix(paths: str | Iterable[str] = (), *, kernel: str | Iterable[str] | None = None,
           patches: Iterable[str] = (), without: Iterable[str] = (), jobs: int | None = None,
           progress: Callable[[int, int, dict[str, Any] | None, list[tuple[str, str]]], None] | None = None,
           cwd: str | Path | None = None) -> MatrixResult:
    """Run the matrix of ``paths`` (FILE, DIR, FILE::NAME; the checkout's ``scenarios/`` when
    empty) on ``kernel`` (as users write it: ``"all"``, ``"v5.18,6.12"``, a list; default: every
    modelled kernel some row applies to), with what-if ``patches`` (files) and ``without``
    (commits of the series), on ``jobs`` processes (default: every core; 1 runs in this process).
    ``progress(done, total, cell, running)`` is called as each cell completes (``cell``, the
    finished one) and now and then while cells run (``cell`` None); ``running`` lists the
    (``FILE::NAME``, kernel) of the cells in progress.  Raises
    :class:`MatrixError` for input it cannot use."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    patches = tuple(str(p) for p in patches)
    without = tuple(str(w) for w in without)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if not isinstance(jobs, int) or jobs < 1:
        raise MatrixError(f"--jobs: {jobs!r}: give a number of processes, at least 1")
    cwd_path = Path(cwd or os.getcwd()).resolve()
    rows = collect(paths, cwd_path)
    kernels = kernels_of(kernel)
    if not kernels:
        kernels = [k for k in KERNELS if any(r.scenario.applies(k) for r in rows)]
    _validate_patches(kernels, patches, without)
    patch_paths = tuple(str(Path(p) if Path(p).is_absolute() else cwd_path / p) for p in patches)
    tasks = []
    for r in rows:
        for k in kernels:
            if r.scenario.applies(k):
                tasks.append({"index": len(tasks), "file": r.path, "name": r.name, "kernel": k,
                              "patches": patch_paths, "without": without, "row": r})
    t0 = time.perf_counter()
    done: dict[int, dict[str, Any]] = {}
    interrupted = False
    plain = [{k: v for k, v in t.items() if k != "row"} for t in tasks]

    workers = 1 if jobs == 1 or len(tasks) <= 1 else min(jobs, len(tasks))

    def running() -> list[tuple[str, str]]:
        """The cells most likely in progress: workers take tasks in order, so the first
        ``workers`` not yet done."""
        out = []
        for t in tasks:
            if t["index"] not in done:
                out.append((t["row"].spec, t["kernel"]))
                if len(out) == workers:
                    break
        return out

    def take(cell: dict[str, Any]) -> None:
        i = cell["index"]
        done[i] = _finish(cell, tasks[i])
        if progress is not None:
            progress(len(done), len(tasks), done[i], running())

    def tick(_executions: int = 0) -> None:
        if progress is not None:
            progress(len(done), len(tasks), None, running())

    try:
        with _stop_on_ctrl_c():
            if workers == 1:
                for t in plain:
                    if stop_requested():
                        break
                    cell = run_cell(t, tick if progress is not None else None)
                    if stop_requested():        # its search was cut short: not a cell
                        break
                    take(cell)
            else:
                import multiprocessing      # here: 5 ms of every zonedev process's start otherwise
                pool = multiprocessing.get_context().Pool(workers, initializer=_quiet_worker)
                try:
                    results = pool.imap_unordered(run_cell, plain, chunksize=1)
                    while len(done) < len(tasks) and not stop_requested():
                        try:
                            cell = results.next(timeout=0.5)
                        except multiprocessing.TimeoutError:
                            tick()
                            continue
                        take(cell)
                except BaseException:
                    pool.terminate()
                    raise
                else:
                    pool.terminate() if stop_requested() else pool.close()
                finally:
                    pool.join()
    except (KeyboardInterrupt, Interrupted):
        interrupted = True
    interrupted = interrupted or len(done) < len(tasks)
    cells = [done[i] for i in sorted(done)]
    return MatrixResult(kernels, rows, cells, len(tasks), time.perf_counter() - t0, workers,
                        list(patches), list(without), interrupted)


def _finish(cell: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """A worker's cell with the row's identity, expectation and refs, in the order
    ``docs/json.md`` lists the fields."""
    row: Row = task["row"]
    k = task["kernel"]
    expected = row.scenario.expected(k) or frozenset()
    cx = cell["counterexample"]
    out = {
        "scenario": row.spec,
        "kernel": k,
        "verdict": cell["verdict"],
        "expected": verdict_of(expected),
        "match": cell["match"],
        "exhaustive": cell["exhaustive"],
        "bound": cell["bound"],
        "executions": cell["executions"],
        "seconds": cell["seconds"],
        "refs": list(row.scenario.refs),
        "counterexample": cx,
        "error": cell["error"],
        "mode": cell["mode"],
        "note": cell["note"],
    }
    return out

