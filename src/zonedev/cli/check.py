"""``zonedev check FILE[::SCENARIO] --kernel K|all``: explore scenarios, report findings.

Exit status: 0 nothing found, 1 something found, 2 bad input (file:line and reason on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

MODE_CHOICES = ["auto", "dpor", "source-dpor", "stateful", "naive", "bounded", "random", "pct"]


class BadInput(Exception):
    pass


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise BadInput(f"-p {item}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = _value(v.strip())
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
        except ValueError:
            pass
    return v


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
    click.echo(f"zonedev: error: {message}", err=True)
    sys.exit(2)


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

    def done(self) -> None:
        if self.shown:
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


def print_result(res: Any, spec_file: str, without: tuple = (), patches: tuple = (),
                 at: str | None = None) -> None:
    click.echo(res.summary())
    if res.note:
        click.echo(f"  note: {res.note}")
    for i, f in enumerate(res.findings, 1):
        where = f"step {f.step}" if f.step >= 0 else "at the end"
        who = f", thread {f.thread}" if f.thread else ""
        click.echo(f"\n  finding {i}: {f.kind}: {f.message}")
        click.echo(f"    {where}{who}; {f.preemptions} preemption{'s' if f.preemptions != 1 else ''}, "
                   f"{f.steps} steps")
        if f.detail:
            click.echo(f"    {f.detail}")
        if "traceback" in f.extra:
            last = f.extra["traceback"].rstrip().splitlines()[-3:]
            for line in last:
                click.echo(f"    | {line}")
        if at:
            kern = f" --at {at}"
        else:
            kern = f" --kernel {res.kernel.split('+')[0].split('-')[0]}" if res.kernel != "-" else ""
        kern += "".join(f" --without {w}" for w in without) + "".join(f" --patch {q}" for q in patches)
        params = "".join(f" -p {k}={v}" for k, v in res.params.items())
        click.echo(f"    schedule: {f.schedule}")
        click.echo(f"    replay:   zonedev replay {spec_file}::{res.scenario}{kern}{params} --schedule {f.schedule}")
        if f.table:
            click.echo("\n".join("    " + line for line in f.table.splitlines()))
        if f.extra.get("replay"):
            click.echo(f"    WARNING: {f.extra['replay']}")


@click.command("check")
@click.argument("spec", metavar="FILE[::SCENARIO]")
@click.option("--kernel", "-k", "kernel", multiple=True, help="kernel name, comma list, or 'all' (default: the scenario's kernels)")
@click.option("--patch", "patches", multiple=True, type=click.Path(), help="extra patch file (repeatable)")
@click.option("--without", multiple=True, help="leave out a patch of the series (commit id)")
@click.option("--at", "at", default=None, metavar="COMMIT",
              help="the kernel at one patch of the series: every patch up to and including COMMIT "
                   "(what bisect walks); instead of --kernel")
@click.option("--mode", type=click.Choice(MODE_CHOICES), default="auto", show_default=True)
@click.option("--preemptions", type=int, default=None, help="preemption-bounded exhaustive search")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for random / pct")
@click.option("--depth", type=int, default=3, show_default=True, help="PCT depth d")
@click.option("--executions", type=int, default=None, help="execution budget")
@click.option("--time", "seconds", type=float, default=None, help="time budget in seconds")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--no-minimize", is_flag=True, help="do not search for fewer-preemption counterexamples")
@click.option("--first", "stop_first", is_flag=True, help="stop at the first finding (not exhaustive)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def command(spec: str, kernel: tuple, patches: tuple, without: tuple, at: str | None, mode: str, preemptions: int | None,
            seed: int, depth: int, executions: int | None, seconds: float | None, params: tuple,
            no_minimize: bool, stop_first: bool, as_json: bool) -> None:
    """Explore every interleaving of a scenario's threads on one or more kernels."""
    from ..patches import PatchFileError, UnknownKernel, kernel_at
    from ..rt.check import check
    from ..rt.scenario import ScenarioFileError
    try:
        scenarios = load(spec)
        pvals = parse_params(params)
        if at:
            if kernel or without:
                raise BadInput("--at: give either --at or --kernel/--without")
            proto = kernel_at(at, extra=patches)
            plan = [(sc, proto) for sc in scenarios]
        else:
            if patches and not any(kernel):
                kernel = tuple(patch_bases(patches))
            plan = [(sc, k) for sc in scenarios for k in kernels_for(sc, kernel)]
        notes = describe_patches(patches) if patches and not as_json else []
        for sc, _ in plan:
            sc.with_params(pvals) if len(scenarios) == 1 else None
    except (BadInput, ScenarioFileError, PatchFileError) as e:
        bad_input(str(e))
        return
    except UnknownKernel as e:              # from kernel_at: --at names no patch of the series
        bad_input(f"--at: {e}")
        return
    file = spec.partition("::")[0]
    results = []
    tty = sys.stderr.isatty() and not as_json
    for sc, k in plan:
        p = {key: v for key, v in pvals.items() if key in sc.params}
        prog = Progress(f"{sc.name} {getattr(k, 'name', k) or ''}".strip(), tty, executions, seconds)
        try:
            res = check(sc, k, params=p, mode=mode, patches=patches, without=without,
                        preemptions=preemptions, seed=seed, depth=depth, executions=executions,
                        seconds=seconds, minimize=not no_minimize, stop_first=stop_first, progress=prog)
        except (UnknownKernel, PatchFileError, ScenarioFileError, ValueError) as e:
            prog.done()
            bad_input(str(e))
            return
        prog.done()
        results.append(res)
        if not as_json:
            print_result(res, file, without, patches, at)
    for line in notes:
        click.echo(f"\nwith {line}")
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    if any(r.verdict == "found" for r in results):
        sys.exit(1)
    if any(r.verdict == "error" for r in results):
        if not as_json:
            for r in results:
                if r.verdict == "error":
                    click.echo(f"zonedev: error: {r.scenario} on {r.kernel}: {r.error}", err=True)
        sys.exit(2)
