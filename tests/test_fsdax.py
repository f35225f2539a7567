"""The fsdax surface end to end: a pmem device, a DAX file mapped shared, faults, O_DIRECT whose
buffer is the DAX mapping, truncate and hole punch with the break-layouts wait, GUP rules.

Every kernel with MEMORY_DEVICE_FS_DAX (v4.18+) is checked; the expected numbers are the
kernel's (kernel_eras §4, §7, §9; kernel_2025_2026 C3, F19)."""

from __future__ import annotations

import errno

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.fs.daxfs import regular_file
from zonedev.linux.include.mm import FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE, OSErrorKernel, find_vma
from zonedev.patches import KERNELS, version_key
from zonedev.sync import Scheduler, World, use_world
from zonedev.sync.world import WouldBlockForever

FSDAX_KERNELS = [k for k in KERNELS if version_key(k) >= version_key("v4.18")]
PIN_KERNELS = [k for k in FSDAX_KERNELS if version_key(k) >= version_key("v5.7")]


class Inject(Scheduler):
    """Run ``fn`` once, just before the first point labelled ``before`` (another CPU's action
    placed at an exact spot); a blocking point that cannot proceed raises WouldBlockForever."""

    def __init__(self, fn, before):
        self.fn, self.before, self.done = fn, before, False

    def point(self, obj, kind, label, ready, reads):
        if not self.done and label == self.before:
            self.done = True
            w = obj.world
            w.scheduler = None
            try:
                self.fn()
            finally:
                w.scheduler = self
        if ready is not None and not ready():
            raise WouldBlockForever(label)

    def thread_name(self):
        return "main"


def setup(k, nr_pages=2, pmem_pages=4):
    pm = ExampleDriver(k, "fsdax", nr_pages=pmem_pages)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap)
    f = k.daxfs_create(sb, "f")
    k.daxfs_fallocate(f, nr_pages)
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, nr_pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    return pm, sb, f, mm, addr


def kinds(w):
    return [v.kind for v in w.violations]


@pytest.mark.parametrize("kn", FSDAX_KERNELS)
def test_mapped_unpinned_page_does_not_block_truncate(kn):
    """C3: a page that is only mapped (written through the mapping, no GUP) is not busy: truncate
    unmaps it and completes without waiting, on every kernel."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 41)
        k.dax_user_write(mm, addr + 4096, 42)
        page = k.memmap[f.i_blocks.peek()[0]]
        mapped = bool(k.fact("dax_mapping_takes_ref"))
        # before v6.15 a DAX PTE is devmap: no reference, no mapcount; v6.15: one of each
        assert (page._refcount.peek(), page._mapcount.peek() + 1) == ((1, 1) if mapped else (1, 0))
        assert mm.peek_pte(addr).devmap is (not mapped)
        waits = k.daxfs_truncate(f, 0)          # would raise WouldBlockForever if it waited
        assert waits == 0
        assert mm.peek_pte(addr) is None and f.i_size.peek() == 0
        assert page._refcount.peek() == k.fact("fsdax_idle_refcount")
        assert page.mapping.peek() is None and page.pfn in sb.free.peek()
        assert kinds(w) == []


@pytest.mark.parametrize("kn,gup", [(k, "get") for k in FSDAX_KERNELS] + [(k, "pin") for k in PIN_KERNELS])
def test_truncate_waits_for_odirect_then_completes(kn, gup):
    """O_DIRECT from the DAX mapping into a regular file holds the page (GUP); truncate finds it
    busy, sleeps with MMAPLOCK dropped, and the I/O completion's put/unpin wakes it; then the
    block is freed.  v5.18's unpin forgets the wake-up (F12, fixed by f4f451a16dd1)."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 7)
        page = k.memmap[f.i_blocks.peek()[0]]
        idle = k.fact("fsdax_idle_refcount")
        busy = bool(k.fact("dax_mapping_takes_ref"))
        pages = k.dio_get_user_pages(mm, addr, 1, False, gup)
        assert pages == [page]
        held = page._refcount.peek()
        assert held == idle + int(busy) + (1024 if gup == "pin" else 1)
        out = regular_file("r", 1)
        k.dio_copy(pages, out, 0, False)
        w.scheduler = Inject(lambda: k.dio_put_user_pages(pages, gup), before="___wait_var_event (sleeping)")
        hung = False
        try:
            waits = k.daxfs_truncate(f, 0)
        except WouldBlockForever:
            hung = True
        w.scheduler = None
        assert out.blocks.peek() == (7,)
        if kn == "v5.18" and gup == "pin":
            assert hung and kinds(w) == ["fsdax_waiter_never_woken"]
            return
        assert not hung and waits == 1
        assert page._refcount.peek() == idle and page.pfn in sb.free.peek()
        # v4.18's free path clears ->mapping of the page at the I/O's put (fixed by 2fa147bdbf67)
        assert kinds(w) == (["dax_mapping_lost"] if kn == "v4.18" else [])


