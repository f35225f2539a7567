"""Bad use of the dmirror / migrate_vma API gives the kernel's errno, and the model's teardown
checks (memunmap_pages waiting for device pages) behave per era."""

import errno

import pytest

from zonedev.linux.lib.test_hmm import (HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_READ, HMM_DMIRROR_RELEASE,
                                        hmm_dmirror_cmd)
from zonedev.linux.mm.memory import SegmentationFault
from zonedev.linux.mm.migrate_device import MIGRATE_VMA_SELECT_SYSTEM, migrate_vma
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE
from zonedev.selftests.runner import check_devices, setup_kernel
from zonedev.selftests.uapi import Process
from zonedev.sync import World, WouldBlockForever, use_world


@pytest.fixture
def v61():
    with use_world(World()):
        k, mod = setup_kernel("v6.1")
        yield k, mod, Process(k)


def _errno(fn):
    with pytest.raises(OSError) as e:
        fn()
    return e.value.errno


def test_migrating_an_unmapped_range_is_einval(v61):
    k, mod, p = v61
    fd = p.open_dmirror(0)
    addr = p.mmap(4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.munmap(addr, 4 * 4096)
    assert _errno(lambda: p.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [], 4))) == errno.EINVAL


def test_ioctl_on_a_closed_mirror_is_ebadf(v61):
    k, mod, p = v61
    fd = p.open_dmirror(0)
    f = p.fds[fd].obj
    p.close(fd)
    assert _errno(lambda: p.ioctl(fd, HMM_DMIRROR_READ, hmm_dmirror_cmd(0x1000, [], 1))) == errno.EBADF
    # and through a stale struct file (the driver's entry itself)
    assert _errno(lambda: k.dmirror_fops_unlocked_ioctl(f, HMM_DMIRROR_READ, hmm_dmirror_cmd(0x1000, [], 1))) == errno.EBADF


@pytest.mark.parametrize("addr,npages", [(0x1001, 1), (0x1000, 0)])
def test_bad_range_is_einval(v61, addr, npages):
    k, mod, p = v61
    fd = p.open_dmirror(0)
    assert _errno(lambda: p.ioctl(fd, HMM_DMIRROR_READ, hmm_dmirror_cmd(addr, [], npages))) == errno.EINVAL


def test_unknown_ioctl_is_einval_and_release_needs_v61():
    with use_world(World()):
        k, mod = setup_kernel("v6.0")
        p = Process(k)
        fd = p.open_dmirror(0)
        assert _errno(lambda: p.ioctl(fd, 0x42, hmm_dmirror_cmd(0x1000, [], 1))) == errno.EINVAL
        assert _errno(lambda: p.ioctl(fd, HMM_DMIRROR_RELEASE, hmm_dmirror_cmd(0x1000, [], 1))) == errno.EINVAL


def test_migrate_vma_setup_outside_the_vma_is_einval(v61):
    k, mod, p = v61
    addr = p.mmap(4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    vma = p.mm.vmas.peek()[0]
    args = migrate_vma(vma=vma, start=addr, end=addr + 8 * 4096, flags=MIGRATE_VMA_SELECT_SYSTEM)
    assert _errno(lambda: k.migrate_vma_setup(args)) == errno.EINVAL
    args = migrate_vma(vma=None, start=addr, end=addr + 4096)
    assert _errno(lambda: k.migrate_vma_setup(args)) == errno.EINVAL


def _migrate_some(k, p, n=4):
    fd = p.open_dmirror(0)
    addr = p.mmap(n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    p.write_buf(addr, list(range(n * k.page_ints)))
    p.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0] * (n * k.page_ints), n))
    return fd, addr


def test_module_unload_evicts_then_unmaps_v61(v61):
    """v6.1: RELEASE/unload evicts in-use pages (migrate_device_range) so memunmap_pages'
    wait for the pgmap references returns; the process keeps its data."""
    k, mod, p = v61
    fd, addr = _migrate_some(k, p)
    k.hmm_dmirror_exit(mod)
    assert p.read_buf(addr, 4 * k.page_ints) == list(range(4 * k.page_ints))
    assert not k.world.violations


def test_unload_with_mapped_device_pages_before_v61_does_not_wait():
    """v6.0 (27674ef6c73f era): memunmap_pages drops the bulk pgmap refs and returns while
    device pages are still mapped (F8): no hang, but the pages outlive their pgmap."""
    with use_world(World()):
        k, mod = setup_kernel("v6.0")
        p = Process(k)
        _migrate_some(k, p)
        k.hmm_dmirror_exit(mod)       # returns: nothing waits for the mapped pages


def test_invariants_catch_a_leaked_device_page(v61):
    k, mod, p = v61
    fd, addr = _migrate_some(k, p)
    page = p.mm.peek_pte(addr).page
    k.get_page(page)                  # a leaked reference
    p.exit()
    problems = check_devices(k, mod)
    assert any("not back on the free list" in s for s in problems)
    # the page is in use, and both counters agree that it is
    assert not any("calloc - cfree" in s or "percpu_ref" in s for s in problems)


def _close_then_fault(kernel):
    with use_world(World()) as w:
        k, mod = setup_kernel(kernel)
        p = Process(k)
        fd, addr = _migrate_some(k, p, 1)
        p.close(fd)                          # dmirror_fops_release frees the mirror
        try:
            p.read_buf(addr, 1)              # a later CPU fault (the coredump of L4)
        except SegmentationFault:
            pass                             # after the use-after-free the model SIGBUSes
        return [v.kind for v in w.violations]


def test_fd_close_leaves_a_dangling_mirror_before_744dd97752ef():
    assert "use_after_free" in _close_then_fault("v6.1")


def test_newest_evicts_on_close():
    assert _close_then_fault("newest") == []
