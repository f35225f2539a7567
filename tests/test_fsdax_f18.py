"""F18 (kernel_2025_2026.md §3): large fsdax folios from DAX PMD faults (v6.15), split back to
order 0 by ``dax_folio_put``, and the page[1] word (``_nr_pages`` over ``memcg_data``) the split
left behind until 98b1917cdef9."""

from __future__ import annotations

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE
from zonedev.rt.scenario import load_scenarios

F18 = load_scenarios("scenarios/fsdax.py")["f18_large_fsdax_folio_reuse"]


def kinds(res):
    return {f.kind for f in res.findings}


def _pmd_mapped(kn, without=()):
    k = zonedev.kernel(kn, without=list(without))
    pm = ExampleDriver(k, "fsdax", nr_pages=2)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap, pmd_order=1)
    f = k.daxfs_create(sb, "f")
    k.daxfs_fallocate(f, 2)
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    k.dax_user_write(mm, addr, 1)
    return k, pm.pgmap.pages, sb, f, mm, addr


def test_pmd_fault_makes_a_large_folio_on_v6_15():
    """v6.15: one PMD fault -> an order-1 folio, one reference and the entire mapcount on the
    head, the tail at 0, page[1]'s _nr_pages = 2; the PMD entry covers both indices."""
    k, (head, tail), sb, f, mm, addr = _pmd_mapped("v6.15")
    assert head.order == 1 and tail.head is head
    assert (head._refcount.peek(), head._mapcount.peek() + 1, tail._refcount.peek()) == (1, 1, 0)
    assert tail.memcg_data.peek() == 2
    entry = f.i_mapping.lookup(1)
    assert entry is f.i_mapping.lookup(0) and entry.order == 1
    assert k.cpu_access(mm, addr + 4096, False) is tail          # one fault mapped both pages
    mm.mmap_lock.down_write()
    k.do_munmap(mm, addr, 8192)
    mm.mmap_lock.up_write()
    assert head._refcount.peek() == 0
    k.daxfs_truncate(f, 0)                                       # dax_folio_put: split
    assert head.order == 0 and tail.head is tail and head.mapping.peek() is None
    assert tail.memcg_data.peek() == 0                           # folio_reset_order
    assert k.world.violations == []


def test_pmd_fault_before_v6_15_is_a_devmap_pmd():
    """v6.2: a devmap PMD; no folio, no reference; every page of the entry associated."""
    k, (p0, p1), sb, f, mm, addr = _pmd_mapped("v6.2")
    assert p0.order == 0 and p1.head is p1
    assert (p0._refcount.peek(), p1._refcount.peek()) == (1, 1)
    assert (p0.index.peek(), p1.index.peek()) == (0, 1)
    assert p1.mapping.peek() is f.i_mapping
    assert k.daxfs_truncate(f, 0) == 0
    assert p1.mapping.peek() is None and k.world.violations == []


def test_split_without_the_fix_leaves_nr_pages():
    k, (head, tail), sb, f, mm, addr = _pmd_mapped("v6.15", ["98b1917cdef9"])
    mm.mmap_lock.down_write()
    k.do_munmap(mm, addr, 8192)
    mm.mmap_lock.up_write()
    k.daxfs_truncate(f, 0)
    assert tail.head is tail and tail.memcg_data.peek() == 2     # the stale word
    assert k.world.violations == []                              # harmless until mapped


def test_f18_scenario_per_kernel():
    """Found on v6.15 without 98b1917cdef9 (the former tail's PTE fault oopses in
    __lruvec_stat_mod_folio), absent with it and on the newest kernel; bisect-able both ways."""
    bad = zonedev.check(F18, kernel="v6.15", without=["98b1917cdef9"], tables=False)
    assert kinds(bad) == {"bad_folio_memcg_data"}
    assert all("pfn 0x100001" in f.message for f in bad.findings)   # the former tail only
    for kn in ("v6.15", "newest", "v6.2"):
        assert kinds(zonedev.check(F18, kernel=kn, tables=False)) == set(), kn
