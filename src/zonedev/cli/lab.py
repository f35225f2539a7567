"""``zonedev lab fsdax --kernel-image PATH``: the real-kernel fsdax experiment, prerequisites
first (``shared/reference/kernel_traces.md`` §3; ``docs/fsdax.md`` "Real kernels").

The experiment: a stock Debian kernel booted under qemu (TCG, no KVM) with ``memmap=256M!1G``
(65,536 fsdax pages), ext4 ``-o dax`` on /dev/pmem0, ``daxhold`` mapping 16 pages of a file and
holding 4 with ``vmsplice`` (FOLL_GET), the refcounts read back by the ``zdsnap`` module or a
kprobe on the devmap put, before, while held and after release.  The console log then goes to
``zonedev trace check LOG``, which follows it through the model of the kernel it came from.

What this command does: checks every prerequisite and prints one line for each that is
missing (exit 2).  When all are there it prints the qemu command line, the guest's steps and
what the model of that kernel predicts for each snapshot; it does not boot the guest itself
(this version), and nothing here runs in CI.
"""

from __future__ import annotations

import shutil
import struct
from collections import Counter
from pathlib import Path

import click

from . import _errors

#: the guest's modules (drivers/nvdimm and the ext4 stack, kernel_traces.md §3.4)
MODULES = ("libnvdimm", "nd_btt", "nd_e820", "nd_pmem", "crc16", "mbcache", "jbd2", "ext4")
PMEM_PAGES = 65536


def elf_is_static(path: Path) -> bool | None:
    """True for an ELF executable without a PT_INTERP segment (statically linked), False with
    one, None if the file is not a 64-bit little-endian ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except OSError:
        return None
    for i in range(phnum):
        if len(table) >= (i + 1) * phentsize and struct.unpack_from("<I", table, i * phentsize)[0] == 3:
            return False                                      # PT_INTERP: a dynamic loader
    return True


def bzimage_version(path: Path) -> str | None:
    """The version string of an x86 bzImage (``HdrS`` at 0x202; ``kernel_version`` at 0x20e
    points 0x200 bytes before the string), or None if the file is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(0x210)
            if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
                return None
            ptr, = struct.unpack_from("<H", head, 0x20E)
            fh.seek(ptr + 0x200)
            raw = fh.read(256)
    except OSError:
        return None
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    return text.split(" ", 1)[0] or None


def _find_module(root: Path, name: str) -> Path | None:
    for ext in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        hit = next(root.rglob(name + ext), None)
        if hit is not None:
            return hit
    return None


def missing_prerequisites(kernel_image: str | None, modules: str | None, zdsnap: str | None,
                          kprobe: bool, daxhold: str | None, qemu: str, busybox: str | None) -> list[str]:
    """Each missing prerequisite as ``WHERE: what is missing and how to get it``."""
    out = []
    if shutil.which(qemu) is None:
        out.append(f"{qemu}: not found on PATH (Debian: apt-get install --no-install-recommends qemu-system-x86)")
    bb = busybox or shutil.which("busybox") or ("/bin/busybox" if Path("/bin/busybox").exists() else None)
    if bb is None or not Path(bb).exists():
        out.append("busybox: not found (Debian: apt-get install busybox-static; the guest's /init and cpio need it)")
    elif elf_is_static(Path(bb)) is not True:
        out.append(f"busybox: {bb} is not a statically linked x86-64 executable (Debian: busybox-static)")
    version = None
    if kernel_image is None:
        out.append("--kernel-image: not given (apt-get download linux-image-6.1.0-56-amd64; "
                   "dpkg-deb -x it; the image is boot/vmlinuz-6.1.0-56-amd64)")
    elif not Path(kernel_image).is_file():
        out.append(f"--kernel-image: {kernel_image} does not exist")
    else:
        version = bzimage_version(Path(kernel_image))
        if version is None:
            out.append(f"--kernel-image: {kernel_image} is not an x86 bzImage (no HdrS header)")
    if modules is None:
        out.append("--modules: not given (the unpacked image's lib/modules/VERSION: "
                   + ", ".join(MODULES) + ")")
    elif not Path(modules).is_dir():
        out.append(f"--modules: {modules} is not a directory")
    else:
        absent = [m for m in MODULES if _find_module(Path(modules), m) is None]
        if absent:
            out.append(f"--modules: {modules} has no " + ", ".join(absent))
    if zdsnap is None and not kprobe:
        out.append("--zdsnap/--kprobe: no way to read the refcounts back: give --zdsnap FILE (the zdsnap "
                   "module built against linux-headers-VERSION) or --kprobe (a kprobe on the devmap put, "
                   "kernel_traces.md §1.4)")
    elif zdsnap is not None and not Path(zdsnap).is_file():
        out.append(f"--zdsnap: {zdsnap} does not exist")
    if daxhold is None:
        out.append("--daxhold: not given (a static program that maps 16 pages of a DAX file, writes them, "
                   "prints their pfns and vmsplices pages 0-3; gcc -static)")
    elif elf_is_static(Path(daxhold)) is not True:
        out.append(f"--daxhold: {daxhold} is not a statically linked x86-64 executable")
    return out


