"""The CLI fuzz test (issue 12): generated command lines over every subcommand, with generated
malformed scenario and patch files (tests/fuzz_cli_inputs.py), run with a fixed seed and a
bounded count.  Every outcome must keep the promises: no traceback, exit status in {0, 1, 2, 130},
exit 2 with the one-line ``zonedev: error: WHERE: reason``, valid JSON under ``--json``, no run
past its budget.  The longer run: ``python benchmarks/fuzz.py --count 2000``."""

import itertools

from hypothesis import HealthCheck, Phase, given, settings

from fuzz_cli_inputs import invocation, judge, run_one

#: generated inputs per suite run
COUNT = 120
_seq = itertools.count()
_seen: list[int] = []


@settings(max_examples=COUNT, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(invocation())
def test_generated_invocations_keep_the_promises(tmp_path_factory, case):
    files, argv = case
    where = tmp_path_factory.getbasetemp() / f"fuzz{next(_seq)}"
    r, seconds, hung = run_one(files, argv, where)
    _seen.append(1)
    problems = judge(r, seconds, hung, argv)
    assert not problems, (argv, problems, r.stdout[-600:], r.stderr[-600:])


def test_the_fuzz_ran_its_count():
    assert len(_seen) >= COUNT * 0.9, len(_seen)
