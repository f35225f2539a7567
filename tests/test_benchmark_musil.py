"""benchmarks/run.py's musil side: without a Python >= 3.12 (or when musil's process fails) it
prints FAILED and no ratio, and so it does when benchmarks/teardown_musil.py finds other than the
v5.18 use-after-free and nothing on v6.1 (what SPIN, Rumur and zonedev find)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"


def _bench():
    spec = importlib.util.spec_from_file_location("zonedev_bench_run_musil", RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_no_python_312_is_failed_with_no_ratio(tmp_path, capsys):
    bench = _bench()
    old = _script(tmp_path / "python3.11", "echo 0 3.11.7\n")
    py, why = bench._musil_python(old)
    assert py is None and "no Python >= 3.12" in why and "3.11.7" in why
    assert bench._musil_python(str(tmp_path / "missing"))[0] is None
    bench.musil_abstraction(True, old)
    out = capsys.readouterr().out
    assert "musil: FAILED (no Python >= 3.12" in out
    assert "zd/musil" not in out and "found" not in out          # no table, no ratio


def test_a_failed_musil_process_is_failed(tmp_path):
    bench = _bench()
    broken = _script(tmp_path / "python", "echo 'ModuleNotFoundError: musil' >&2\nexit 1\n")
    wall, result = bench._musil(broken, 2, "v5.18", "first")
    assert wall is None and result.startswith("FAILED") and "musil" in result
    assert bench._ratio(None, 0.2) == "-"


def test_a_musil_verdict_other_than_the_race_is_failed(tmp_path):
    """The musil side times only an abstraction that finds what the kernel has: the v5.18
    use-after-free and nothing on v6.1 (run by `benchmarks/run.py --only musil` itself, since
    musil needs a Python >= 3.12 the test machine may not have)."""
    bench = _bench()
    wrong = _script(tmp_path / "python", 'echo \'{"found": [], "states": 3, "seconds": 0.001}\'\n')
    wall, result = bench._musil(wrong, 2, "v5.18", "full")
    assert wall is None and result.startswith("FAILED") and "use_after_free" in result
    right = _script(tmp_path / "python2", 'echo \'{"found": ["use_after_free"], "states": 3, "seconds": 0.001}\'\n')
    wall, result = bench._musil(right, 2, "v5.18", "full")
    assert wall is not None and result.startswith("found use_after_free")
    wall, result = bench._musil(right, 2, "v6.1", "full")
    assert wall is None and result.startswith("FAILED")
