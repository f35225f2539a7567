"""``zonedev bisect FILE::SCENARIO [--good K] [--bad K]``: the patch at which the verdict changes.

Walks the patch series patch by patch between the two kernels (binary search over the series
prefixes, untestable ones skipped; see :mod:`zonedev.rt.bisect`) and names the first patch at
which the scenario's verdict changes: commit, title, version, the verdict on each side, and the
counterexample on the bad side.  Good older than bad: where the bug came in; bad older than
good: where it was fixed.  Without ``--good``/``--bad`` the ends come from the scenario's
``expect=``.

Exit status: 0 a patch was named, 1 the verdict never changes between the two kernels, 2 bad
input (one line ``zonedev: error: WHERE: reason``).
"""

from __future__ import annotations

import json
import sys

import click

from . import _errors
from ._errors import BadInput, fail
from .check import load, parse_params, print_result


def _resolve(opt: str, text: str | None, notes: list[str]) -> str | None:
    """A kernel as given -> modelled name; the mapping goes to ``notes`` (said once, on stderr)."""
    from ..patches import UnknownKernel, resolve
    if not text:
        return None
    try:
        r = resolve(text)
    except UnknownKernel as e:
        raise BadInput(f"{opt}: {e}") from None
    if r.note:
        notes.append(r.note)
    return r.name


def _line(pr, role: str = "", width: int = 24) -> str:
    mark = "" if pr.exhaustive or not pr.testable else "  (NOT exhaustive: the scenario's bound)"
    return (f"{pr.kernel:<{width}} {pr.describe():<36} {pr.seconds:6.2f}s"
            + (f"  ({role})" if role else "") + mark)


def report(res, file: str) -> None:
    """The text output: the answer first, then the walk, then the counterexample."""
    sc = res.scenario
    w = max(24, *(len(p.kernel) + 1 for p in res.probes.values()))
    ends = f"good {res.good}, bad {res.bad}" if res.direction == "came in" else f"bad {res.bad}, good {res.good}"
    older, newer = (res.good, res.bad) if res.direction == "came in" else (res.bad, res.good)
    if not res.changes:
        verdict = res.end("good").describe()
        click.echo(f"{sc}: the verdict never changes between {older} and {newer}: {verdict} on every "
                   f"testable kernel of the series between them ({res.checks()} checked, "
                   f"{len(res.skipped())} could not be tested)")
    else:
        before, after = res.changes[0]
        good_side = before if res.direction == "came in" else after
        if good_side.kinds:     # the good end has findings of its own: no bug came or went as such
            what = "the bad verdict came in" if res.direction == "came in" else "the bad verdict ended"
        else:
            what = "the bug came in" if res.direction == "came in" else "the bug was fixed"
        c = after
        click.echo(f"{c.commit[:12]} is the first patch where {sc}'s verdict changes: {before.describe()} -> "
                   f"{after.describe()} ({what}; {ends})")
        click.echo(f"  commit  {c.commit[:12]} \"{c.title}\" ({c.version})")
        roles = ("good", "bad") if res.direction == "came in" else ("bad", "good")
        click.echo(f"  before  {_line(before, roles[0], w)}")
        click.echo(f"  after   {_line(after, roles[1], w)}")
        amb = res.ambiguous()
        if amb:
            from ..patches import series
            click.echo(f"  or one of the {len(amb)} patch{'es' if len(amb) != 1 else ''} right before it, "
                       f"which could not be tested:")
            for i in amb:
                p = series()[i]
                why = res.probes[i].reason if i in res.probes else "not reached"
                click.echo(f"          {p.commit[:12]} \"{p.title}\" ({p.version}): {why}")
        for b, a in res.changes[1:]:
            click.echo(f"  then    {a.commit[:12]} \"{a.title}\" ({a.version}): {b.describe()} -> {a.describe()}")
    between = res.newer - res.older
    click.echo(f"  searched {between} patch{'es' if between != 1 else ''} between {older} and {newer} "
               f"({res.search} search): {res.checks()} checks, {res.seconds:.2f}s")
    for p in res.patches:
        base = f", posted against {p.base}" if p.base else ""
        click.echo(f"  with patch {p.source or p.commit}: {p.commit} \"{p.title}\"{base}, on every prefix")
    skipped = res.skipped()
    if skipped:
        click.echo(f"  skipped (cannot test): "
                   + "; ".join(f"{p.commit[:12]} ({p.reason})" for p in skipped))
    for note in res.notes:
        click.echo(f"  note: {note}")
    click.echo("\nchecked, in order:")
    for pr in sorted(res.probes.values(), key=lambda p: p.order):
        role = "good" if pr.index == res.good_index else "bad" if pr.index == res.bad_index else ""
        click.echo(f"  {pr.order:>2}  {_line(pr, role, w)}")
    cx = res.counterexample
    if cx is not None:
        commit = cx.kernel.split("@", 1)[1].split("+", 1)[0] if "@" in cx.kernel else None
        click.echo(f"\ncounterexample on the {res.counterexample_side} side ({cx.kernel}):")
        print_result(cx, file, (), tuple(p.source for p in res.patches if p.source), commit)


