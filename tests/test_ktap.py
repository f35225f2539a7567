"""``zonedev selftest hmm`` prints KTAP as the kselftest harness does, checked with a KTAP parser
written from the spec (Documentation/dev-tools/ktap.rst): a version line, a plan, ``ok``/``not ok``
result lines numbered from 1 with optional ``# DIRECTIVE reason``, diagnostic lines starting
with ``#``.  The harness's own lines (tools/testing/selftests/kselftest_harness.h) come on top:
``# Starting N tests from M test cases.``, ``#  RUN``, ``#      SKIP``, ``#            OK``, totals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from zonedev.cli import main

VERSION = re.compile(r"^(KTAP version 1|TAP version 1[34])$")
PLAN = re.compile(r"^1\.\.(\d+)$")
RESULT = re.compile(r"^(ok|not ok) (\d+)(?: ([^#]*?))?(?: # ?(.*))?$")
DIRECTIVES = ("SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR")


class KTAPError(ValueError):
    pass


@dataclass
class KtapTest:
    ok: bool
    number: int
    name: str
    directive: str | None = None
    reason: str = ""


@dataclass
class Document:
    version: str
    plan: int
    tests: list[KtapTest] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)


def parse_ktap(text: str) -> Document:
    """Parse one top-level KTAP document (no subtests); raise :class:`KTAPError` naming the line."""
    lines = text.splitlines()
    if not lines or not VERSION.match(lines[0]):
        raise KTAPError(f"line 1: expected a version line, got {lines[0] if lines else ''!r}")
    doc = Document(lines[0], -1)
    for n, line in enumerate(lines[1:], 2):
        if line.startswith("#"):
            if len(line) > 1 and line[1] != " ":
                raise KTAPError(f"line {n}: a diagnostic line is '# ' and text: {line!r}")
            doc.diagnostics.append(line[2:])
            continue
        m = PLAN.match(line)
        if m:
            if doc.plan >= 0 or doc.tests:
                raise KTAPError(f"line {n}: the plan must come once, before the first result")
            doc.plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if m:
            if doc.plan < 0:
                raise KTAPError(f"line {n}: a result before the plan")
            number = int(m.group(2))
            if number != len(doc.tests) + 1:
                raise KTAPError(f"line {n}: test number {number}, expected {len(doc.tests) + 1}")
            directive, reason = None, ""
            if m.group(4) is not None:
                word, _, reason = m.group(4).partition(" ")
                if word.upper() not in DIRECTIVES:
                    raise KTAPError(f"line {n}: unknown directive {word!r}")
                directive = word.upper()
            doc.tests.append(KtapTest(m.group(1) == "ok", number, (m.group(3) or "").strip(), directive, reason))
            continue
        raise KTAPError(f"line {n}: neither a plan, a result nor a diagnostic: {line!r}")
    if doc.plan < 0:
        raise KTAPError("no plan")
    if len(doc.tests) != doc.plan:
        raise KTAPError(f"the plan says {doc.plan} tests, {len(doc.tests)} results")
    return doc


@pytest.mark.parametrize("bad,where", [
    ("1..1\nok 1 a\n", "line 1"),                               # no version line
    ("TAP version 13\nok 1 a\n1..1\n", "line 2"),               # a result before the plan
    ("TAP version 13\n1..2\nok 1 a\nok 3 b\n", "line 4"),       # numbering
    ("TAP version 13\n1..1\nok 1 a # MAYBE x\n", "line 3"),     # unknown directive
    ("TAP version 13\n1..1\n  RUN a\nok 1 a\n", "line 3"),      # stray text
    ("TAP version 13\n1..2\nok 1 a\n", "plan says 2"),
])
def test_the_parser_refuses_what_ktap_does_not_allow(bad, where):
    with pytest.raises(KTAPError, match=where):
        parse_ktap(bad)


def run(*args):
    return CliRunner().invoke(main, list(args))      # .stdout: stdout alone (click 8.2+)


def test_selftest_output_parses_as_ktap_with_the_harness_lines():
    r = run("selftest", "hmm", "--kernel", "v6.0")
    assert r.exit_code == 0, r.output
    doc = parse_ktap(r.stdout)
    assert doc.version == "TAP version 13" and doc.plan == 56 and len(doc.tests) == 56
    assert doc.diagnostics[0] == "Starting 56 tests from 4 test cases."
    skips = [t for t in doc.tests if t.directive == "SKIP"]
    assert len(skips) == 6 and all(t.ok and t.reason for t in skips)      # anon_write_huge runs (THP)
    assert all(t.ok for t in doc.tests)
    # each test: RUN, (SKIP reason), OK, then its result line, as __run_test prints them
    lines = r.stdout.splitlines()
    for t in doc.tests:
        i = lines.index(f"ok {t.number} {t.name}" + (f" # SKIP {t.reason}" if t.directive else ""))
        assert lines[i - 1] == f"#            OK  {t.name}"
        if t.directive:
            assert lines[i - 2] == f"#      SKIP      {t.reason}" and lines[i - 3] == f"#  RUN           {t.name} ..."
        else:
            assert lines[i - 2] == f"#  RUN           {t.name} ..."
    # totals with the skips; a skip passes, as __test_passed has it
    assert "PASSED: 56 / 56 tests passed." in doc.diagnostics
    assert doc.diagnostics[-1] == "Totals: pass:50 fail:0 xfail:0 xpass:0 skip:6 error:0"


def test_list_and_test_selection_as_the_harness():
    r = run("selftest", "hmm", "--kernel", "v6.1", "-l")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == f"{'# FIXTURE':<20} {'VARIANT':<25} TEST"
    assert lines[1].split() == ["hmm", "hmm_device_private", "open_close"]
    assert lines[2].split() == ["hmm_device_coherent", "anon_read"]
    assert "-" * 80 in lines
    assert lines[lines.index("-" * 80) + 1].split() == ["hmm2", "hmm2_device_private", "migrate_mixed"]
    # two -t: those tests on every fixture variant, in order; still KTAP
    r = run("selftest", "hmm", "--kernel", "v6.1", "-t", "migrate", "-t", "open_close")
    doc = parse_ktap(r.stdout)
    assert [t.name for t in doc.tests] == ["hmm.hmm_device_private.open_close", "hmm.hmm_device_private.migrate",
                                           "hmm.hmm_device_coherent.open_close", "hmm.hmm_device_coherent.migrate"]
    assert doc.diagnostics[0] == "Starting 4 tests from 2 test cases."


@pytest.mark.parametrize("args,words", [
    (("-t", "nonexistent"), "no case 'nonexistent'"),
    (("--kernel", "v6.1", "-t", "migrate_anon_huge_fault"), "has no case 'migrate_anon_huge_fault'"),
])
def test_unknown_test_is_an_error(args, words):
    r = CliRunner().invoke(main, ["selftest", "hmm", *args])
    assert r.exit_code == 2 and words in r.output and "1..0" not in r.output
