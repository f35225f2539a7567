"""kernel_2025_2026.md §1: the corrections C1, C2, C4-C8, each checked against the behaviour the
model had before (every assertion here failed on it).  C3 (fsdax break-layouts) is tested with
the fsdax work."""

from __future__ import annotations

import errno

import pytest

from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.memremap import MEMORY_DEVICE_COHERENT
from zonedev.linux.include.mm import FOLL_LONGTERM, FOLL_PIN
from zonedev.linux.include.mm_types import PG_active, PG_anon_exclusive, PG_locked
from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd
from zonedev.linux.mm.migrate_device import migrate_vma
from zonedev.linux.mm.mmap import find_vma
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE, PTE_PRESENT
from zonedev.patches import kernel
from zonedev.selftests.uapi import Process
from zonedev.sync import World, use_world
from zonedev.sync.world import WouldBlockForever


def _device_page(k):
    """One anonymous page holding (7, 8), migrated to a dmirror device-private page."""
    k.page_ints = 2
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd = proc.open_dmirror(0)
    addr = proc.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, [7, 8])
    cmd = proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0, 0], 1))
    assert cmd.cpages == 1
    pte = proc.mm.peek_pte(addr)
    assert pte.kind == PTE_DEVICE_PRIVATE
    return proc, addr, pte.page


def _count_migrate_to_ram(page):
    calls = []
    ops = page.pgmap.ops
    orig = ops.migrate_to_ram

    def counted(vmf):
        calls.append(vmf.address)
        return orig(vmf)
    ops.migrate_to_ram = counted
    return calls


# --- C1: 1afaeb8293c9 (v6.15) ----------------------------------------------------------------------

@pytest.mark.parametrize("name,calls", [("v6.2", 1), ("v6.15", 0), ("v6.19", 0)])
def test_c1_fault_on_a_locked_device_page_does_not_call_migrate_to_ram(name, calls):
    """Another fault holds the device page's lock: from v6.15 do_swap_page's trylock fails and the
    fault returns (to be retried) without calling migrate_to_ram; before, both faults called it."""
    with use_world(World()) as w:
        k = kernel(name)
        proc, addr, page = _device_page(k)
        seen = _count_migrate_to_ram(page)
        k.lock_page(page)                          # the other fault's lock (or an eviction's)
        k.do_user_addr_fault(proc.mm, addr, False)
        assert len(seen) == calls
        assert proc.mm.peek_pte(addr).kind == PTE_DEVICE_PRIVATE     # still on the device
        assert page.flags.peek(PG_locked)          # nobody unlocked the holder's lock
        assert not w.violations


@pytest.mark.parametrize("name", ["v6.15", "v7.0", "newest"])
def test_c1_fault_path_locks_unlocks_and_migrates(name):
    """The uncontended fault: do_swap_page takes the lock, migrate_vma_* leave the fault page
    locked (no unlock_of_unlocked_page), do_swap_page unlocks it, the data comes back."""
    with use_world(World()) as w:
        k = kernel(name)
        proc, addr, page = _device_page(k)
        seen = _count_migrate_to_ram(page)
        k.do_user_addr_fault(proc.mm, addr, False)
        assert len(seen) == 1
        pte = proc.mm.peek_pte(addr)
        assert pte.kind == PTE_PRESENT and pte.page.data.peek() == (7, 8)
        assert not page.flags.peek(PG_locked) and page._refcount.peek() == 0
        assert not w.violations, w.violations


def test_c1_migrate_vma_setup_refuses_an_unlocked_fault_page():
    for name, refused in (("v6.2", False), ("v6.15", True)):
        with use_world(World()):
            k = kernel(name)
            proc, addr, page = _device_page(k)
            vma = find_vma(proc.mm, addr)
            args = migrate_vma(vma=vma, start=addr, end=addr + 4096, pgmap_owner=page.pgmap.owner,
                               flags=2, fault_page=page)
            if refused:
                with pytest.raises(OSError) as e:
                    k.migrate_vma_setup(args)
                assert e.value.errno == errno.EINVAL
            else:
                k.migrate_vma_check_fault_page(args)      # device private: accepted


# --- C2: b570f37a2ce4 (v7.0) -----------------------------------------------------------------------

@pytest.mark.parametrize("name,waits", [("v6.15", False), ("v6.19", False), ("v7.0", True), ("newest", True)])
def test_c2_losing_fault_sleeps_on_the_page_lock_from_v70(name, waits):
    """v7.0: the fault that loses the trylock waits for the unlock (softleaf_entry_wait_on_locked,
    PTL dropped first); v6.15-v6.19 return at once (busy retry).  Without a scheduler the wait
    for a lock nobody will release raises WouldBlockForever."""
    with use_world(World()):
        k = kernel(name)
        proc, addr, page = _device_page(k)
        k.lock_page(page)
        if waits:
            with pytest.raises(WouldBlockForever):
                k.do_user_addr_fault(proc.mm, addr, False)
            pt = proc.mm.pgtable(addr)
            assert not pt.ptl.is_locked()          # __releases(ptl): dropped before sleeping
        else:
            k.do_user_addr_fault(proc.mm, addr, False)
        assert k.has("softleaf_entry_wait_on_locked") == waits


