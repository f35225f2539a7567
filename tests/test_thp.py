"""Device-private THP (v6.19 series) and the anonymous THP it migrates: refcounts, mapcounts,
free lists and page tables after each step, on the model's 8-page THPs (``thp_pmd_order`` 3)."""

import pytest

from zonedev.linux.lib.test_hmm import HMM_DMIRROR_FLAGS, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS
from zonedev.linux.mm.huge_memory import MADV_HUGEPAGE
from zonedev.linux.mm.mmap import (MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SHIFT, PTE_DEVICE_PRIVATE, PTE_PRESENT,
                                   PROT_READ, PROT_WRITE)
from zonedev.selftests.hmm_tests import hmm_buffer
from zonedev.selftests.runner import check_devices, setup_kernel
from zonedev.selftests.uapi import Process, hmm_dmirror_cmd_ioctl
from zonedev.sync import World, use_world

PS = 1 << PAGE_SHIFT


@pytest.fixture
def env(request):
    kernel = getattr(request, "param", "newest")
    with use_world(World()):
        k, mod = setup_kernel(kernel, 64, 4)
        p = Process(k)
        yield k, mod, p


def thp(p, write=True):
    """A PMD-size aligned MADV_HUGEPAGE region of a 2-PMD mapping, filled with i (write) or not."""
    size = p.read_pmd_pagesize()
    ptr = p.mmap(2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    a = (ptr + size - 1) & ~(size - 1)
    assert p.madvise(a, size, MADV_HUGEPAGE) == 0
    n = (size >> PAGE_SHIFT) * p.page_ints
    if write:
        p.write_buf(a, list(range(n)))
    return ptr, a, size, n


def cmd(p, fd, req, a, npages, n):
    b = hmm_buffer(ptr=a, mirror=[0] * n, size=npages * PS)
    return hmm_dmirror_cmd_ioctl(p, fd, req, b, npages), b


def test_write_fault_maps_a_thp_and_partial_munmap_splits_it(env):
    k, mod, p = env
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    entries = [p.mm.peek_pte(a + i * PS) for i in range(nr)]
    folio = entries[0].page
    assert folio.order == 3 and all(e.huge == 3 and e.kind == PTE_PRESENT for e in entries)
    assert [e.page.pfn for e in entries] == list(range(folio.pfn, folio.pfn + nr))
    assert folio._refcount.peek() == 1 and folio._mapcount.peek() == 0   # one PMD mapping
    p.munmap(a + 2 * PS, 2 * PS)                                          # split: PTE-mapped, 6 left
    assert not p.mm.peek_pte(a).huge and folio.order == 3
    assert folio._refcount.peek() == nr - 2
    assert p.read_buf(a, 2 * p.page_ints) == list(range(2 * p.page_ints))
    p.munmap(ptr, 2 * size)
    assert folio._refcount.peek() == 0 and not k.world.violations


def test_thp_migrates_whole_to_the_device_and_faults_back_whole(env):
    k, mod, p = env
    fd = p.open_dmirror(0)
    mdev = mod.devices[0]
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    calloc = mdev.calloc.peek()
    ret, b = cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)
    assert ret == 0 and b.cpages == nr and b.mirror == list(range(n))
    e = p.mm.peek_pte(a)
    dfolio = e.page
    assert e.kind == PTE_DEVICE_PRIVATE and e.huge == 3 and dfolio.order == 3   # a device-private PMD
    assert dfolio._refcount.peek() == 1 and dfolio._mapcount.peek() == 0
    assert mdev.calloc.peek() - calloc == nr                                     # calloc += 1 << order
    assert dfolio.pgmap.ref.peek() >= nr
    assert p.read_buf(a, n) == list(range(n))                                    # do_huge_pmd_device_private
    e = p.mm.peek_pte(a)
    assert e.kind == PTE_PRESENT and e.huge == 3 and e.page.order == 3           # back as a THP
    assert dfolio._refcount.peek() == 0 and mdev.free_folios.peek() is dfolio    # .folio_free: on free_folios
    p.munmap(ptr, 2 * size)
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)


