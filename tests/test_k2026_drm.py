"""The DRM GPU SVM driver model (linux/drivers/gpu/drm): its reference edges and the F26 bugs,
each found in the buggy driver version and gone in the fixed one."""

from __future__ import annotations

from pathlib import Path

import pytest

import zonedev
from zonedev.linux.drivers.gpu.drm.drm_gpusvm import DrmGpuSvm, drm_gpusvm_range_evict
from zonedev.linux.drivers.gpu.drm.drm_pagemap import (DrmPagemapDriver, drm_pagemap_evict_to_ram,
                                                       drm_pagemap_migrate_to_devmem)
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE, PTE_PRESENT
from zonedev.linux.mm.memory import SegmentationFault
from zonedev.selftests.uapi import Process
from zonedev.sync import World, use_world

SCEN = str(Path(__file__).resolve().parents[1] / "scenarios" / "k2026.py")


def _setup(k):
    k.page_ints = 1
    drv = DrmPagemapDriver(k, 4)
    drv.probe()
    proc = Process(k)
    addr = proc.mmap(2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, [1, 2])
    return drv, proc, addr


def _to_devmem(k, drv, proc, addr):
    devmem = drv.devmem_alloc(proc.mm, 2)
    proc.mm.mmap_lock.down_read("mmap_read_lock")
    err = drm_pagemap_migrate_to_devmem(k, devmem, proc.mm, addr, addr + 2 * 4096)
    proc.mm.mmap_lock.up_read("mmap_read_unlock")
    return err, devmem


@pytest.mark.parametrize("name", ["v6.15", "v6.19", "newest"])
def test_reference_edges_migrate_fault_evict(name):
    """Each device page holds a zdd reference, the zdd owns the allocation: a CPU fault migrates
    the whole allocation back, the last page free destroys the zdd and frees the VRAM; a second
    allocation is evicted the same way."""
    with use_world(World()) as w:
        k = zonedev.kernel(name)
        drv, proc, addr = _setup(k)
        err, devmem = _to_devmem(k, drv, proc, addr)
        assert err == 0
        pages = [proc.mm.peek_pte(addr + i * 4096).page for i in range(2)]
        assert all(proc.mm.peek_pte(addr + i * 4096).kind == PTE_DEVICE_PRIVATE for i in range(2))
        zdd = pages[0].zone_device_data.peek()
        assert zdd is pages[1].zone_device_data.peek() and zdd.refcount.peek() == 2   # one per page
        assert zdd.dpagemap.ref.peek() == 2 and devmem.bo_ref.peek() == 1
        k.do_user_addr_fault(proc.mm, addr, False)
        assert [proc.mm.peek_pte(addr + i * 4096).kind for i in range(2)] == [PTE_PRESENT, PTE_PRESENT]
        assert zdd.freed.peek() and devmem.released.peek() and drv.dpagemap.ref.peek() == 1
        assert [proc.mm.peek_pte(addr + i * 4096).page.data.peek() for i in range(2)] == [(1,), (2,)]
        err, devmem2 = _to_devmem(k, drv, proc, addr)
        assert err == 0
        assert drm_pagemap_evict_to_ram(k, devmem2) == 0
        assert devmem2.released.peek() and drv.zdd_refs() == 0
        assert not w.violations, w.violations


def test_gpusvm_range_evict_faults_device_pages_back():
    with use_world(World()) as w:
        k = zonedev.kernel("v7.0")
        drv, proc, addr = _setup(k)
        _to_devmem(k, drv, proc, addr)
        svm = DrmGpuSvm(k, proc.mm, addr, addr + 2 * 4096)
        svm.init()
        users = proc.mm.mm_users.peek()
        assert drm_gpusvm_range_evict(k, svm, addr, addr + 2 * 4096) == 0
        assert proc.mm.mm_users.peek() == users and drv.zdd_refs() == 0
        assert not w.violations


@pytest.mark.parametrize("bug,kind", [("f26_use_after_put", "use_after_free"),
                                      ("f26_dma_unmap_after_put", "use_after_free"),
                                      ("f26_mm_reference_leak", "leak")])
def test_f26_found_in_buggy_driver_gone_in_fixed(bug, kind):
    bad = zonedev.check(f"{SCEN}::{bug}", kernel="v6.15", tables=False)
    assert {f.kind for f in bad.findings} == {kind}, [f.message for f in bad.findings]
    good = zonedev.check(f"{SCEN}::{bug}_fixed", kernel="newest", tables=False)
    assert good.verdict == "ok" and good.exhaustive, [f.message for f in good.findings]


def test_fault_vs_evict_lifetimes_hold():
    res = zonedev.check(f"{SCEN}::drm_fault_vs_evict", kernel="v7.0", executions=300, tables=False)
    assert res.verdict == "ok", [f.message for f in res.findings]
    assert res.executions == 300


def test_a_missing_zdd_reference_is_found():
    """A planted driver bug -- the device page takes no zdd reference -- is a kref underflow on
    the second page free, and the allocation is freed while a page still points to it."""
    import zonedev.linux.drivers.gpu.drm.drm_pagemap as dp
    with use_world(World()) as w:
        k = zonedev.kernel("v7.0")
        drv, proc, addr = _setup(k)
        orig = dp.drm_pagemap_zdd_get
        dp.drm_pagemap_zdd_get = lambda k, zdd: zdd          # the bug
        try:
            _to_devmem(k, drv, proc, addr)
        finally:
            dp.drm_pagemap_zdd_get = orig
        # the migration's own zdd put destroys the zdd at once (the pages hold no reference):
        # the VRAM is freed under the mapped device pages, and the CPU fault finds a freed zdd
        kinds = {v.kind for v in w.violations}
        assert "devmem_freed_in_use" in kinds, kinds
        with pytest.raises(SegmentationFault):
            k.do_user_addr_fault(proc.mm, addr, False)
        assert "use_after_free" in {v.kind for v in w.violations}


@pytest.mark.parametrize("with_cb", [True, False])
def test_device_private_folio_split_callback(with_cb):
    """56ef39899643: splitting an order-1 device-private folio announces each new folio to the
    driver's folio_split and then NULL; without the op the core copies pgmap and mapping.  With
    drm_pagemap's callback each piece holds its own zdd reference, so freeing both puts twice."""
    from zonedev.linux.drivers.gpu.drm.drm_pagemap import drm_pagemap_zdd_alloc
    with use_world(World()) as w:
        k = zonedev.kernel("v6.19")
        drv = DrmPagemapDriver(k, 2)
        if not with_cb:
            drv.pgmap.ops.folio_split = None
        drv.probe()
        head, tail = drv.pgmap.pages
        zdd = drm_pagemap_zdd_alloc(k, drv, drv.dpagemap)
        k.zone_device_folio_init(head, drv.pgmap, 1)
        k.set_page_field(head, "zone_device_data", zdd, "test")
        k.set_page_field(head, "mapping", "anon", "test")
        assert k.__split_unmapped_folio(head, 0) == 0
        assert tail.head is tail and head.order == 0 and tail._refcount.peek() == 1
        assert tail.pgmap is drv.pgmap
        if with_cb:
            assert tail.zone_device_data.peek() is zdd and zdd.refcount.peek() == 2
            for p in (head, tail):                         # the head holds the first reference, the tail its own
                k.unlock_page(p)
                k.put_page(p)
            assert zdd.freed.peek() and not w.violations, w.violations
        else:
            assert tail.mapping.peek() == "anon" and tail.zone_device_data.peek() is None