# --- C4: d245f9b4ab80 (v6.19) ----------------------------------------------------------------------

def test_c4_large_device_folio_free_clears_anon_exclusive_on_every_page():
    with use_world(World()):
        k = kernel("v6.19")
        drv = ExampleDriver(k, "private", nr_pages=4)
        drv.probe()
        head = drv.pgmap.pages[0]
        before = drv.pgmap.ref.count
        k.zone_device_folio_init(head, drv.pgmap, 1)
        k.unlock_page(head)
        k.set_page_field(head, "mapping", "anon", "test: page_add_anon_rmap")
        for p in drv.pgmap.pages[:2]:
            p.flags.bits |= 1 << PG_anon_exclusive
        k.put_page(head)
        assert [p.flags.peek(PG_anon_exclusive) for p in drv.pgmap.pages[:2]] == [False, False]
        assert drv.pgmap.ref.count == before       # percpu_ref_put_many(ref, 2) after tryget_many(2)
        assert [c for c, _ in drv.callbacks] == ["folio_free"]


# --- C5: 3565fce3a659 (v4.5) -----------------------------------------------------------------------

def test_c5_v45_gup_returns_no_devmap_page_without_foll_get():
    with use_world(World()):
        k = kernel("v4.5")
        drv = ExampleDriver(k, "generic")
        drv.probe()
        page = drv.pgmap.pages[1]
        refs, prefs = page._refcount.peek(), drv.pgmap.ref.count
        assert k.follow_devmap_page(page.pfn, 0) is None
        assert (page._refcount.peek(), drv.pgmap.ref.count) == (refs, prefs)


def test_v617_gup_has_no_devmap_pgmap_lookup():
    assert kernel("v6.15").has("follow_devmap_page") and kernel("v6.15").fact("gup_pgmap_lookup")
    assert not kernel("v6.17").has("follow_devmap_page") and kernel("v6.17").fact("gup_pgmap_lookup") is False


# --- C6: 4509b42c3896 (v5.11) ----------------------------------------------------------------------

@pytest.mark.parametrize("name,path", [("v5.10", "__unpin_devmap_managed_user_page"), ("v5.11", "put_compound_head")])
def test_c6_unpin_of_a_devmap_page_goes_through_put_page_from_v511(name, path):
    with use_world(World()) as w:
        k = kernel(name)
        drv = ExampleDriver(k, "private")
        drv.probe()
        page, _ = drv.alloc()
        assert k.try_grab_page(page, FOLL_PIN)
        n = len(w.events)
        k.unpin_user_page(page)
        funcs = [e.func for e in w.events[n:]]
        assert path in funcs
        assert page._refcount.peek() == 2              # 2 + 1024 - 1024: same count both ways
        assert k.has("__unpin_devmap_managed_user_page") == (name == "v5.10")


# --- C7: names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,cleared", [("v5.8", True), ("v5.10", False)])
def test_c7_free_path_stops_clearing_pg_active_in_v510(name, cleared):
    with use_world(World()):
        k = kernel(name)
        drv = ExampleDriver(k, "private")
        drv.probe()
        page, _ = drv.alloc()
        page.flags.bits |= 1 << PG_active
        drv.release(page)
        assert page.flags.peek(PG_active) is not cleared


@pytest.mark.parametrize("name,fn", [("v4.18", "generic_dax_pagefree"), ("v5.3", "pmem_pagemap_page_free")])
def test_c7_fsdax_page_free_names(name, fn):
    with use_world(World()) as w:
        k = kernel(name)
        drv = ExampleDriver(k, "fsdax")
        drv.probe()
        page, _ = drv.alloc()
        k.get_page(page)
        k.put_page(page)
        assert fn in {e.func for e in w.events}


# --- C8: f4f451a16dd1 (v5.19) ----------------------------------------------------------------------

def test_c8_refused_longterm_pin_gives_its_references_back():
    """v6.0+: try_grab_folio refuses FOLL_PIN|FOLL_LONGTERM on a device-coherent page and drops
    the references it took (put_devmap_managed_page_refs, else folio_put_refs)."""
    with use_world(World()):
        k = kernel("v6.0")
        drv = ExampleDriver(k, "coherent")
        drv.probe()
        page, _ = drv.alloc()
        assert drv.pgmap.type == MEMORY_DEVICE_COHERENT
        k.get_page(page)
        before = page._refcount.peek()
        assert k.try_grab_folio(page, 1, FOLL_PIN | FOLL_LONGTERM) is None
        assert page._refcount.peek() == before
        assert k.try_grab_folio(page, 1, FOLL_PIN) is page
        assert k.has("try_get_folio") and not kernel("v5.18").has("try_get_folio")