def test_fail_alloc_falls_back_to_order_0_device_pages_both_ways(env):
    k, mod, p = env
    fd = p.open_dmirror(0)
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    assert cmd(p, fd, HMM_DMIRROR_FLAGS, a, 1, n)[0] == 0
    ret, b = cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)
    assert ret == 0 and b.cpages == nr and b.mirror == list(range(n))
    pages = [p.mm.peek_pte(a + i * PS) for i in range(nr)]
    assert all(e.kind == PTE_DEVICE_PRIVATE and not e.huge and e.page.order == 0 for e in pages)
    # the flag was one-shot: the next THP migrates whole, and FAIL_ALLOC on the way back gives
    # order-0 system pages
    p.munmap(ptr, 2 * size)
    ptr, a, size, n = thp(p)
    assert cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)[0] == 0
    assert p.mm.peek_pte(a).huge == 3
    assert cmd(p, fd, HMM_DMIRROR_FLAGS, a, 1, n)[0] == 0
    ret, b = cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, a, nr, n)
    assert ret == 0 and b.cpages == nr
    back = [p.mm.peek_pte(a + i * PS) for i in range(nr)]
    assert all(e.kind == PTE_PRESENT and not e.huge and e.page.order == 0 for e in back)
    assert p.read_buf(a, n) == list(range(n))
    p.munmap(ptr, 2 * size)
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)


def test_partial_unmap_of_a_device_thp_splits_it_through_folio_split(env):
    k, mod, p = env
    fd = p.open_dmirror(0)
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    assert cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)[0] == 0
    dfolio = p.mm.peek_pte(a).page
    rpage = dfolio.zone_device_data.peek()
    p.munmap(a, 2 * PS)                                    # the PMD is split: PTE-mapped, 6 mappings
    assert dfolio.order == 3 and dfolio._refcount.peek() == nr - 2
    # a fault through a PTE splits the folio (migrate_vma_split_folio -> dmirror_devmem_folio_split)
    assert p.read_buf(a + 4 * PS, p.page_ints) == list(range(4 * p.page_ints, 5 * p.page_ints))
    assert dfolio.order == 0
    for i in range(2, nr):
        piece = k.memmap[dfolio.pfn + i]
        if p.mm.peek_pte(a + i * PS).kind == PTE_DEVICE_PRIVATE:
            assert piece.zone_device_data.peek() is k.memmap[rpage.pfn + i]   # its backing page
    assert p.read_buf(a + 2 * PS, (nr - 2) * p.page_ints) == list(range(2 * p.page_ints, n))
    p.munmap(ptr, 2 * size)
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)


def test_forked_device_thp_is_migrated_back_for_both(env):
    k, mod, p = env
    fd = p.open_dmirror(0)
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    assert cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)[0] == 0
    dfolio = p.mm.peek_pte(a).page
    child = p.fork()                                       # copy_huge_pmd of a device-private PMD
    assert dfolio._refcount.peek() == 2 and dfolio._mapcount.peek() == 1
    assert not p.mm.peek_pte(a).write and not child.mm.peek_pte(a).write
    assert child.read_buf(a, n) == list(range(n))          # try_to_migrate unmaps the parent's PMD too
    assert p.mm.peek_pte(a).kind == PTE_PRESENT == child.mm.peek_pte(a).kind
    assert p.mm.peek_pte(a).page is child.mm.peek_pte(a).page
    child.exit()
    assert p.read_buf(a, n) == list(range(n))
    p.munmap(ptr, 2 * size)
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)


@pytest.mark.parametrize("env", ["v6.17"], indirect=True)
def test_before_v6_19_a_thp_is_split_and_migrated_as_base_pages(env):
    k, mod, p = env
    fd = p.open_dmirror(0)
    ptr, a, size, n = thp(p)
    nr = size >> PAGE_SHIFT
    ret, b = cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, n)
    assert ret == 0 and b.cpages == nr and b.mirror == list(range(n))
    assert all(p.mm.peek_pte(a + i * PS).kind == PTE_DEVICE_PRIVATE and not p.mm.peek_pte(a + i * PS).huge
               for i in range(nr))
    assert p.read_buf(a, n) == list(range(n))
    p.munmap(ptr, 2 * size)
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)


