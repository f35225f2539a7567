"""``zonedev check FILE[::SCENARIO] --kernel K|all``: explore scenarios, report findings.

Exit status: 0 nothing found, 1 something found, 2 bad input (``zonedev: error: WHERE: reason``
on stderr), 130 interrupted (SIGINT), 143 terminated (SIGTERM); an interrupted run prints the
findings so far and what was covered (see :mod:`zonedev.cli._errors`).
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from typing import Any

import click

from . import _errors

from ._errors import BadInput, Seconds, Size, dumps, fail, interrupted_status, signals

MODE_CHOICES = ["auto", "dpor", "source-dpor", "stateful", "naive", "bounded", "random", "pct"]

__all__ = ["BadInput", "bad_input", "command", "kernels_for", "load", "parse_params", "resolve_kernels"]


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise BadInput(f"-p {item}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k.isidentifier():
            raise BadInput(f"-p {item}: {k!r} is not a parameter name")
        val = _value(v.strip())
        if isinstance(val, float) and not math.isfinite(val):
            raise BadInput(f"-p {item}: not a finite number")
        if isinstance(val, int) and not isinstance(val, bool) and abs(val) > 1 << 62:
            raise BadInput(f"-p {item}: number out of range")
        out[k] = val
    return out


def _value(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    for conv in (int, float):
        try:
            return conv(v)
        except (ValueError, OverflowError):
            pass
    return v


def check_params(scenarios: list, pvals: dict[str, Any], spec: str) -> None:
    """Every ``-p NAME`` must be a parameter of at least one of the scenarios chosen."""
    for name in pvals:
        if not any(name in sc.params for sc in scenarios):
            known = sorted({p for sc in scenarios for p in sc.params})
            what = (f"scenario {scenarios[0].name} has no parameter" if len(scenarios) == 1
                    else f"no scenario in {spec} has a parameter")
            raise BadInput(f"-p {name}: {what} {name!r} "
                           f"(parameters: {', '.join(known) or 'none'})")


def check_patch_options(without: tuple, patches: tuple) -> None:
    """``--without`` commits (exact prefixes of one patch of the series) and ``--patch`` files
    (loaded and checked now), whatever the scenario: a bad one is refused, never ignored."""
    from ..patches import PatchFileError, UnknownKernel, find_patch, load_patch_file
    for ref in without:
        try:
            find_patch(ref)
        except UnknownKernel as e:
            raise BadInput(f"--without: {e}") from None
    for path in patches:
        try:
            load_patch_file(path)
        except PatchFileError as e:
            raise BadInput(str(e)) from None


def load(spec: str) -> list:
    from ..rt.scenario import ScenarioFileError, resolve
    try:
        return resolve(spec)
    except ScenarioFileError as e:
        raise BadInput(str(e)) from None


def kernels_for(scenario: Any, kernel: tuple[str, ...]) -> list[str | None]:
    """The modelled kernels ``--kernel`` names for ``scenario`` (its own list when none is
    given); a version that maps to a modelled kernel is said once on stderr."""
    if not scenario.kernel:
        return [None]
    return resolve_kernels(kernel) or list(scenario.kernels or ["newest"])


_said: set[str] = set()


def resolve_kernels(kernel: tuple[str, ...] | list[str]) -> list[str]:
    """``--kernel`` values (versions as people write them, comma lists, ``all``) -> modelled
    kernel names; raises :class:`BadInput` naming the option."""
    from ..patches import UnknownKernel, resolve_list
    try:
        resolved = resolve_list([k for k in kernel if k])
    except UnknownKernel as e:
        raise BadInput(f"--kernel: {e}") from None
    for r in resolved:
        if r.note and r.note not in _said:
            _said.add(r.note)
            click.echo(f"zonedev: {r.note}", err=True)
    return [r.name for r in resolved]


def bad_input(message: str) -> None:
    """Report bad input (``WHERE: reason``) and exit 2 (see :func:`zonedev.cli._errors.fail`)."""
    fail(message)


class Progress:
    """One updating line on stderr, only on a terminal."""

    def __init__(self, label: str, enabled: bool, executions: int | None = None,
                 seconds: float | None = None) -> None:
        self.label = label
        self.total_execs = executions
        self.total_secs = seconds
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def __call__(self, execs: int) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        self.shown = True
        spin = "|/-\\"[int(now * 5) % 4]
        frac = None
        if self.total_execs:
            frac = execs / self.total_execs
        if self.total_secs:
            frac = max(frac or 0.0, (now - self.t0) / self.total_secs)
        bar = ""
        if frac is not None:
            k = int(min(1.0, frac) * 20)
            bar = f"[{'#' * k}{'.' * (20 - k)}] {min(1.0, frac):4.0%} "
        sys.stderr.write(f"\r{spin} {bar}{self.label}: {execs} executions, {now - self.t0:.1f}s ")
        sys.stderr.flush()

    def first(self, f: Any, execs: int, secs: float) -> None:
        """The first finding, as soon as the execution that found it ends (the search goes on
        to the end and the counterexample is minimised before the report)."""
        self.done()
        sys.stderr.write(f"{self.label}: first finding after {secs:.2f}s, {execs} executions: {f.kind}; "
                         f"exploring on for the fewest-preemption counterexample (--first stops here)\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            self.shown = False
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def patch_bases(patches: tuple) -> list[str]:
    """The kernels the ``--patch`` files say they were posted against (``Patch(base=...)``): the
    default ``--kernel`` when a patch is given and no kernel is."""
    from ..patches import load_patch_file
    return [p.base for p in map(load_patch_file, patches) if p.base]


def describe_patches(patches: tuple) -> list[str]:
    """One line per ``--patch`` file: what it is and the kernel it was posted against."""
    from ..patches import load_patch_file
    out = []
    for path in patches:
        p = load_patch_file(path)
        base = f", posted against {p.base}" if p.base else ""
        out.append(f"patch {path}: {p.commit} \"{p.title}\"{base}")
    return out


def replay_command(spec_file: str, res: Any, schedule: str, without: tuple = (), patches: tuple = (),
                   at: str | None = None) -> str:
    """The ``zonedev replay`` command for one finding, quoted for a POSIX shell, runnable as
    printed (an empty schedule is ``--schedule ''``)."""
    from ..report.commands import replay_command as words
    cmd = words(f"{spec_file}::{res.scenario}", None if at else res.kernel, schedule, res.params,
                without, patches)
    if at:
        head = f"zonedev replay {shlex.quote(f'{spec_file}::{res.scenario}')}"
        cmd = f"{head} --at {shlex.quote(at)}" + cmd[len(head):]
    return cmd


def _wrap(text: str, indent: str, width: int, later: str | None = None) -> str:
    """``text`` wrapped to ``width`` columns, the first line indented by ``indent``."""
    import textwrap
    return "\n".join(textwrap.wrap(text, width, initial_indent=indent,
                                    subsequent_indent=later if later is not None else indent + "  ",
                                    break_on_hyphens=False, break_long_words=False)) or indent


def _summary_lines(summary: str, width: int) -> str:
    """A run's verdict line; where it is wider than the output it goes on as many lines as it
    needs, split between its fields (they are two spaces apart), never inside one."""
    if len(summary) <= width:
        return summary
    lines = [""]
    for field in summary.split("  "):
        if lines[-1].strip() and len(lines[-1]) + 2 + len(field) > width:
            lines.append("    " + field)
        else:
            lines[-1] = f"{lines[-1]}  {field}" if lines[-1] else field
    return "\n".join(lines)


def print_result(res: Any, spec_file: str, without: tuple = (), patches: tuple = (),
                 at: str | None = None, quiet: bool = False, shown: dict | None = None) -> None:
    """Print one run: the verdict line, then each finding with its replay command and its
    interleaving table; findings with the same schedule (in this run, or in an earlier run of
    the same command, passed in ``shown``) share one table.  ``quiet``: the verdict line only."""
    from ..report.console import width as out_width
    if res.verdict == "error":      # bad input: the one line on stderr says it
        return
    if quiet:
        click.echo(res.summary())
        return
    width = out_width()
    shown = {} if shown is None else shown
    click.echo(_summary_lines(res.summary(), width))
    if res.note:
        click.echo(_wrap(f"note: {res.note}", "  ", width))
    from ..report.table import shared
    tables = shared(res.findings)
    for i, f in enumerate(res.findings, 1):
        where = f"step {f.step}" if f.step >= 0 else "at the end"
        who = f", thread {f.thread}" if f.thread else ""
        click.echo("\n" + _wrap(f"finding {i}: {f.kind}: {f.message}", "  ", width, "      "))
        click.echo(f"    {where}{who}; {f.preemptions} preemption{'s' if f.preemptions != 1 else ''}, "
                   f"{f.steps} steps")
        if f.detail:
            click.echo(_wrap(f.detail, "    ", width))
        if "traceback" in f.extra and f.kind == "exception":
            last = f.extra["traceback"].rstrip().splitlines()[-3:]
            for line in last:
                click.echo(f"    | {line}")
        click.echo(f"    schedule: {f.schedule or '(empty: at the start)'}")
        from ..report.commands import wrap_command
        cmd = replay_command(spec_file, res, f.schedule, without, patches, at)
        click.echo(f"    replay:   {wrap_command(cmd, width, first=14, indent=' ' * 16)}")
        table, same = tables[i - 1]
        if same:
            click.echo(f"    (the same interleaving as {same} above)")
        elif table:
            first = shown.get(table)
            if first is not None:
                click.echo(f"    (the interleaving of {first} above)")
            else:
                shown[table] = f"finding {i} of {res.scenario} on {res.kernel}"
                click.echo("\n".join("    " + line for line in table.splitlines()))
        if f.extra.get("replay"):
            click.echo(f"    WARNING: {f.extra['replay']}")


@click.command("check")
@click.argument("spec", metavar="FILE[::SCENARIO]")
@click.option("--kernel", "-k", "kernel", multiple=True, help="kernel name, comma list, or 'all' (default: the scenario's kernels)")
@click.option("--patch", "patches", multiple=True, type=_errors.Path(), help="extra patch file (repeatable)")
@click.option("--without", multiple=True, help="leave out a patch of the series (commit id)")
@click.option("--at", "at", default=None, metavar="COMMIT",
              help="the kernel at one patch of the series: every patch up to and including COMMIT "
                   "(what bisect walks); instead of --kernel")
@click.option("--mode", type=click.Choice(MODE_CHOICES), default="auto", show_default=True)
@click.option("--preemptions", type=click.IntRange(min=0), default=None, help="preemption-bounded exhaustive search")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for random / pct")
@click.option("--depth", type=click.IntRange(min=1, max=1000), default=3, show_default=True, help="PCT depth d")
@click.option("--executions", type=click.IntRange(min=1), default=None, help="execution budget (exact)")
@click.option("--time", "seconds", type=Seconds(), default=None, help="time budget in seconds (checked after every execution)")
@click.option("--memory", type=Size(), default="4G", show_default=True,
              help="stop when the process's resident size reaches this (e.g. 2G, 512M)")
@click.option("--step-timeout", type=Seconds(), default=10.0, show_default=True,
              help="a thread running this long without reaching a sync point is a finding (step_timeout)")
@click.option("--checkpoint", type=_errors.Path(dir_okay=False), default=None,
              help="save the exploration's state to this file periodically and when interrupted")
@click.option("--checkpoint-every", type=Seconds(), default=60.0, show_default=True, help="seconds between checkpoints")
@click.option("--resume", type=_errors.Path(dir_okay=False), default=None, help="continue the exploration saved in this checkpoint")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--no-minimize", is_flag=True, help="do not search for fewer-preemption counterexamples")
@click.option("--first", "stop_first", is_flag=True, help="stop at the first finding (not exhaustive)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--quiet", "-q", "quiet", is_flag=True, help="print the verdict lines only (one per scenario and kernel)")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="processes for one Optimal-DPOR, random or PCT exploration, 0: all cores (the answer is the one-process "
                   "answer; a search shorter than 20 ms never starts workers; docs/scale.md)")
@click.option("--backend", type=click.Choice(["process", "ray"]), default="process", show_default=True,
              help="where the leaves or index ranges of a split exploration run (ray: pip install 'zonedev[ray]')")
@click.option("--address", default=None, metavar="ADDR", help="the Ray cluster to join (default: a local one)")
def command(spec: str, kernel: tuple, patches: tuple, without: tuple, at: str | None, mode: str,
            preemptions: int | None, seed: int, depth: int, executions: int | None, seconds: float | None,
            memory: int, step_timeout: float, checkpoint: str | None, checkpoint_every: float,
            resume: str | None, params: tuple, no_minimize: bool, stop_first: bool, as_json: bool,
            quiet: bool = False, jobs: int = 0, backend: str = "process",
            address: str | None = None) -> None:
    """Explore every interleaving of a scenario's threads on one or more kernels.

    \b
    Examples:
      zonedev check scenarios/teardown.py::teardown3 --kernel v5.18,v6.1
      zonedev check scenarios/hmm_races.py --kernel all --quiet
      zonedev check scenarios/teardown.py::teardown3 -k 6.1.0-56-amd64 --without 0dc45ca1ce18
      zonedev check my_scenario.py::race --mode pct --time 30 --json

    Exit status: 0 nothing found, 1 found, 2 bad input, 130/143 interrupted (SIGINT/SIGTERM:
    the findings so far are printed; with --checkpoint, --resume continues the run)."""
    from ..patches import PatchFileError, UnknownKernel, kernel_at
    from ..sync.world import World, use_world
    from ..rt.check import check
    from ..rt.guard import step_guard
    from ..rt.scenario import ScenarioFileError
    try:
        named = resolve_kernels(kernel)
        check_patch_options(without, patches)
        with step_guard(None, step_timeout, what=f"loading {spec.partition('::')[0]}"):
            scenarios = load(spec)
        pvals = parse_params(params)
        check_params(scenarios, pvals, spec)
        if at:
            if any(kernel) or without:
                raise BadInput("--at: give either --at or --kernel/--without")
            try:
                with use_world(World()):    # only its class is used: keep the caller's world clean
                    proto = kernel_at(at, extra=patches)
            except UnknownKernel as e:      # --at names no patch of the series
                raise BadInput(f"--at: {e}") from None
            plan = [(sc, proto if sc.kernel else None) for sc in scenarios]
        else:
            if patches and not named:
                named = resolve_kernels(tuple(patch_bases(patches)))
            plan = [(sc, k) for sc in scenarios
                    for k in ((named or list(sc.kernels or ["newest"])) if sc.kernel else [None])]
        notes = describe_patches(patches) if patches and not as_json else []
        if (checkpoint or resume) and len(plan) != 1:
            raise BadInput(f"{'--checkpoint' if checkpoint else '--resume'}: a checkpoint is of one scenario "
                           f"on one kernel; {spec} on these kernels makes {len(plan)} runs")
    except (BadInput, ScenarioFileError, PatchFileError) as e:
        fail(str(e))
    if address and backend != "ray":
        fail("--address: only with --backend ray")
    if backend == "ray":
        from ..rt.backends.ray_backend import ray_missing
        why = ray_missing()
        if why:
            fail(f"--backend ray: {why}")
    from ..rt.parallel import default_jobs
    file = spec.partition("::")[0]
    results = []
    shown: dict = {}
    tty = sys.stderr.isatty() and not as_json
    with signals():
        for sc, k in plan:
            if interrupted_status() is not None:
                break
            p = {key: v for key, v in pvals.items() if key in sc.params}
            prog = Progress(f"{sc.name} {getattr(k, 'name', k) or ''}".strip(), tty, executions, seconds)
            try:
                res = check(sc, k, params=p, mode=mode, patches=patches, without=without,
                            preemptions=preemptions, seed=seed, depth=depth, executions=executions,
                            seconds=seconds, minimize=not no_minimize, stop_first=stop_first, progress=prog,
                            memory=memory, step_timeout=step_timeout, checkpoint=checkpoint,
                            checkpoint_every=checkpoint_every, resume=resume,
                            jobs=jobs or default_jobs(), backend=backend, address=address,
                            on_finding=prog.first if tty else None)
            except (UnknownKernel, PatchFileError, ScenarioFileError, ValueError) as e:
                prog.done()
                fail(str(e))
            prog.done()
            results.append(res)
            if not as_json:
                print_result(res, file, without, patches, at, quiet=quiet, shown=shown)
    for line in notes:
        click.echo(f"\nwith {line}")
    stopped = interrupted_status()
    if as_json:
        click.echo(dumps([r.as_dict() for r in results]))
    elif stopped is not None:
        done = sum(1 for r in results if r.stopped != "interrupted")
        click.echo(f"zonedev: interrupted: the findings so far are above ({done} of {len(plan)} runs "
                   f"complete)" + (f"; continue with --resume {shlex.quote(checkpoint)}" if checkpoint else ""),
                   err=True)
    for r in results:
        if r.verdict == "error":
            click.echo(f"zonedev: error: {r.error}", err=True)
    if stopped is not None:
        sys.exit(stopped)
    if any(r.verdict == "found" for r in results):
        sys.exit(1)
    if any(r.verdict == "error" for r in results):
        sys.exit(2)
