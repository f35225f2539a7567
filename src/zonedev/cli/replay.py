"""``zonedev replay FILE::SCENARIO --schedule S``: reproduce one interleaving exactly.

Prints the interleaving table (one column per thread, one row per step, with the event log) and
what was found; ``--step`` shows each step as it runs and waits for Enter.
Exit status: 0 nothing found, 1 something found, 2 bad input (including a schedule that does not
fit the scenario).
"""

from __future__ import annotations

import sys

import click

from . import _errors

from ._errors import BadInput, Seconds, dumps, fail
from .check import check_params, check_patch_options, load, parse_params, resolve_kernels


class _Quit(Exception):
    """'q' at a --step prompt."""


@click.command("replay")
@click.argument("spec", metavar="FILE::SCENARIO")
@click.option("--schedule", "-s", required=True, help="schedule string from a finding (e.g. 0*3.1.2)")
@click.option("--kernel", "-k", "kernel", default=None, help="kernel name (default: the scenario's first)")
@click.option("--patch", "patches", multiple=True, type=_errors.Path(), help="extra patch file (repeatable)")
@click.option("--without", multiple=True, help="leave out a patch of the series (commit id)")
@click.option("--at", "at", default=None, metavar="COMMIT",
              help="the kernel at one patch of the series (every patch up to and including COMMIT, "
                   "as bisect walks it); instead of --kernel")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--step", "stepwise", is_flag=True, help="pause after each step")
@click.option("--step-timeout", type=Seconds(), default=10.0, show_default=True,
              help="a thread running this long without reaching a sync point is a finding (step_timeout)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def command(spec: str, schedule: str, kernel: str | None, patches: tuple, without: tuple, at: str | None,
            params: tuple, stepwise: bool, step_timeout: float, as_json: bool) -> None:
    """Replay one schedule of a scenario step by step.

    \b
    Examples:
      zonedev replay scenarios/teardown.py::teardown3 --kernel v5.18 --schedule '2*8.0'
      zonedev replay scenarios/teardown.py::teardown3 -k v5.18 -s '2*8.0' --step
      zonedev replay scenarios/teardown.py::teardown3 -k v5.18 -s '2*8.0' --json

    Exit status: 0 nothing found, 1 found, 2 bad input (a schedule that does not fit too)."""
    from ..patches import PatchFileError, UnknownKernel, kernel_at
    from ..sync.world import World, use_world
    from ..report.table import render
    from ..rt.check import build_kernel
    from ..rt.engine import Runner, SetupError
    from ..rt.guard import step_guard
    from ..rt.outcome import BadSchedule, parse_schedule
    from ..rt.replay import replay
    from ..rt.scenario import ScenarioFileError
    try:
        sched = parse_schedule(schedule)
    except BadSchedule as e:
        fail(f"--schedule: {e}")
    try:
        names = resolve_kernels((kernel,) if kernel else ())
        if len(names) > 1:
            raise BadInput(f"--kernel: replay runs one kernel; {kernel!r} names {len(names)}")
        check_patch_options(without, patches)
        with step_guard(None, step_timeout, what=f"loading {spec.partition('::')[0]}"):
            scenarios = load(spec)
        if len(scenarios) != 1:
            raise BadInput(f"{spec.partition('::')[0]}:0: holds {len(scenarios)} scenarios; say FILE::SCENARIO")
        sc = scenarios[0]
        pvals = parse_params(params)
        check_params(scenarios, pvals, spec)
        if at:
            if kernel or without:
                raise BadInput("--at: give either --at or --kernel/--without")
            try:
                with use_world(World()):    # only its class is used: keep the caller's world clean
                    k = kernel_at(at, extra=patches) if sc.kernel else None
            except UnknownKernel as e:
                raise BadInput(f"--at: {e}") from None
        else:
            k = (names[0] if names else (sc.kernels[0] if sc.kernels else "newest")) if sc.kernel else None
        proto, klabel = build_kernel(sc, k, tuple(patches), tuple(without))
        runner = Runner(sc, proto, pvals)
    except (BadInput, ScenarioFileError) as e:
        fail(str(e))
    except UnknownKernel as e:
        fail(f"--without: {e}")
    except PatchFileError as e:
        fail(str(e))

    def show(st, _runner) -> None:
        from ..report.table import step_head
        cell = step_head(st)
        click.echo(f"step {st.index:>3}  {st.name:<12} {cell}" + (" (preempting)" if st.preempted else ""))
        for e in st.events:
            click.echo(f"           {'':<12}   {e}")
        for f in st.findings:
            click.echo(f">> {f.kind}: {f.message}")
        if sys.stdin.isatty() or stepwise:
            try:
                line = click.prompt("", default="", show_default=False, prompt_suffix="[enter: next, q: quit] ")
            except click.Abort:
                line = "q"
            if line.strip().lower() == "q":
                raise _Quit

    try:
        with step_guard(runner, step_timeout):
            trace = replay(runner, sched, on_step=show if stepwise and not as_json else None)
    except BadSchedule as e:
        fail(f"--schedule: does not fit {sc.name}: {e}")
    except SetupError as e:
        fail(str(e))
    except _Quit:
        click.echo("stopped")
        sys.exit(0)
    if as_json:
        click.echo(dumps({
            "scenario": sc.name, "kernel": klabel, "schedule": trace.schedule,
            "preemptions": trace.preemptions, "complete": trace.complete,
            "steps": [{"step": s.index, "thread": s.name, "label": s.label, "function": s.func,
                       "object": s.obj, "events": s.events, "findings": [f.kind for f in s.findings]}
                      for s in trace.steps],
            "findings": [f.as_dict() for f in trace.findings]}))
    else:
        click.echo(f"{sc.name} on {klabel}: schedule {trace.schedule}, {len(trace.steps)} steps, "
                   f"{trace.preemptions} preemptions" + ("" if trace.complete else " (threads remain runnable after the schedule)"))
        from ..report.console import width as out_width
        click.echo(render(trace, width=out_width()))
        for f in trace.findings:
            where = f"step {f.step}" if f.step >= 0 else "at the end"
            click.echo(f">> {f.kind} ({where}{', ' + f.thread if f.thread else ''}): {f.message}")
        if not trace.findings:
            click.echo("no violation in this interleaving")
    sys.exit(1 if trace.findings else 0)
