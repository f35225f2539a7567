"""zonedev's pytest plugin: the scenario library as test items, and a fixture for driver tests.

Installed with zonedev (entry point ``pytest11``), so ``python -m pytest scenarios/`` collects
every scenario that declares ``expect=`` as one item per kernel it declares::

    scenarios/teardown.py::teardown3[v5.18] PASSED
    scenarios/teardown.py::teardown3[v6.1] PASSED

An item passes when the verdict on that kernel (the set of finding kinds, or safe) is the one
the scenario expects, and fails with the expected and found verdicts, each finding's
counterexample table and its replay command otherwise.  ``--zonedev-kernel K`` (repeatable;
versions as zonedev takes them, comma lists, ``all``) picks the kernels; a kernel the scenario
does not declare, or one that lacks a function the scenario needs, is a skip with the reason.

Files are collected when they are not test modules (``test_*.py``, ``*_test.py``, conftest) and
use ``zonedev.scenario``; they are loaded by zonedev's own loader, exactly as ``zonedev check``
loads them.  The ``zonedev_verdict`` fixture serves a driver team's own tests (docs/pytest.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("zonedev", "zonedev scenarios")
    group.addoption("--zonedev-kernel", action="append", default=[], metavar="K",
                    help="run scenario items on these kernels (versions, comma lists, 'all'); "
                         "default: the kernels each scenario's expect= declares")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "zonedev: a zonedev scenario checked on one kernel")


_DECORATED = re.compile(r"^@(?:zonedev\.)?scenario\b", re.M)


def _is_scenario_file(file_path: Path) -> bool:
    """A Python file, not a test module, with a top-level ``@zonedev.scenario`` line."""
    name = file_path.name
    if file_path.suffix != ".py" or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return False
    try:
        return bool(_DECORATED.search(file_path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    if _is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> Any:
    """A scenario file named on the command line is not also a Python test module (pytest would
    import it a second time, outside zonedev's loader)."""
    if _is_scenario_file(module_path):
        return _NotAModule.from_parent(parent, path=module_path)
    return None


class _NotAModule(pytest.File):
    def collect(self):
        return []


class ScenarioFile(pytest.File):
    """A scenario file: one item per (scenario with expect=, kernel)."""

    def collect(self):
        from .rt.scenario import NoScenarios, ScenarioFileError, load_scenarios
        try:
            found = load_scenarios(self.path)
        except NoScenarios:       # a helper module that only mentions the decorator: nothing to run
            return
        except ScenarioFileError as e:
            raise self.CollectError(f"zonedev: error: {e}") from None
        wanted = _kernels(self.config)
        for sc in found.values():
            if sc.expect is None:
                continue
            for k in (wanted if wanted is not None else list(sc.expect)):
                yield ScenarioItem.from_parent(self, name=f"{sc.name}[{k}]", scenario=sc, kernel=k)


def _kernels(config: Any) -> list[str] | None:
    items = config.getoption("zonedev_kernel") or []
    if not items:
        return None
    from .patches import UnknownKernel, resolve_list
    try:
        return [r.name for r in resolve_list(items)]
    except UnknownKernel as e:
        raise pytest.UsageError(f"zonedev: error: --zonedev-kernel: {e}") from None


class VerdictMismatch(AssertionError):
    """The verdict on a kernel is not the expected one."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, kernel: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario
        self.kernel = kernel
        self.add_marker(pytest.mark.zonedev)

    def runtest(self) -> None:
        sc, k = self.scenario, self.kernel
        if not sc.applies(k):
            covered = ", ".join(sc.expect) if sc.expect else "none"
            pytest.skip(f"{sc.name} declares no verdict for {k} (it covers {covered})")
        check_verdict(sc, k, sc.expected(k))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, VerdictMismatch):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(0, self.scenario.line - 1), f"{self.scenario.name} on {self.kernel}"


def check_verdict(scenario: Any, kernel: str, expected: Any, **options: Any) -> Any:
    """Check ``scenario`` on ``kernel`` and raise :class:`VerdictMismatch` (with the tables and
    replay commands) unless the verdict is ``expected`` ("safe", a kind, kinds, or a frozenset);
    skip when the kernel lacks a function the scenario needs.  Returns the :class:`Result`."""
    from .report.commands import replay_command
    from .rt.check import check
    from .rt.expect import describe, kinds_of
    want = expected if isinstance(expected, frozenset) else kinds_of(expected)
    if isinstance(scenario, str):
        from .rt.scenario import resolve
        found = resolve(scenario)
        if len(found) != 1:
            raise pytest.UsageError(f"zonedev: error: {scenario}: names {len(found)} scenarios; say FILE::NAME")
        scenario = found[0]
    opts = {**scenario.bound, **options}
    res = check(scenario, kernel, **opts)
    if res.verdict == "error":
        from .linux.kernel import MISSING_FUNCTION
        if MISSING_FUNCTION.search(res.error) or "lacks" in res.error:
            pytest.skip(f"{kernel} lacks what {scenario.name} needs: {res.error}")
        raise VerdictMismatch(f"{scenario.name} on {kernel}: the scenario could not run: {res.error}")
    got = frozenset(f.kind for f in res.findings)
    if got == want:
        return res
    spec = f"{scenario.file}::{scenario.name}"
    lines = [f"{scenario.name} on {res.kernel}: expected {describe(want)}, found {describe(got)}",
             f"  {res.summary()}"]
    from .report.table import shared
    for (table, same), (i, f) in zip(shared(res.findings), enumerate(res.findings, 1)):
        lines += ["", f"  finding {i}: {f.kind}: {f.message}",
                  f"    replay: {replay_command(spec, res.kernel, f.schedule, res.params)}"]
        if same:
            lines.append(f"    (the same interleaving as {same} above)")
        elif table:
            lines += ["    " + line for line in table.splitlines()]
    if not res.findings:
        lines.append(f"  ({res.coverage()}: nothing found where {describe(want)} was expected)")
    raise VerdictMismatch("\n".join(lines))


@pytest.fixture
def zonedev_verdict():
    """``zonedev_verdict(scenario_or_spec, kernel, expected, **check_options)``: assert a verdict,
    failing with the counterexample tables and replay commands; returns the Result."""
    return check_verdict
