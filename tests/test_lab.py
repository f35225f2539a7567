"""``zonedev lab fsdax``: the prerequisite check says, one line each, what is missing (exit 2);
with everything present it prints the plan and the model's prediction for the image's kernel.
Nothing here boots qemu: the prerequisites are fakes in a temporary directory."""

from __future__ import annotations

import os
import struct

from click.testing import CliRunner

from zonedev.cli import main
from zonedev.cli.lab import MODULES, bzimage_version, elf_is_static


def run(*args, path=""):
    env = {"PATH": path}
    return CliRunner().invoke(main, ["lab", "fsdax", *map(str, args)], env=env)


def _elf(path, interp=False):
    """A minimal x86-64 ELF executable: one PT_LOAD, plus PT_INTERP when ``interp``."""
    phnum = 2 if interp else 1
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", head, 0x20, 64)                  # e_phoff
    struct.pack_into("<HH", head, 0x36, 56, phnum)          # e_phentsize, e_phnum
    phdrs = struct.pack("<I", 1) + bytes(52)
    if interp:
        phdrs += struct.pack("<I", 3) + bytes(52)
    path.write_bytes(bytes(head) + phdrs)
    os.chmod(path, 0o755)
    return path


def _bzimage(path, version="6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC"):
    img = bytearray(0x400)
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x20E, 0x100)               # string at 0x300
    img[0x300:0x300 + len(version)] = version.encode()
    path.write_bytes(bytes(img))
    return path


def _world(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    _elf(bin_ / "qemu-system-x86_64", interp=True)
    _elf(bin_ / "busybox")
    mods = tmp_path / "lib" / "modules" / "6.1.0-56-amd64" / "kernel"
    mods.mkdir(parents=True)
    for m in MODULES:
        (mods / f"{m}.ko").write_bytes(b"\x7fELF")
    return bin_, mods.parent, _bzimage(tmp_path / "vmlinuz-6.1.0-56-amd64"), _elf(tmp_path / "daxhold")


def test_nothing_there_one_line_each():
    res = run()
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert [ln.split(": ")[2] for ln in lines] == \
        ["qemu-system-x86_64", "busybox", "--kernel-image", "--modules", "--zdsnap/--kprobe", "--daxhold"]
    assert all(ln.startswith("zonedev: error: ") for ln in lines)
    assert "apt-get install --no-install-recommends qemu-system-x86" in lines[0]
    assert "busybox-static" in lines[1] and "linux-image-6.1.0-56-amd64" in lines[2]
    assert res.stdout == ""


def test_each_prerequisite_named_when_it_alone_is_missing(tmp_path):
    bin_, mods, image, daxhold = _world(tmp_path)
    full = ["--kernel-image", image, "--modules", mods, "--kprobe", "--daxhold", daxhold]
    (mods / "kernel" / "nd_pmem.ko").unlink()
    res = run(*full, path=str(bin_))
    assert res.exit_code == 2 and res.stderr.strip().splitlines() == \
        [f"zonedev: error: --modules: {mods} has no nd_pmem"]
    (mods / "kernel" / "nd_pmem.ko").write_bytes(b"\x7fELF")
    _elf(bin_ / "busybox", interp=True)                    # a dynamic busybox
    res = run(*full, path=str(bin_))
    assert res.exit_code == 2 and "is not a statically linked" in res.stderr and res.stderr.count("\n") == 1
    _elf(bin_ / "busybox")
    not_image = tmp_path / "notbz"
    not_image.write_bytes(b"x" * 0x400)
    res = run("--kernel-image", not_image, *full[2:], path=str(bin_))
    assert res.exit_code == 2 and "is not an x86 bzImage" in res.stderr
    res = run(*[a for a in full if a != "--kprobe"], path=str(bin_))
    assert res.exit_code == 2 and "--zdsnap/--kprobe" in res.stderr


def test_all_present_prints_the_plan_and_the_v6_1_prediction(tmp_path):
    bin_, mods, image, daxhold = _world(tmp_path)
    assert bzimage_version(image) == "6.1.0-56-amd64" and elf_is_static(daxhold) is True
    res = run("--kernel-image", image, "--modules", mods, "--kprobe", "--daxhold", daxhold, path=str(bin_))
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "modelled as v6.1" in out and "memmap=256M!1G" in out and "-accel tcg" in out
    # the v6.1 model: idle pages at 1, the four held at 2 with mapcount 0, back to 1
    assert "idle refcounts {1: 64}" in out and "held {1: 60, 2: 4}" in out
    assert "(refcount, mapcount) [(2, 0)]" in out and "released {1: 64}" in out
    assert "does not boot the guest" in out