@pytest.mark.parametrize("kn", FSDAX_KERNELS)
def test_hole_punch_waits_for_pinned_page_only(kn):
    """Punching page 1 waits only for page 1's holder; a pin on page 0 does not matter."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        pages = k.dio_get_user_pages(mm, addr, 1, False, "get")     # page 0 held
        assert k.daxfs_punch_hole(f, 1, 1) == 0
        assert f.i_blocks.peek()[1] is None and f.i_size.peek() == 2
        k.dio_put_user_pages(pages, "get")
        assert kinds(w) == (["dax_mapping_lost"] if kn == "v4.18" else [])     # 2fa147bdbf67


@pytest.mark.parametrize("kn", FSDAX_KERNELS)
def test_longterm_pin_of_fsdax_refused(kn):
    """FOLL_LONGTERM on an fsdax VMA fails with -EOPNOTSUPP through the fast and the slow path
    and leaves no reference behind (kernel_eras §6.6, §9.3)."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        page = k.memmap[f.i_blocks.peek()[0]]
        before = page._refcount.peek()
        for call in (k.pin_user_pages_fast, k.get_user_pages_fast):
            with pytest.raises(OSErrorKernel) as e:
                call(mm, addr, 1, FOLL_LONGTERM | FOLL_WRITE)
            assert e.value.errno == errno.EOPNOTSUPP
        assert page._refcount.peek() == before
        assert kinds(w) == []