@click.command("bisect")
@click.argument("spec", metavar="FILE::SCENARIO")
@click.option("--good", default=None, metavar="K",
              help="a kernel where the verdict is good (default: from the scenario's expect=)")
@click.option("--bad", default=None, metavar="K",
              help="a kernel where the verdict is bad (default: from the scenario's expect=)")
@click.option("--patch", "patches", multiple=True, type=_errors.Path(),
              help="a what-if patch file, applied on top of every prefix (repeatable)")
@click.option("-p", "--param", "params", multiple=True, help="scenario parameter NAME=VALUE")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def command(spec: str, good: str | None, bad: str | None, patches: tuple, params: tuple, as_json: bool) -> None:
    """Name the first patch of the series at which a scenario's verdict changes.

    \b
    Examples:
      zonedev bisect scenarios/teardown.py::teardown3 --good v5.17 --bad v5.18
      zonedev bisect scenarios/catalogue.py::f2_final_put_race
      zonedev bisect scenarios/teardown.py::teardown3 --good v6.0 --bad v6.1 --json"""
    from ..patches import PatchFileError, UnknownKernel, load_patch_file
    from ..rt.bisect import BisectError, bisect, default_ends
    from ..rt.check import check
    from ..rt.scenario import ScenarioFileError
    try:
        scenarios = load(spec)
        if len(scenarios) != 1:
            raise BadInput(f"{spec}: names {len(scenarios)} scenarios; say FILE::SCENARIO")
        sc = scenarios[0]
        if not sc.kernel:
            raise BadInput(f"{sc.file}:{sc.line}: scenario {sc.name} uses no kernel; there is nothing to bisect")
        pvals = parse_params(params)
        sc.with_params(pvals)
        extra = [load_patch_file(p) for p in patches]
        notes: list[str] = []
        g, b = _resolve("--good", good, notes), _resolve("--bad", bad, notes)
        if g and g == b:
            raise BadInput(f"--good {good} and --bad {bad} are the same modelled kernel ({g})")

        def verdict_on(name: str):
            r = check(sc, name, patches=tuple(extra), params=pvals, minimize=False, tables=False)
            return frozenset(f.kind for f in r.findings) if r.verdict != "error" else None

        g, b, how = default_ends(sc, g, b, verdict_on)
    except (BadInput, ScenarioFileError, PatchFileError, BisectError) as e:
        fail(str(e))
    except UnknownKernel as e:
        fail(f"{spec}: {e}")
    if how and not as_json:
        notes.append(f"--good {g} --bad {b} ({how})")
    tty = sys.stderr.isatty() and not as_json

    def on_probe(pr) -> None:
        if tty:
            click.echo(f"  checked {pr.kernel}: {pr.describe()}", err=True)

    try:
        res = bisect(sc, g, b, params=pvals, patches=extra, spec=spec, on_probe=on_probe)
    except (BisectError, PatchFileError, ScenarioFileError) as e:
        fail(str(e))
    except UnknownKernel as e:
        fail(f"{spec}: {e}")
    for note in notes:                      # after the search: a bad end is then one line alone
        click.echo(f"zonedev: {note}", err=True)
    if as_json:
        click.echo(json.dumps(res.as_dict(), indent=2))
    else:
        report(res, spec.partition("::")[0])
    sys.exit(0 if res.changes else 1)
