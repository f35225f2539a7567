"""P2PDMA (drivers/pci/p2pdma.c; linux/drivers/pci/p2pdma.py, c_7e9c7ef83d78): mapping p2pmem to
user space takes one pgmap reference per mapped page and returns it when the page is freed,
the free returns the page to the pool (1-based reset v6.2-v6.14, rests at 0 from v6.15), GUP needs
FOLL_PCI_P2PDMA (-EREMOTEIO) and refuses FOLL_LONGTERM with it (-EOPNOTSUPP)."""

from __future__ import annotations

import errno

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.drivers.pci.p2pdma import p2pmem_file
from zonedev.linux.include.mm import FOLL_LONGTERM, FOLL_PCI_P2PDMA, FOLL_WRITE
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE, OSErrorKernel
from zonedev.patches import KERNELS, version_key
from zonedev.sync import World, use_world

MMAP_KERNELS = [k for k in KERNELS if version_key(k) >= version_key("v6.2")]


def _setup(k, nr=2):
    drv = ExampleDriver(k, "p2pdma", nr_pages=4)
    drv.probe()
    base = drv.pgmap.ref.peek()
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, nr * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, p2pmem_file(drv))
    mm.mmap_lock.up_write()
    return drv, base, mm, addr


@pytest.mark.parametrize("kn", MMAP_KERNELS)
def test_mmap_takes_and_unmap_returns_one_pgmap_ref_per_page(kn):
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        drv, base, mm, addr = _setup(k)
        pages = drv.pgmap.pages[:2]
        assert drv.pgmap.ref.peek() == base + 2
        assert [(p._refcount.peek(), p._mapcount.peek() + 1) for p in pages] == [(1, 1), (1, 1)]
        assert set(drv.free.peek()) == {p.pfn for p in drv.pgmap.pages[2:]}
        mm.mmap_lock.down_write()
        k.do_munmap(mm, addr, 2 * 4096)
        mm.mmap_lock.up_write()
        assert drv.pgmap.ref.peek() == base
        rest = 0 if version_key(kn) >= version_key("v6.15") else 1     # reset to 1 until v6.15
        assert [p._refcount.peek() for p in pages] == [rest, rest]
        assert set(drv.free.peek()) == {p.pfn for p in drv.pgmap.pages}      # back in the pool
        assert [c for c, _ in drv.callbacks] == ["page_free", "page_free"]
        assert w.violations == []


@pytest.mark.parametrize("kn", MMAP_KERNELS)
def test_gup_needs_foll_pci_p2pdma(kn):
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        drv, base, mm, addr = _setup(k)
        page = drv.pgmap.pages[0]
        for call in (k.pin_user_pages_fast, k.get_user_pages_fast):
            with pytest.raises(OSErrorKernel) as e:
                call(mm, addr, 1, FOLL_WRITE)
            assert e.value.errno == errno.EREMOTEIO
            with pytest.raises(OSErrorKernel) as e:
                call(mm, addr, 1, FOLL_WRITE | FOLL_PCI_P2PDMA | FOLL_LONGTERM)
            assert e.value.errno == errno.EOPNOTSUPP
        assert page._refcount.peek() == 1
        got = k.pin_user_pages_fast(mm, addr, 2, FOLL_WRITE | FOLL_PCI_P2PDMA)
        assert got == drv.pgmap.pages[:2] and page._refcount.peek() == 1025
        for p in got:
            k.unpin_user_page(p)
        assert page._refcount.peek() == 1 and w.violations == []


def test_mmap_after_the_pgmap_is_killed_fails():
    """p2pmem_alloc_mmap's percpu_ref_tryget_live: no new mapping once teardown has begun."""
    with use_world(World()):
        k = zonedev.kernel("v6.15")
        drv = ExampleDriver(k, "p2pdma", nr_pages=2)
        drv.probe()
        drv.pgmap.ref.kill("percpu_ref_kill")
        mm = k.mm_alloc()
        mm.mmap_lock.down_write()
        with pytest.raises(OSErrorKernel) as e:
            k.do_mmap(mm, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, p2pmem_file(drv))
        mm.mmap_lock.up_write()
        assert e.value.errno == errno.ENODEV