@pytest.mark.parametrize("kn", ["v5.0", "v5.2", "v6.1", "v6.15"])
def test_gup_fast_devmap_longterm_bails(kn):
    """From v5.2 (7af75561e171) gup-fast stops at a devmap PTE with FOLL_LONGTERM before any
    reference; before it, the fast walk grabs the page (the slow path then refuses the VMA).
    v6.15 maps DAX with normal PTEs: the fast path's ``try_grab_folio_fast`` takes one reference
    (``try_get_folio``), finds the folio not long-term pinnable and puts it back before any pin
    is counted (mm/gup.c v6.10+)."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        page = k.memmap[f.i_blocks.peek()[0]]
        n = len(w.events)
        got = k.gup_fast(mm, addr, 1, FOLL_LONGTERM | FOLL_PIN)
        refs = [e for e in w.events[n:] if e.pfn == page.pfn and e.field == "_refcount"]
        assert got == []
        if kn == "v6.15":
            assert [e.new - e.old for e in refs] == [1, -1]
        else:
            assert refs == []
        assert kinds(w) == []


@pytest.mark.parametrize("kn", ["v4.18", "v5.3", "v6.1"])
def test_gup_devmap_takes_and_drops_pgmap(kn):
    """GUP on a devmap PTE holds a pgmap reference while it takes the page (fast and slow),
    and leaves the pgmap count as it was; once memunmap has killed the pgmap the lookup fails:
    the fast path undoes and the slow path returns -EFAULT."""
    with use_world(World()):
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        k.dax_user_write(mm, addr + 4096, 2)
        ref = pm.pgmap.ref
        base = ref.peek()
        pages = k.get_user_pages_fast(mm, addr, 2, 0)
        assert ref.peek() == base and len(pages) == 2
        for p in pages:
            k.put_page(p)
        ref.kill("percpu_ref_kill")
        assert k.gup_fast(mm, addr, 2, 0) == []
        mm.mmap_lock.down_read()
        with pytest.raises(OSErrorKernel) as e:
            k.get_user_pages(mm, addr, 1, 0)
        mm.mmap_lock.up_read()
        assert e.value.errno == errno.EFAULT


class _KillAtSecondLookup(Scheduler):
    """memunmap's percpu_ref_kill lands between gup-fast's first and second pgmap lookup."""

    def __init__(self, ref):
        self.ref, self.seen, self.done = ref, 0, False

    def point(self, obj, kind, label, ready, reads):
        if obj is self.ref and label.startswith("percpu_ref_tryget_live") and not self.done:
            self.seen += 1
            if self.seen == 2:
                self.done = True
                w = obj.world
                w.scheduler = None
                try:
                    self.ref.kill("percpu_ref_kill")
                finally:
                    w.scheduler = self

    def thread_name(self):
        return "main"


@pytest.mark.parametrize("kn", ["v4.18", "v5.10", "v6.1"])
def test_gup_fast_undoes_pages_when_a_later_lookup_fails(kn):
    """undo_dev_pagemap(): gup-fast has grabbed page 0 when the pgmap lookup for page 1 fails
    (the pgmap was killed in between); it drops page 0's reference and returns nothing, leaving
    every count as it was."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        k.dax_user_write(mm, addr + 4096, 2)
        p0 = k.memmap[f.i_blocks.peek()[0]]
        before = (p0._refcount.peek(), pm.pgmap.ref.peek())
        w.scheduler = _KillAtSecondLookup(pm.pgmap.ref)
        got = k.gup_fast(mm, addr, 2, FOLL_PIN if k.has("unpin_user_page") else FOLL_GET)
        w.scheduler = None
        assert got == []
        grabbed = [e for e in w.events if e.pfn == p0.pfn and e.field == "_refcount"][-2:]
        assert grabbed[0].new > grabbed[0].old and grabbed[1].new < grabbed[1].old   # taken, then undone
        assert (p0._refcount.peek(), pm.pgmap.ref.peek()) == (before[0], before[1] - 1)   # -1: the kill


@pytest.mark.parametrize("kn", ["v5.0", "v5.10", "v6.1", "v6.15"])
def test_gup_fast_grab_fails_silently_on_a_page_at_zero(kn):
    """GUP-fast reads the PTE without the PTL, so it can find a page whose last reference is
    being dropped: its speculative grab (``try_get_compound_head`` / ``try_grab_compound_head`` /
    ``try_grab_folio`` / ``try_grab_folio_fast``, an add unless 0) fails without a word and the
    walk bails to the slow path.  Only the slow path's ``try_grab_page`` (under the PTL, where a
    mapped page at 0 is a real bug) WARNs.  mm/gup.c, every era."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        page = k.memmap[f.i_blocks.peek()[0]]
        page._refcount.set(0, "the last put, racing the lockless walk")
        for flags in (FOLL_GET, FOLL_PIN):
            assert k.gup_fast(mm, addr, 1, flags) == []
        assert page._refcount.peek() == 0
        assert kinds(w) == []
        if k.fact("GUP_PIN_COUNTING_BIAS"):              # v5.7+: try_grab_page WARNs
            vma = find_vma(mm, addr)
            assert k.follow_page_pte(vma, addr, FOLL_PIN) == -errno.ENOMEM
            assert kinds(w) == ["get_on_free_page"]


@pytest.mark.parametrize("kn", ["v5.10", "v6.1"])
def test_follow_devmap_page_refused_pin_returns_no_page(kn):
    """follow_devmap_pmd (v5.7+): a refused ``try_grab_page`` is ERR_PTR(-ENOMEM) -- no page is
    returned and the pgmap reference taken for the lookup is dropped (mm/gup.c)."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        pm, sb, f, mm, addr = setup(k)
        k.dax_user_write(mm, addr, 1)
        page = k.memmap[f.i_blocks.peek()[0]]
        page._refcount.set(0, "freed under the walk")
        ref = pm.pgmap.ref.peek()
        assert k.follow_devmap_page(page.pfn, FOLL_PIN) is None
        assert pm.pgmap.ref.peek() == ref and page._refcount.peek() == 0
        assert kinds(w) == ["get_on_free_page"]
