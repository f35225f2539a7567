"""The real kernels: Debian's stock 6.1.0-56 and 6.12.117 booted under qemu with
``memmap=256M!1G`` (65,536 fsdax pages; ``shared/reference/kernel_traces.md`` §1.2/§1.4, the
console log in ``shared/reference/samples/``) against the model of the kernel each maps to.

The experiment (the log's ``daxhold``): ext4 ``dax=always`` on /dev/pmem0, a 16-page file whose
blocks are pfns 0x40409-0x40418, mapped and touched (all present), ``vmsplice`` holding pages 0-3
(``iov_iter_get_pages`` -> get_user_pages_fast, FOLL_GET), a ``zdsnap`` scan of every pfn, the
pipe closed (``put_page`` -> ``__put_devmap_managed_page_refs(page, 1)`` at refcount 2), a scan.

Observed: idle pages at 1 (ref1=65536), the four held pages at 2 with mapcount 0 and the twelve
mapped-only pages still at 1 (DAX PTEs take no reference and no mapcount), back to 1 on release;
the kprobe on the put sees ``refs=1 ref=2``.  6.12 shows the same (``__put_devmap_managed_folio_refs``).

The model's prediction for v6.15+ (not measured: no stock kernel of that era was booted): idle
pages at **0**; a mapped page at 1 with mapcount 1 (the mapping's reference); held 2; back to 1
while mapped and 0 once unmapped.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE
from zonedev.sync import World, use_world
from zonedev.trace.formats import parse_file, parse_lines

_ROOT = Path(__file__).resolve().parents[1]
_SHARED = next((d for d in [Path(os.environ.get("ZONEDEV_SHARED", "/nonexistent")),
                            *(p / "shared" for p in _ROOT.parents)] if (d / "reference").is_dir()),
               _ROOT.parent / "shared")
CONSOLE = _SHARED / "reference" / "samples" / "guest-6.1.0-56-zdsnap-console.log"
TRACES_MD = _SHARED / "reference" / "kernel_traces.md"
needs_shared = pytest.mark.skipif(not CONSOLE.is_file() or not TRACES_MD.is_file(),
                                  reason="shared/reference (samples, kernel_traces.md) is not beside this checkout")

PMEM_START = 0x40000            # memmap=256M!1G: 1 GiB / 4 KiB
FILE_FIRST = 0x40409            # the daxhold pfns of the log
FILE_PAGES = 16
HELD = 4


def _log(path):
    """The console log, cut at its RK_SNAPSHOT_* markers: (snapshots, held pages, kprobes)."""
    recs = parse_file(path)
    snaps = [r.fields for r in recs if r.kind == "snapshot"]
    pages = [r.fields for r in recs if r.kind == "snapshot_page"]
    kprobes = [r.fields for r in recs if r.kind == "kprobe"]
    return snaps, pages, kprobes


def _experiment(kernel_name, nr_pages):
    """The daxhold experiment on the modelled kernel: returns the three scans (refcount
    histograms over the pgmap), the held pages' (refcount, mapcount), and the put events."""
    with use_world(World()) as w:
        k = zonedev.kernel(kernel_name)
        pm = ExampleDriver(k, "fsdax", nr_pages=nr_pages, start_pfn=PMEM_START, name="pmem0")
        pm.probe()
        sb = k.daxfs_mount(pm.pgmap)
        # ext4 placed the file at 0x40409.. (the log's daxhold lines): hand those blocks out first
        free = sb.free.peek()
        first = FILE_FIRST - PMEM_START
        sb.free.set(free[first:first + FILE_PAGES] + free[:first] + free[first + FILE_PAGES:], "mkfs")
        f = k.daxfs_create(sb, "f")
        k.daxfs_fallocate(f, FILE_PAGES)
        mm = k.mm_alloc()
        mm.mmap_lock.down_write()
        addr = k.do_mmap(mm, 0, FILE_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
        mm.mmap_lock.up_write()
        for i in range(FILE_PAGES):
            k.dax_user_write(mm, addr + i * 4096, i)            # daxhold touches every page
        scan = lambda: Counter(p._refcount.peek() for p in pm.pgmap.pages)   # noqa: E731 (zdsnap)
        idle = scan()
        held = k.get_user_pages_fast(mm, addr, HELD, 0)           # vmsplice: FOLL_GET
        busy = scan()
        held_state = [(p.pfn, p._refcount.peek(), p._mapcount.peek() + 1) for p in held]
        n = len(w.events)
        for p in held:
            k.put_page(p)                                          # the pipe is closed
        puts = [e for e in w.events[n:] if e.field == "_refcount"]
        released = scan()
        mm.mmap_lock.down_write()
        k.do_munmap(mm, addr, FILE_PAGES * 4096)
        mm.mmap_lock.up_write()
        unmapped = scan()
        assert w.violations == []
        return k.name, (idle, busy, released, unmapped), held_state, puts


@needs_shared
def test_debian_6_1_console_log_is_what_the_v6_1_model_does():
    snaps, pages, kprobes = _log(CONSOLE)
    # what the real kernel printed
    assert [(s["nr"], s["ref0"], s["ref1"], s["ref2"], s["ref_other"]) for s in snaps] == \
        [(65536, 0, 65536, 0, 0), (65536, 0, 65532, 4, 0), (65536, 0, 65536, 0, 0)]
    assert [(p["pfn"], p["count"], p["mapcount"]) for p in pages] == \
        [(FILE_FIRST + i, 2, 0) for i in range(HELD)]
    assert [(kp["function"], kp["refs"], kp["ref"]) for kp in kprobes] == [("__put_devmap_managed_page_refs", 1, 2)] * HELD
    # the model of the kernel 6.1.0-56-amd64 maps to, with the same 65,536 pages
    name, (idle, busy, released, _), held, puts = _experiment("6.1.0-56-amd64", 65536)
    assert name == "v6.1"
    for snap, model in zip(snaps, (idle, busy, released)):
        assert (model[0], model[1], model[2], sum(model.values())) == \
            (snap["ref0"], snap["ref1"], snap["ref2"], snap["nr"])
    assert [(pfn, c, m) for pfn, c, m in held] == [(p["pfn"], p["count"], p["mapcount"]) for p in pages]
    # each put enters the devmap-managed put at refcount 2 and drops refs=1 (the kprobe line)
    assert [(e.func, e.old, e.old - e.new) for e in puts] == \
        [("put_devmap_managed_page_refs", kp["ref"], kp["refs"]) for kp in kprobes]


def _md_block(text, start, end):
    return text[text.index(start):text.index(end, text.index(start))].splitlines()


@needs_shared
def test_debian_6_12_observations_are_what_the_v6_2_model_does():
    """kernel_traces.md §1.2 (dump_page of the first and of a held fsdax page on 6.12.117) and
    §1.4 (the kprobe on ``__put_devmap_managed_folio_refs``)."""
    text = TRACES_MD.read_text()
    dumps = [r.fields for r in parse_lines(_md_block(text, "a real ZONE_DEVICE (fsdax) page on Debian 6.12",
                                                     "Debian 6.1.0-56"), str(TRACES_MD)) if r.kind == "dump_page"]
    kprobes = [r.fields for r in parse_lines([ln for ln in text.splitlines() if "zdput: (__put_devmap_managed_folio_refs" in ln],
                                             str(TRACES_MD)) if r.kind == "kprobe"]
    first, busy = dumps
    assert (first["pfn"], first["count"], first["mapcount"]) == (PMEM_START, 1, 0)
    assert (busy["pfn"], busy["count"], busy["mapcount"]) == (FILE_FIRST, 2, 0)
    assert kprobes and {(kp["refs"], kp["ref"]) for kp in kprobes} == {(1, 2)}   # quoted in §1.2 and §1.4
    name, (idle, busy_scan, released, _), held, puts = _experiment("6.12", 2048)
    assert name == "v6.2"
    assert set(idle) == {1} and set(released) == {1}          # every page idle at 1, before and after
    assert busy_scan[2] == HELD and held[0] == (busy["pfn"], busy["count"], busy["mapcount"])
    assert (puts[0].old, puts[0].old - puts[0].new) == (kprobes[0]["ref"], kprobes[0]["refs"])


def test_v6_15_predicts_idle_at_zero():
    """What the model says a v6.15+ kernel would show for the same experiment."""
    for kn in ("v6.15", "newest"):
        name, (idle, busy, released, unmapped), held, puts = _experiment(kn, 2048)
        assert idle == Counter({0: 2048 - FILE_PAGES, 1: FILE_PAGES})     # mapped pages hold 1
        assert busy[2] == HELD and [h[1:] for h in held] == [(2, 1)] * HELD
        assert released == idle and unmapped == Counter({0: 2048})
