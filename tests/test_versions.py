"""Kernel versions as people write them map onto the modelled series."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.patches import KERNELS, UnknownKernel, kernel_range, patches_for, resolve, resolve_list, series, version_key


@pytest.mark.parametrize("text,name", [
    ("6.12", "v6.2"), ("v6.6", "v6.2"), ("v5.15.120", "v5.14"), ("6.1.0-56-amd64", "v6.1"),
    ("7.0-rc4", "v7.0"), ("7.1-rc6", KERNELS[-2]), ("4.16.3", "v4.16"), ("v6.1", "v6.1"), ("newest", "newest"),
    ("5.4", "v5.3"), ("4.19.0-21-amd64", "v4.19"),
])
def test_versions_map_to_the_newest_modelled_kernel_at_or_below(text, name):
    assert resolve(text).name == name


def test_mapping_is_exact_every_patch_release_is_a_named_kernel():
    # so "no ZONE_DEVICE change in the series between X and Y" is true by construction
    assert {p.version for p in series()} <= set(KERNELS)
    r = resolve("6.12")
    assert r.note == "6.12 -> modelled as v6.2: no ZONE_DEVICE change in the series between v6.2 and 6.12"
    assert patches_for("6.12") == patches_for("v6.2")
    assert zonedev.kernel("6.12").name == "v6.2"


@pytest.mark.parametrize("bad", ["v6.x", "9999", "3.10", "v10.1", "6", "", "v6.99", "linux", "v5.18..v6.1", "6.1.."])
def test_garbage_is_refused(bad):
    with pytest.raises(UnknownKernel):
        resolve(bad)


def test_lists_and_all():
    got = [r.name for r in resolve_list(["v5.18,6.12", "6.2"])]
    assert got == ["v5.18", "v6.2"]          # 6.12 and 6.2 are the same modelled kernel
    assert [r.name for r in resolve_list("all")] == KERNELS


def test_ranges():
    assert kernel_range("v6.2") == "6.2 - 6.14"
    assert kernel_range("v4.20") == "4.20"
    assert kernel_range("v5.19") == "5.19"
    assert kernel_range("v4.5") == "4.5 - 4.11"


def test_cli_says_the_mapping_once_and_refuses_garbage(tmp_path):
    r = CliRunner().invoke(main, ["kernels"])
    assert r.exit_code == 0 and re.search(r"^v6\.2\s+6\.2 - 6\.14", r.output, re.M)
    assert "newest follows" in r.output
    r = CliRunner().invoke(main, ["lifecycle", "--kernel", "v6.x"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["lifecycle", "--kernel", "6.1.0-56-amd64", "--json"])
    assert r.exit_code == 0, r.output


def test_every_violation_kind_in_the_model_is_registered():
    from zonedev.sync.kinds import KINDS
    src = Path(zonedev.__file__).parent
    used = set()
    for f in src.rglob("*.py"):
        used |= set(re.findall(r'violate\(\s*"([a-z_]+)"', f.read_text()))
    assert used and used <= set(KINDS), sorted(used - set(KINDS))
