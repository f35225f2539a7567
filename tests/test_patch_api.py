"""What-if patches as a public API (docs/patches.md): ``zonedev.Patch``, its override points
(``define``, ``remove``, ``set``), its base kernel, and ``--patch`` on check and bisect."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.patches import kernel_at, load_patch_file
from zonedev.sync import World, use_world

ROOT = Path(__file__).resolve().parent.parent
TEARDOWN3 = "scenarios/teardown.py::teardown3"

#: put_page that only drops the count: a ZONE_DEVICE page reaching 0 never gets to the free path
#: (free_zone_device_page: page_free, and from v6.1 the pgmap reference the allocation took)
NO_FREE = '''\
import zonedev

PATCH = zonedev.Patch(commit="feedface0002", title="mm: put_page drops the count, nothing else",
                      version="v6.1", base="v6.1")


@PATCH.define
def put_page(k, page) -> None:
    """What if put_page never reached the free path?"""
    k.page_ref_dec(page.head, "put_page")
'''


def run(*args: str):
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture
def no_free(tmp_path) -> Path:
    path = tmp_path / "no_free.py"
    path.write_text(NO_FREE)
    return path


def test_a_patch_replacing_put_page_changes_the_verdict(no_free):
    plain = run("check", TEARDOWN3, "--kernel", "v6.1")
    assert plain.exit_code == 0 and "no violation" in plain.stdout
    # no --kernel: the patch's base (v6.1) is the kernel
    res = run("check", TEARDOWN3, "--patch", str(no_free))
    assert res.exit_code == 1, res.output
    head = res.stdout.splitlines()[0]
    assert head.startswith("teardown3  v6.1+feedface0002  FOUND 1 (hang)")
    assert "memunmap waits in wait_for_completion" in res.stdout
    assert f"with patch {no_free}: feedface0002 \"mm: put_page drops the count, nothing else\", " \
           f"posted against v6.1" in res.stdout
    # the replay command, its continuation lines (" \\" before an option) joined
    assert f"--kernel v6.1 --patch {no_free} --schedule" in re.sub(r" \\\n +", " ", res.stdout)
    # the same from Python, with the Patch object
    patch = load_patch_file(no_free)
    assert isinstance(patch, zonedev.Patch) and patch.base == "v6.1"
    r = zonedev.check(str(ROOT / TEARDOWN3), "v6.1", patches=[patch])
    assert {f.kind for f in r.findings} == {"hang"} and r.kernel == "v6.1+feedface0002"


def test_bisect_applies_the_patch_on_every_prefix(no_free):
    res = run("bisect", TEARDOWN3, "--bad", "v5.18", "--good", "v6.1", "--patch", str(no_free))
    assert res.exit_code == 0, res.output
    out = res.stdout
    # without the free path, memunmap_pages no longer returns early (use-after-free) but waits
    # forever, from the patch that makes an allocated page hold a pgmap reference
    assert out.splitlines()[0].startswith("0dc45ca1ce18 is the first patch where teardown3's verdict "
                                          "changes: use_after_free -> hang")
    assert "posted against v6.1, on every prefix" in out
    walked = [line for line in out.split("checked, in order:")[1].split("\n\n")[0].splitlines() if line.strip()]
    assert len(walked) >= 3 and all("+feedface0002" in line for line in walked)
    assert f"--at ef233450898f --patch {no_free} --schedule" in re.sub(r" \\\n +", " ", out)


def test_define_remove_set(tmp_path):
    path = tmp_path / "old_alloc.py"
    path.write_text(
        "import zonedev\n"
        "PATCH = zonedev.Patch(commit='feedface0003', title='drivers allocate the pre-v6.1 way', version='v6.1')\n"
        "PATCH.set(zd_alloc='get_page+lock_page')\n"
        "PATCH.remove('zone_device_page_init')\n")
    patch = load_patch_file(path)
    with use_world(World()) as world:
        k = zonedev.kernel("v6.1", extra=[patch])
        assert k.fact("zd_alloc") == "get_page+lock_page" and not k.has("zone_device_page_init")
        assert zonedev.kernel("v6.1").has("zone_device_page_init")
        drv = ExampleDriver(k, "private", nr_pages=1)
        drv.probe()
        page, how = drv.alloc()
        # a v6.1 free page rests at refcount 0: get_page on it is VM_BUG_ON_PAGE(page_count <= 0)
        assert how == "get_page+lock_page"
        assert [v.kind for v in world.violations] == ["get_on_free_page"]
    # the kernel at one patch of the series takes patches too
    assert kernel_at("0dc45ca1ce18", extra=[patch]).name == "v6.1@0dc45ca1ce18+feedface0003"


@pytest.mark.parametrize("text, line, words", [
    ("import zonedev\n\nPATCH = zonedev.Patch(commit='x', title='t' version='v6.1')\n", 3, "invalid syntax"),
    ("import zonedev\nPATCH = zonedev.Patch(commit='x')\n", 2, "TypeError"),
    ("import zonedev\nPATCH = zonedev.Patch(commit='x', title='t', version='v6.1',\n"
     "                      base='v6.x')\n", 3, "base: unknown kernel 'v6.x'"),
    ("import zonedev\n", 1, "defines no PATCH = zonedev.Patch(...)"),
])
@pytest.mark.parametrize("command", [
    ["check", TEARDOWN3, "--kernel", "v6.1"],
    ["bisect", TEARDOWN3, "--good", "v6.1", "--bad", "v5.18"],
])
def test_a_patch_that_does_not_load_is_file_line_exit_2(tmp_path, text, line, words, command):
    bad = tmp_path / "bad_patch.py"
    bad.write_text(text)
    res = run(*command, "--patch", str(bad))
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"zonedev: error: {bad}:{line}: ") and words in lines[0], lines