def test_cli_thp_order_runs_the_kernels_512_page_thps():
    from click.testing import CliRunner

    from zonedev.cli import main
    r = CliRunner().invoke(main, ["selftest", "hmm", "--kernel", "newest", "--thp-order", "9", "--chunk-pages",
                                  "1024", "--page-ints", "1", "-t", "migrate_anon_huge_fault"])
    assert r.exit_code == 0, r.output
    assert "512-page THPs" in r.output and "# Totals: pass:2 fail:0" in r.output
    r = CliRunner().invoke(main, ["selftest", "hmm", "--thp-order", "10"])
    assert r.exit_code == 2 and "zonedev: error: --thp-order:" in r.output


# ---- F24, F25 (scenarios/k2026.py) --------------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
F24_FIX = str(ROOT / "scenarios" / "patches" / "f24_carry_uffd_wp.py")


def _marked_writable_device_pmd(k):
    """A writable device-private PMD carrying the uffd-wp marker: planted (see
    f24_uffd_wp_lost_on_mprotect's docstring: no modelled path makes one)."""
    import dataclasses
    from zonedev.linux.mm.huge_memory import MADV_HUGEPAGE
    k.page_ints, k.thp_pmd_order = 2, 1
    k.hmm_dmirror_init(8, True)
    p = Process(k)
    fd = p.open_dmirror(0)
    ptr = p.mmap(4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    a = (ptr + 2 * PS - 1) & ~(2 * PS - 1)
    p.madvise(a, 2 * PS, MADV_HUGEPAGE)
    p.write_buf(a, [1, 2, 3, 4])
    assert cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, 2, 4)[0] == 0
    for i in range(2):
        v = p.mm.pgtable(a).pte(a + i * PS)
        e = v.peek()
        assert e.kind == PTE_DEVICE_PRIVATE and e.huge == 1 and e.write
        v.value = dataclasses.replace(e, uffd_wp=True)
    return p, a


@pytest.mark.parametrize("extra,kept", [((), False), ((F24_FIX,), True)])
def test_f24_change_non_present_huge_pmd_drops_the_marker_until_the_fix(extra, kept):
    import zonedev
    with use_world(World()):
        k = zonedev.kernel("newest", extra=list(extra))
        p, a = _marked_writable_device_pmd(k)
        p.mprotect(a, 2 * PS, PROT_READ)
        entries = [p.mm.peek_pte(a + i * PS) for i in range(2)]
        assert all(not e.write and e.huge == 1 for e in entries)
        assert all(e.uffd_wp == kept for e in entries)


def test_f24_and_f25_verdicts():
    from click.testing import CliRunner

    from zonedev.cli import main
    f25 = f"{ROOT}/scenarios/k2026.py::f25_munmap_vs_pmd_migration_entry"
    r = CliRunner().invoke(main, ["check", f25, "--kernel", "v7.0", "--quiet"])
    assert r.exit_code == 1 and "FOUND 1 (pmd_not_present_bug)" in r.output, r.output
    r = CliRunner().invoke(main, ["check", f25, "--kernel", "v7.1", "--quiet"])
    assert r.exit_code == 0 and "no violation" in r.output, r.output
    f24 = f"{ROOT}/scenarios/k2026.py::f24_uffd_wp_lost_on_mprotect"
    r = CliRunner().invoke(main, ["check", f24, "--kernel", "newest", "--quiet"])
    assert r.exit_code == 0 and "no violation" in r.output, r.output


def test_page_table_page_deposited_by_a_thp_insertion_goes_with_the_pmd(env):
    """migrate_vma_insert_huge_pmd_page deposits a page-table page for the device-private PMD it
    maps into a hole; zap_huge_pmd gives it back (zap_deposited_table)."""
    k, mod, p = env
    fd = p.open_dmirror(0)
    size = p.read_pmd_pagesize()
    nr = size >> PAGE_SHIFT
    ptr = p.mmap(2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    a = (ptr + size - 1) & ~(size - 1)
    p.madvise(a, size, MADV_HUGEPAGE)
    assert cmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, a, nr, nr * p.page_ints)[0] == 0   # a hole: compound
    assert p.mm.peek_pte(a).huge == 3
    dep = p.mm._pmd_state["deposited"].peek()
    assert len(dep) == 1 and k.pfn_to_page(dep[0])._refcount.peek() == 1
    pfn = dep[0]
    p.munmap(ptr, 2 * size)
    assert p.mm._pmd_state["deposited"].peek() == () and k.pfn_to_page(pfn)._refcount.peek() == 0
    p.close(fd)
    assert not k.world.violations and not check_devices(k, mod)
