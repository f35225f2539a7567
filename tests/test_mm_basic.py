"""The minimal mm under the HMM paths: _mapcount and references through fault, fork, COW,
munmap, mprotect and mremap, including device-private entries."""

import pytest

from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd
from zonedev.linux.mm.mmap import (MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ,
                                   PROT_WRITE, PTE_DEVICE_PRIVATE, PTE_PRESENT)
from zonedev.selftests.runner import check_devices, setup_kernel
from zonedev.selftests.uapi import Process
from zonedev.sync import World, use_world


@pytest.fixture(params=["v5.17", "v6.1"])
def env(request):
    with use_world(World()):
        k, mod = setup_kernel(request.param, page_ints=4)
        yield k, mod, Process(k)


def rc(page):
    return page._refcount.peek()


def mc(page):
    return page._mapcount.peek() + 1


def test_fork_cow_refcounts(env):
    k, mod, p = env
    a = p.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.write_ints(a, [1, 2, 3, 4])
    page = p.mm.peek_pte(a).page
    assert (rc(page), mc(page)) == (1, 1)
    c = p.fork()
    assert (rc(page), mc(page)) == (2, 2)
    assert not p.mm.peek_pte(a).write and not c.mm.peek_pte(a).write
    c.write_ints(a, [9])                      # COW in the child
    assert (rc(page), mc(page)) == (1, 1)
    assert c.read_ints(a, 4) == [9, 2, 3, 4] and p.read_ints(a, 4) == [1, 2, 3, 4]
    p.write_ints(a, [5])                      # reuse: the parent's page is its own again
    assert p.mm.peek_pte(a).page is page
    c.exit()
    p.munmap(a, 4096)
    assert rc(page) == 0


def _migrate(k, p, a, n=2):
    fd = p.open_dmirror(0)
    p.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(a, [0] * (n * k.page_ints), n))
    return fd


def test_device_private_entries_through_fork_mprotect_mremap_munmap(env):
    k, mod, p = env
    a = p.mmap(2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.write_buf(a, list(range(8)))
    _migrate(k, p, a)
    pte = p.mm.peek_pte(a)
    dpage = pte.page
    assert pte.kind == PTE_DEVICE_PRIVATE and pte.write
    base = rc(dpage)                          # v5.17: 2 (extra ZONE_DEVICE ref), v6.1: 1
    assert base == (2 if k.fact("zd_alloc") == "get_page+lock_page" else 1) and mc(dpage) == 1
    c = p.fork()
    assert (rc(dpage), mc(dpage)) == (base + 1, 2)
    assert not p.mm.peek_pte(a).write and c.mm.peek_pte(a).kind == PTE_DEVICE_PRIVATE
    c.exit()
    assert (rc(dpage), mc(dpage)) == (base, 1)
    p.mprotect(a, 2 * 4096, PROT_READ)
    assert not p.mm.peek_pte(a + 4096).write
    p.mprotect(a, 2 * 4096, PROT_READ | PROT_WRITE)
    new = p.mremap(a, 2 * 4096, 2 * 4096, MREMAP_MAYMOVE | MREMAP_FIXED, a + 64 * 4096)
    assert p.mm.peek_pte(new).page is dpage and p.mm.peek_pte(a) is None
    assert p.read_buf(new, 8) == list(range(8))          # faults back through the moved entry
    assert p.mm.peek_pte(new).kind == PTE_PRESENT
    p.munmap(new, 2 * 4096)
    p.exit()
    assert check_devices(k, mod) == []