def predict(kernel: str, nr_pages: int = 64, mapped: int = 16, held: int = 4) -> dict:
    """The daxhold experiment on the model of ``kernel`` (a smaller pgmap than the guest's; the
    counts scale): refcount histograms idle / held / released, and the held pages'
    (refcount, mapcount)."""
    import zonedev
    from zonedev.linux.drivers.example import ExampleDriver
    from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE
    from zonedev.sync import World, use_world

    with use_world(World()):
        k = zonedev.kernel(kernel)
        pm = ExampleDriver(k, "fsdax", nr_pages=nr_pages, start_pfn=0x40000, name="pmem0")
        pm.probe()
        f = k.daxfs_create(k.daxfs_mount(pm.pgmap), "f")
        k.daxfs_fallocate(f, mapped)
        mm = k.mm_alloc()
        mm.mmap_lock.down_write()
        addr = k.do_mmap(mm, 0, mapped * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
        mm.mmap_lock.up_write()
        for i in range(mapped):
            k.dax_user_write(mm, addr + i * 4096, i)
        scan = lambda: dict(sorted(Counter(p._refcount.peek() for p in pm.pgmap.pages).items()))  # noqa: E731
        idle = scan()
        pages = k.get_user_pages_fast(mm, addr, held, 0)
        busy = scan()
        state = sorted({(p._refcount.peek(), p._mapcount.peek() + 1) for p in pages})
        for p in pages:
            k.put_page(p)
        return {"kernel": k.name, "pages": nr_pages, "idle": idle, "held": busy, "held_pages": state,
                "released": scan()}


def qemu_command(qemu: str, kernel_image: str) -> str:
    return (f"{qemu} -accel tcg -smp 2 -m 2G -nographic -no-reboot -kernel {kernel_image} "
            "-initrd initramfs.cpio.gz -append 'console=ttyS0 panic=-1 nokaslr memmap=256M!1G'")


@click.group(name="lab")
def command() -> None:
    """Experiments on real kernels under qemu (optional; never in CI).

    \b
    Examples:
      zonedev lab fsdax --kernel-image boot/vmlinuz-6.1.0-56-amd64 --modules lib/modules/6.1.0-56-amd64 --kprobe --daxhold ./daxhold
    """


@command.command(name="fsdax")
@click.option("--kernel-image", default=None, metavar="PATH", help="a Debian x86-64 bzImage (boot/vmlinuz-...)")
@click.option("--modules", default=None, metavar="DIR", help="that kernel's lib/modules/VERSION (unpacked from its .deb)")
@click.option("--zdsnap", default=None, metavar="FILE", help="the zdsnap module built for that kernel")
@click.option("--kprobe", is_flag=True, help="read refcounts with a kprobe on the devmap put instead of zdsnap")
@click.option("--daxhold", default=None, metavar="FILE", help="the static daxhold program for the guest")
@click.option("--qemu", default="qemu-system-x86_64", show_default=True, help="the qemu binary")
@click.option("--busybox", default=None, metavar="FILE", help="a static busybox (default: busybox on PATH, /bin/busybox)")
def fsdax_cmd(kernel_image, modules, zdsnap, kprobe, daxhold, qemu, busybox) -> None:
    """Check what the pin/release experiment needs; print its plan and the model's prediction.

    \b
    Examples:
      zonedev lab fsdax --kernel-image boot/vmlinuz-6.1.0-56-amd64 --modules lib/modules/6.1.0-56-amd64 --kprobe --daxhold ./daxhold
    """
    missing = missing_prerequisites(kernel_image, modules, zdsnap, kprobe, daxhold, qemu, busybox)
    if missing:
        for line in missing[:-1]:
            click.echo(f"zonedev: error: {_errors.one_line(line)}", err=True)
        _errors.fail(missing[-1])
    import zonedev
    version = bzimage_version(Path(kernel_image))
    try:
        modelled = zonedev.kernel(version.split("-", 1)[0].split("+", 1)[0]).name
    except Exception as e:                                    # an image version the model cannot name
        _errors.fail(f"--kernel-image: version {version!r} has no modelled kernel ({e})")
    p = predict(modelled)
    click.echo(f"kernel image: {kernel_image} ({version}), modelled as {modelled}")
    click.echo(f"boot: {qemu_command(qemu, kernel_image)}")
    click.echo("guest /init: insmod " + " ".join(MODULES) + "; mke2fs -b 4096 /dev/pmem0; mount -t ext4 -o dax; "
               + ("insmod zdsnap (snapshot)" if zdsnap else "kprobe on the devmap put")
               + "; daxhold (16 pages mapped, 4 held by vmsplice); snapshot; kill daxhold; snapshot")
    click.echo(f"model {p['kernel']} ({p['pages']} pages; the guest has {PMEM_PAGES}): idle refcounts {p['idle']}, "
               f"held {p['held']} (held pages (refcount, mapcount) {p['held_pages']}), released {p['released']}")
    click.echo("this version does not boot the guest: run the command above, then: zonedev trace check CONSOLE_LOG")
