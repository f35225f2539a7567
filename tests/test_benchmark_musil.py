"""benchmarks/run.py's musil side: without a Python >= 3.12 (or when musil's process fails) it
prints FAILED and no ratio; with one, benchmarks/teardown_musil.py finds the v5.18 use-after-free
and passes v6.1, as SPIN, Rumur and zonedev do."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

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


def test_the_abstraction_finds_the_v518_race_and_passes_v61():
    bench = _bench()
    py, ver = bench._musil_python()
    if py is None:
        pytest.skip(ver)
    vpy = Path(bench.os.environ.get("ZONEDEV_BENCH_CACHE") or Path.home() / ".cache" / "zonedev-bench") / \
        f"musil-py{'.'.join(ver.split('.')[:2])}" / "bin" / "python"
    if not vpy.exists():
        pytest.skip("no musil venv yet (python benchmarks/run.py --only musil makes it)")
    got = {}
    for rules in ("v5.18", "v6.1"):
        for search in ("first", "full"):
            p = subprocess.run([str(vpy), str(ROOT / "benchmarks" / "teardown_musil.py"), "--nu", "3",
                                "--rules", rules, "--search", search], capture_output=True, text=True, timeout=60)
            got[rules, search] = json.loads(p.stdout)["found"]
    assert got["v5.18", "first"] == got["v5.18", "full"] == ["use_after_free"]
    assert got["v6.1", "first"] == got["v6.1", "full"] == []
