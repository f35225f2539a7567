"""``zonedev trace check FILE`` and ``zonedev trace export``: real kernel traces in and out.

``check`` reads page_ref tracepoint lines (ftrace / trace-cmd / latency format), dump_page()
blocks and the ZONE_DEVICE snapshots and kprobe lines of a qemu console log, follows each page
through the rules of the modelled kernel the trace came from, and reports what those rules
forbid (with the line) and each page still referenced at the end.  Exit 0 when the trace agrees
with the model, 1 when it shows something the kernel's rules forbid or a leak, 2 on bad input.

``export`` writes a lifecycle's or a counterexample's refcount events as page_ref tracepoint
lines that trace-cmd and KernelShark users can load (and ``trace check`` reads back).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from . import _errors
from ..linux.drivers.example import TYPES


@click.group(name="trace")
def command() -> None:
    """Real kernel traces in and out: check them against the model, export the model's events.

    \b
    Examples:
      zonedev trace check ../shared/reference/samples/guest-6.1.0-56-zdsnap-console.log
      zonedev trace export --lifecycle private --kernel v6.1 > page_ref.txt"""


_LINUX_VERSION = re.compile(r"Linux version (\S+)")


@command.command(name="check")
@click.argument("file", type=_errors.Path(dir_okay=False))
@click.option("--kernel", "-k", default=None,
              help="the kernel the trace came from, as uname -r says (default: the 'Linux version' line of a console log)")
@click.option("--type", "ptype", default=None, type=click.Choice(TYPES), help="pgmap type of --pfns")
@click.option("--pfns", default=None, metavar="START-END", help="a ZONE_DEVICE pfn range (hex) of --type, for page_ref lines")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def check_cmd(file: str, kernel: str | None, ptype: str | None, pfns: str | None, as_json: bool) -> None:
    """Follow a trace's pages through the modelled kernel's rules.

    \b
    Examples:
      zonedev trace check ../shared/reference/samples/guest-6.1.0-56-zdsnap-console.log
      zonedev trace check trace.txt --kernel 6.12 --type fsdax --pfns 0x40000-0x4ffff
    """
    import zonedev
    from ..patches import UnknownKernel, resolve
    from ..trace.follow import check_trace
    from ..trace.formats import TraceError, parse_file
    try:
        records = parse_file(file)
    except TraceError as e:
        _errors.fail(str(e))
        return
    if kernel is None:
        try:
            head = Path(file).read_text(encoding="utf-8", errors="replace")[:200000]
        except OSError as e:
            _errors.fail(f"{file}:0: {e}")
            return
        m = _LINUX_VERSION.search(head)
        if not m:
            _errors.fail(f"--kernel: {file} does not say which kernel it came from (no 'Linux version' line); "
                         f"give --kernel")
            return
        kernel = m.group(1)
    try:
        r = resolve(kernel)
    except UnknownKernel as e:
        _errors.fail(f"--kernel: {e}")
        return
    k = zonedev.kernel(r.name)
    ranges = []
    if (ptype is None) != (pfns is None):
        _errors.fail("--type: --type and --pfns go together")
        return
    if ptype is not None:
        names = k.fact("type_names", {})
        if ptype not in names:
            _errors.fail(f"--type: {r.name} has no {ptype!r} pgmap type (it has: {', '.join(names)})")
            return
        m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)-(0x[0-9a-fA-F]+|\d+)", pfns)
        if not m or int(m.group(1), 0) > int(m.group(2), 0):
            _errors.fail(f"--pfns: {pfns!r}: give START-END, e.g. 0x40000-0x4ffff")
            return
        ranges.append((int(m.group(1), 0), int(m.group(2), 0) + 1, names[ptype]))
    rep = check_trace(records, k, r.name, r.note, ranges)
    if as_json:
        click.echo(json.dumps({"file": file, **rep.as_dict()}, indent=1))
    else:
        _print_report(file, rep)
    sys.exit(0 if rep.ok else 1)


def _print_report(file: str, rep) -> None:
    if rep.note:
        click.echo(f"zonedev: {rep.note}", err=True)
    click.echo(f"{file}: {rep.records} records, {rep.pages} ZONE_DEVICE pages followed on {rep.kernel}"
               + (f", {rep.other_pages} other pages (no pgmap range known) left alone" if rep.other_pages else ""))
    for p in rep.problems:
        click.echo(f"{file}:{p.line}: {p.kind}: {p.message}")
    for x in rep.leaks:
        holders = "; last raised at " + ", ".join(x.holders) if x.holders else ""
        click.echo(f"leak: pfn {x.pfn:#x} ({x.type}) at refcount {x.count} at the end, rests at {x.rests_at}{holders}")
    for s in rep.bulk_leaks:
        click.echo(f"leak: {s}")
    click.echo("agrees with the model" if rep.ok else
               f"{len(rep.problems)} forbidden by {rep.kernel}'s rules, {len(rep.leaks) + len(rep.bulk_leaks)} leak reports")


@command.command(name="export")
@click.argument("spec", required=False, metavar="[FILE::SCENARIO]")
@click.option("--lifecycle", "life", default=None, type=click.Choice(TYPES),
              help="export the lifecycle of a page of this pgmap type")
@click.option("--kernel", "-k", default="newest", show_default=True, help="a kernel version or modelled name")
@click.option("--schedule", "-s", default=None, help="the schedule to export (default: the first finding's)")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--output", "-o", default=None, type=_errors.Path(dir_okay=False), help="write here instead of stdout")
def export_cmd(spec: str | None, life: str | None, kernel: str, schedule: str | None, params: tuple,
               output: str | None) -> None:
    """Write the model's refcount events as page_ref tracepoint lines.

    \b
    Examples:
      zonedev trace export --lifecycle private --kernel v6.1
      zonedev trace export scenarios/teardown.py::teardown3 --kernel v5.18 -o teardown3.trace
    """
    from ..patches import UnknownKernel, resolve
    try:
        r = resolve(kernel)
    except UnknownKernel as e:
        _errors.fail(f"--kernel: {e}")
        return
    if (spec is None) == (life is None):
        _errors.fail("trace export: give either FILE::SCENARIO or --lifecycle TYPE")
        return
    if life is not None:
        lines = _export_lifecycle(r.name, life)
    else:
        lines = _export_scenario(spec, r.name, schedule, params)
    text = "\n".join(lines) + "\n"
    if output:
        tmp = Path(output).with_name(Path(output).name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.replace(output)
        except OSError as e:
            _errors.fail(f"--output: {output}: {e.strerror or e}")
    else:
        click.echo(text, nl=False)


def _export_lifecycle(kname: str, life: str) -> list[str]:
    from ..linux.drivers.example import TYPES
    from ..trace.export import page_ref_lines, pgmap_header
    from ..lifecycle import lifecycle
    if life not in TYPES:
        _errors.fail(f"--lifecycle: unknown type {life!r}; known: {', '.join(TYPES)}")
    keep: dict = {}
    out = lifecycle(kname, life, keep=keep)
    if out.get("absent"):
        _errors.fail(f"--lifecycle: {out['reason']}")
    header = [f"# zonedev trace export: lifecycle of a {life} page on {kname}", pgmap_header(keep["k"], keep["pgmap"])]
    return header + page_ref_lines(keep["world"].events)


def _export_scenario(spec: str, kname: str, schedule: str | None, params: tuple) -> list[str]:
    from ..rt.check import build_kernel, check
    from ..rt.engine import Runner, SetupError
    from ..rt.outcome import BadSchedule
    from ..rt.replay import replay
    from ..trace.export import page_ref_lines, pgmap_header
    from .check import BadInput, load, parse_params
    try:
        scenarios = load(spec)
        if len(scenarios) != 1:
            raise BadInput(f"{spec}: names {len(scenarios)} scenarios; say FILE::SCENARIO")
        sc = scenarios[0]
        pvals = parse_params(params)
        if schedule is None:
            res = check(sc, kname, params=pvals, tables=False)
            if not res.findings:
                raise BadInput(f"{spec}: nothing found on {kname}; give --schedule to export an execution")
            schedule = res.findings[0].schedule
        proto, _ = build_kernel(sc, kname)
        captured: list = []
        cls = type(proto)
        capture = type(cls.__name__, (cls,), {"__init__": lambda self: (cls.__init__(self), captured.append(self))[0]})
        runner = Runner(sc, capture(), pvals)
        captured.clear()
        worlds: list = []
        trace = replay(runner, schedule, on_step=lambda st, rn: worlds.append(rn.world) if not worlds else None)
    except (BadInput, BadSchedule, SetupError, ValueError) as e:
        _errors.fail(str(e))
        return []
    k = captured[-1] if captured else None
    events = worlds[0].events if worlds else []
    pfns = sorted({e.pfn for e in events if e.field == "_refcount" and e.pfn is not None})
    pgmaps = []
    for pfn in pfns:
        page = k.memmap.get(pfn) if k is not None else None
        pg = getattr(page, "pgmap", None) if page is not None else None
        if pg is not None and pg not in pgmaps:
            pgmaps.append(pg)
    header = [f"# zonedev trace export: {spec} on {kname}, schedule {schedule}"]
    header += [pgmap_header(k, pg) for pg in pgmaps]
    return header + page_ref_lines(events, list(trace.names))
