"""``zonedev lifecycle``, ``zonedev kernels``, ``zonedev patches``: output, --json, bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zonedev.cli import main
from zonedev.patches import KERNELS, SERIES


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_lifecycle_one_kernel_table():
    r = run("lifecycle", "--kernel", "v6.1", "--type", "private")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("v6.1:") and "MEMORY_DEVICE_PRIVATE" in lines[0]
    assert lines[1].split()[:3] == ["step", "r/p", "kernel"]
    rows = {l.split()[0]: l for l in lines[2:10]}
    assert list(rows) == ["memremap", "allocate", "get", "pin", "put", "unpin", "free", "memunmap"]
    # 0/1 changed from v6.0 by ef233450898f (letter e.g. "a"), then the call and the callback
    free = rows["free"].split()
    assert free[1] == "0/1" and free[-2:] == ["put_page", "page_free"]
    assert rows["allocate"].split()[1] == "1/2" and "zone_device_page_init" in rows["allocate"]
    assert rows["pin"].split()[1] == "1026/2"


def test_lifecycle_json_shape():
    r = run("lifecycle", "--kernel", "v5.18", "--type", "private", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert isinstance(data, list) and len(data) == 1
    obj = data[0]
    assert obj["kernel"] == "v5.18" and obj["type"] == "private"
    ops = [s["op"] for s in obj["steps"]]
    assert ops == ["memremap_pages", "lock_page", "get_page", "pin_user_page", "put_page",
                   "unpin_user_page", "put_page", "memunmap_pages"]
    for s in obj["steps"]:
        assert set(s) >= {"op", "refcount", "pgmap_refs", "callbacks", "violations"}
        assert isinstance(s["callbacks"], list) and isinstance(s["violations"], list)
    assert obj["steps"][6]["refcount"] == 1 and obj["steps"][6]["callbacks"] == ["page_free"]


def test_lifecycle_all_side_by_side_marks_absent():
    r = run("lifecycle", "--kernel", "all", "--type", "coherent", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert [d["kernel"] for d in data] == KERNELS
    absent = [d["kernel"] for d in data if d.get("absent")]
    assert absent == KERNELS[:KERNELS.index("v6.0")]
    t = run("lifecycle", "--kernel", "all", "--type", "fsdax")
    # fsdax shows violations (v4.18, v5.18): exit 1; kernels without the type are a row of "-"
    assert t.exit_code == 1
    assert t.output.splitlines()[2].split() == ["v4.5..v4.16"] + ["-"] * 8
    assert any(line.startswith("v6.15..newest") for line in t.output.splitlines())


@pytest.mark.parametrize("args,needle", [
    (("lifecycle", "--kernel", "v9.9"), "unknown kernel"),
    (("lifecycle", "--type", "hugetlb"), "'hugetlb' is not one of"),
    (("lifecycle", "--kernel", "v4.5", "--type", "private"), "no 'private'"),
    (("patches", "--kernel", "v2.6"), "unknown kernel"),
])
def test_bad_input_exits_2_without_traceback(args, needle):
    r = run(*args)
    assert r.exit_code == 2
    assert needle in r.output
    assert "Traceback" not in r.output


def test_kernels_and_patches_commands():
    r = run("kernels", "--json")
    data = json.loads(r.output)
    assert [d["kernel"] for d in data] == KERNELS
    v61 = data[KERNELS.index("v6.1")]
    assert v61["free_refcount"]["MEMORY_DEVICE_PRIVATE"] == 0 and v61["GUP_PIN_COUNTING_BIAS"] == 1024
    assert run("kernels").exit_code == 0
    p = json.loads(run("patches", "--json").output)
    commits = [x["commit"] for x in p]
    assert any(c.startswith("0dc45ca1ce18") for c in commits) and len(p) >= 35
    fix = next(x for x in p if x["commit"].startswith("0dc45ca1ce18"))
    assert fix["fixes"] == "27674ef6c73f" and fix["version"] == "v6.1"
    assert any(x["seed"] for x in p)
    txt = run("patches", "--kernel", "v4.12").output.splitlines()
    assert txt[-1].split()[1] == "71389703839e"


def test_lifecycle_without_and_user_patch(tmp_path):
    r = run("lifecycle", "--kernel", "v6.1", "--without", "0dc45ca1ce18", "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.output)[0]
    assert obj["built_as"] == "v6.1-0dc45ca1ce18"
    # without the pgmap reference on allocation the pgmap count no longer follows the page
    assert [s["pgmap_refs"] for s in obj["steps"]][:2] == [5, 5]
    bad = run("lifecycle", "--kernel", "v5.18", "--without", "0dc45ca1ce18")
    assert bad.exit_code == 2 and "not in v5.18" in bad.output and "Traceback" not in bad.output
    f = tmp_path / "p.py"
    f.write_text("from zonedev import Patch\nPATCH = Patch(commit='cafe0000beef', title='t', version='v6.1')\n"
                 "@PATCH.define\ndef get_page(k, page):\n    k.page_ref_add(page, 10, 'get_page')\n")
    r = run("lifecycle", "--kernel", "v6.1", "--patch", str(f), "--json")
    obj = json.loads(r.output)[0]
    assert obj["steps"][2]["refcount"] == 11 and obj["built_as"] == "v6.1+cafe0000beef"
    g = tmp_path / "broken.py"
    g.write_text("from zonedev import Patch\nPATCH = (\n")
    r = run("lifecycle", "--patch", str(g))
    assert r.exit_code == 2 and "broken.py:2" in r.output and "Traceback" not in r.output
