"""``zonedev matrix [FILE|DIR|FILE::NAME ...]``: every scenario on every kernel it applies to.

Prints the grid (scenarios x kernels, fitted to the terminal), its legend, the cells that differ
from their expectations with the command that shows each, and a summary line.
Exit status: 0 every cell matched, 1 a mismatch or a cell error, 2 bad input (one line
``zonedev: error: WHERE: reason``, nothing written), 130/143 interrupted by SIGINT/SIGTERM (the
cell being checked stops at its next execution boundary and is dropped; the cells done so far
are printed, and --html/--json hold them).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import click

from . import _errors

from ._errors import BadInput, fail, interrupted_status, signals
from .check import resolve_kernels


class _Progress:
    """``[12/46] 8s  teardown3 v5.18: use_after_free`` on stderr, one updating line, only on a
    terminal; between cells it names the ones running."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, cell: dict | None, running: list) -> None:
        now = time.perf_counter()
        if not self.enabled or (cell is None and now - self.last < 0.5):
            return
        self.last = now
        self.shown = True
        head = f"[{done}/{total}] {now - self.t0:.0f}s  "
        if cell is not None:
            name = cell["scenario"].rsplit("::", 1)[-1]
            v = cell["verdict"]
            got = "error" if cell["error"] else v if isinstance(v, str) else ",".join(v)
            line = head + f"{name} {cell['kernel']}: {got}"
        else:
            by_name: dict[str, list[str]] = {}
            for spec, k in running:
                by_name.setdefault(spec.rsplit("::", 1)[-1], []).append(k)
            line = head + "running " + ", ".join(f"{n} {' '.join(ks)}" for n, ks in by_name.items())
        width = shutil.get_terminal_size().columns - 1
        sys.stderr.write("\r\033[K" + line[:width])
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@click.command("matrix")
@click.argument("paths", nargs=-1, metavar="[FILE|DIR|FILE::NAME]...")
@click.option("--kernel", "-k", "kernel", multiple=True,
              help="kernels as you write them: v6.1, 6.12, a comma list, 'all' "
                   "(default: every kernel some scenario applies to)")
@click.option("--patch", "patches", multiple=True, help="what-if patch file on every kernel (repeatable)")
@click.option("--without", multiple=True, help="leave out a patch of the series (commit id; repeatable)")
@click.option("--jobs", "-j", default=None, help="processes (default: all cores; 1: in this process)")
@click.option("--json", "as_json", is_flag=True, help="print matrix.json (docs/json.md) instead of the grid")
@click.option("--html", "html_file", type=_errors.Path(dir_okay=False), default=None,
              help="also write the grid and counterexamples as one self-contained HTML file")
@click.option("--quiet", "-q", is_flag=True, help="no grid and no progress: mismatches and the summary only")
def command(paths: tuple, kernel: tuple, patches: tuple, without: tuple, jobs: str | None,
            as_json: bool, html_file: str | None, quiet: bool) -> None:
    """Run every scenario with expected verdicts (default: the checkout's scenarios/) on every
    kernel it applies to; mark every cell that differs from its expectation.

    \b
    Examples:
      zonedev matrix
      zonedev matrix scenarios/teardown.py --kernel v5.18,v6.1
      zonedev matrix --html matrix.html --json matrix.json"""
    from ..rt.matrix import MatrixError, matrix
    try:
        kernels = resolve_kernels(kernel) if kernel else None
        if jobs is not None:
            if not jobs.strip().isdigit() or int(jobs) < 1:
                raise BadInput(f"--jobs: {jobs}: give a number of processes, at least 1")
            jobs = int(jobs)
        if html_file is not None:
            parent = Path(html_file).resolve().parent
            if not parent.is_dir():
                raise BadInput(f"--html: {Path(html_file).parent}: no such directory")
    except BadInput as e:
        fail(str(e))
    progress = _Progress(sys.stderr.isatty() and not as_json and not quiet)
    try:
        with signals():         # Ctrl-C / SIGTERM: stop, print the cells done, exit 130 / 143
            result = matrix(paths, kernel=kernels, patches=patches, without=without, jobs=jobs,
                            progress=progress)
    except MatrixError as e:
        progress.done()
        fail(str(e))
    progress.done()
    from ..report import grid
    summary = grid.summary(result)
    if html_file is not None:
        from ..report.files import write_atomic
        from ..report.html import render
        write_atomic(html_file, render(result, summary))
    if as_json:
        from ..report.matrix_json import document
        click.echo(json.dumps(document(result), indent=2))
    else:
        width = shutil.get_terminal_size((100, 24)).columns - 1   # a full line would wrap on some terminals
        if not quiet:
            click.echo(grid.grid(result, width))
            click.echo()
            click.echo(grid.legend(result, width))
            click.echo()
        listed = grid.mismatches(result)
        if listed:
            click.echo(listed)
            click.echo()
        click.echo(summary)
        if html_file is not None:
            click.echo(f"html: {html_file}")
    if result.interrupted:
        sys.exit(interrupted_status() or 130)
    sys.exit(0 if result.ok else 1)
