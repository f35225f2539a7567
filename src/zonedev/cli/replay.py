"""``zonedev replay FILE::SCENARIO --schedule S``: reproduce one interleaving exactly.

Prints the interleaving table (one column per thread, one row per step, with the event log) and
what was found; ``--step`` shows each step as it runs and waits for Enter.
Exit status: 0 nothing found, 1 something found, 2 bad input (including a schedule that does not
fit the scenario).
"""

from __future__ import annotations

import json
import sys

import click

from .check import BadInput, bad_input, kernels_for, load, parse_params


@click.command("replay")
@click.argument("spec", metavar="FILE::SCENARIO")
@click.option("--schedule", "-s", required=True, help="schedule string from a finding (e.g. 0*3.1.2)")
@click.option("--kernel", "-k", "kernel", default=None, help="kernel name (default: the scenario's first)")
@click.option("--patch", "patches", multiple=True, type=click.Path(), help="extra patch file (repeatable)")
@click.option("--without", multiple=True, help="leave out a patch of the series (commit id)")
@click.option("--at", "at", default=None, metavar="COMMIT",
              help="the kernel at one patch of the series (every patch up to and including COMMIT, "
                   "as bisect walks it); instead of --kernel")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--step", "stepwise", is_flag=True, help="pause after each step")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def command(spec: str, schedule: str, kernel: str | None, patches: tuple, without: tuple, at: str | None,
            params: tuple, stepwise: bool, as_json: bool) -> None:
    """Replay one schedule of a scenario step by step."""
    from ..patches import PatchFileError, UnknownKernel, kernel_at
    from ..report.table import render
    from ..rt.check import build_kernel
    from ..rt.engine import Runner, SetupError
    from ..rt.outcome import BadSchedule
    from ..rt.replay import replay
    from ..rt.scenario import ScenarioFileError
    try:
        scenarios = load(spec)
        if len(scenarios) != 1:
            raise BadInput(f"{spec}: names {len(scenarios)} scenarios; say FILE::SCENARIO")
        sc = scenarios[0]
        if at:
            if kernel or without:
                raise BadInput("--at: give either --at or --kernel/--without")
            try:
                k = kernel_at(at, extra=patches)
            except UnknownKernel as e:
                raise BadInput(f"--at: {e}") from None
        else:
            k = kernels_for(sc, (kernel,) if kernel else ())[0]
        proto, klabel = build_kernel(sc, k, tuple(patches), tuple(without))
        runner = Runner(sc, proto, parse_params(params))
    except (BadInput, ScenarioFileError, UnknownKernel, PatchFileError) as e:
        bad_input(str(e))
        return

    def show(st, _runner) -> None:
        cell = st.text()
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
                raise KeyboardInterrupt

    try:
        trace = replay(runner, schedule, on_step=show if stepwise and not as_json else None)
    except BadSchedule as e:
        bad_input(f"{spec}: schedule does not fit: {e}")
        return
    except SetupError as e:
        bad_input(str(e))
        return
    except KeyboardInterrupt:
        click.echo("stopped")
        sys.exit(0)
    if as_json:
        click.echo(json.dumps({
            "scenario": sc.name, "kernel": klabel, "schedule": trace.schedule,
            "preemptions": trace.preemptions, "complete": trace.complete,
            "steps": [{"step": s.index, "thread": s.name, "label": s.label, "function": s.func,
                       "object": s.obj, "events": s.events, "findings": [f.kind for f in s.findings]}
                      for s in trace.steps],
            "findings": [f.as_dict() for f in trace.findings]}, indent=2))
    else:
        click.echo(f"{sc.name} on {klabel}: schedule {trace.schedule}, {len(trace.steps)} steps, "
                   f"{trace.preemptions} preemptions" + ("" if trace.complete else " (threads remain runnable after the schedule)"))
        click.echo(render(trace))
        for f in trace.findings:
            where = f"step {f.step}" if f.step >= 0 else "at the end"
            click.echo(f">> {f.kind} ({where}{', ' + f.thread if f.thread else ''}): {f.message}")
        if not trace.findings:
            click.echo("no violation in this interleaving")
    sys.exit(1 if trace.findings else 0)
