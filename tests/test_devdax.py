"""device-dax (drivers/dax/device.c; linux/drivers/dax/device.py): compound pages of
``vmemmap_shift`` (v5.17+, c4386bd8ee3a), one pgmap reference per compound page, whole-page
(PMD-sized) mappings that take no reference before v6.15 and one folio reference after, GUP on
a tail taking the head's reference and pincount, long-term pins allowed."""

from __future__ import annotations

import pytest

import zonedev
from zonedev.linux.include.mm import FOLL_LONGTERM, FOLL_WRITE
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE
from zonedev.patches import KERNELS, version_key
from zonedev.sync import World, use_world

COMPOUND = [k for k in KERNELS if version_key(k) >= version_key("v5.17")]
PMD = 9                                          # a 2 MiB device-dax alignment: order-9 folios


def _map(k, dax, nr):
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, nr * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dax)
    mm.mmap_lock.up_write()
    return mm, addr


@pytest.mark.parametrize("kn", COMPOUND)
def test_compound_pages_head_carries_refcount(kn):
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        dax = k.dev_dax_probe(2 << PMD, PMD)
        pages = dax.pgmap.pages
        heads = [p for p in pages if p.head is p]
        assert [p.pfn - pages[0].pfn for p in heads] == [0, 512]
        assert all(p.order == PMD and p._refcount.peek() == 1 for p in heads)     # GENERIC idles at 1
        assert all(p._refcount.peek() == 0 for p in pages if p.head is not p)      # tails at 0
        assert dax.pgmap.ref.peek() == 1 + 2          # the initial reference + one per compound page
        assert w.violations == []


@pytest.mark.parametrize("kn", COMPOUND)
def test_pmd_mapping_and_longterm_pin(kn):
    """A fault anywhere in the 2 MiB page maps it whole; a FOLL_LONGTERM pin of two tails takes
    the head's reference and pincount (large-folio FOLL_PIN); unpin and munmap give them back."""
    with use_world(World()) as w:
        k = zonedev.kernel(kn)
        dax = k.dev_dax_probe(1 << PMD, PMD)
        head = dax.pgmap.pages[0]
        mm, addr = _map(k, dax, 1 << PMD)
        k.cpu_access(mm, addr + 300 * 4096, True)
        refcounted = version_key(kn) >= version_key("v6.15")
        assert mm.peek_pte(addr + 511 * 4096).page is dax.pgmap.pages[511]        # mapped whole
        assert mm.peek_pte(addr).devmap is (not refcounted)
        # before v6.15 a devmap PMD holds nothing; from v6.15 the mapping holds one folio
        # reference and the entire mapcount
        assert (head._refcount.peek(), head._mapcount.peek() + 1) == ((2, 1) if refcounted else (1, 0))
        base = head._refcount.peek()
        pages = k.pin_user_pages_fast(mm, addr + 7 * 4096, 2, FOLL_LONGTERM | FOLL_WRITE)
        assert [p.pfn - head.pfn for p in pages] == [7, 8]
        assert head._refcount.peek() == base + 2 and head._pincount.peek() == 2
        assert all(p._refcount.peek() == 0 for p in pages)          # tails untouched
        for p in pages:
            k.unpin_user_page(p)
        mm.mmap_lock.down_write()
        k.do_munmap(mm, addr, (1 << PMD) * 4096)
        mm.mmap_lock.up_write()
        assert (head._refcount.peek(), head._mapcount.peek() + 1, head._pincount.peek()) == (1, 0, 0)
        assert dax.pgmap.ref.peek() == 2
        assert w.violations == []


@pytest.mark.parametrize("kn", ["v5.7", "v5.14"])
def test_before_compound_pages_every_page_counts(kn):
    """Before v5.17 there are no compound ZONE_DEVICE pages: every 4K page has its own refcount
    and pgmap reference, and a pin takes GUP_PIN_COUNTING_BIAS on the page itself (v5.7+)."""
    with use_world(World()):
        k = zonedev.kernel(kn)
        dax = k.dev_dax_probe(8, 3)
        assert [p.order for p in dax.pgmap.pages] == [0] * 8
        assert dax.pgmap.ref.peek() == 1 + 8
        mm, addr = _map(k, dax, 8)
        k.cpu_access(mm, addr, True)
        page = dax.pgmap.pages[1]
        pinned = k.pin_user_pages_fast(mm, addr + 4096, 1, FOLL_WRITE)
        assert pinned == [page] and page._refcount.peek() == 1025
        k.unpin_user_page(page)
        assert page._refcount.peek() == 1


def test_memunmap_waits_for_a_pinned_compound_page():
    """The per-compound-page pgmap references go back in bulk at memunmap; a GUP holder keeps the
    folio, not a pgmap reference (v6.17 GUP takes none), so teardown under a pin removes the
    memmap under it -- the model reports it (F2/F8-style) rather than hiding it."""
    with use_world(World()) as w:
        k = zonedev.kernel("v6.17")
        dax = k.dev_dax_probe(1 << 3, 3)
        mm, addr = _map(k, dax, 8)
        k.cpu_access(mm, addr, True)
        pinned = k.pin_user_pages_fast(mm, addr, 1, FOLL_WRITE)
        assert pinned and dax.pgmap.ref.peek() == 2
        mm.mmap_lock.down_write()
        k.do_munmap(mm, addr, 8 * 4096)
        mm.mmap_lock.up_write()
        dax.drv.remove()
        assert [v.kind for v in w.violations] == ["use_after_free"]
