"""tools/testing/selftests/mm/hmm-tests.c, ported to the model (``kernel_hmm_selftests.md`` §2).

Each case is the kernel's test body with the kernel's assertions (return values and errnos,
``cpages``, ``faults``, snapshot bytes, data).  Sizes: ``npages`` replaces HMM_BUFFER_SIZE's
1024 pages (4 MiB) and ``k.page_ints`` the 1024 ints of a 4 KiB page; both are parameters
(the kernel's values work, just slower).  ``NTIMES`` is the kernel's 10.

THP cases (S2): ``read_pmd_pagesize()`` is the run's ``HPAGE_PMD_SIZE`` (``--thp-order``, 3 by
default: 8-page THPs instead of 512); the kernel's fixed offsets scale with it -- 512 KiB and
1 MiB of a 2 MiB PMD become a quarter and a half of the PMD, the 1 MiB munmap half of it, and
``ptr[2048]`` (int 2048: page 2 at 1024 ints a page) becomes the first int of page 2.
``MADV_NOHUGEPAGE`` legs are the model's default (no VM_HUGEPAGE), so they madvise nothing.

A forked child runs to completion at the fork (the tests only ever wait for it, or kill it
while it busy-loops), so the port is sequential.  ``anon_teardown``'s racing thread is run at
both deterministic points (before and after the READ); the kernel test asserts only when READ
succeeds, and so does the port.  The concurrent version is ``scenarios/hmm_races.py``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from ..linux.lib.test_hmm import (HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_MIGRATE_TO_DEV,
                                  HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
                                  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
                                  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ,
                                  HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_ZERO, HMM_DMIRROR_READ,
                                  HMM_DMIRROR_RELEASE, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_WRITE)
from ..linux.include.mm import FOLL_LONGTERM
from ..linux.mm.gup_user import GUP_BASIC_TEST, GUP_FAST_BENCHMARK, PIN_FAST_BENCHMARK, PIN_LONGTERM_BENCHMARK
from ..linux.lib.test_hmm import HMM_DMIRROR_FLAGS
from ..linux.mm.huge_memory import MADV_HUGEPAGE
from ..linux.mm.mmap import (MADV_FREE, MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, MREMAP_DONTUNMAP, MREMAP_FIXED,
                             MREMAP_MAYMOVE, PAGE_SHIFT, PROT_NONE, PROT_READ, PROT_WRITE)
from .uapi import Process, hmm_dmirror_cmd_ioctl

NTIMES = 10


class CaseFailure(AssertionError):
    pass


def ASSERT_EQ(a, b, what: str = "") -> None:
    if a != b:
        raise CaseFailure(f"ASSERT_EQ failed{': ' + what if what else ''}: {a!r} != {b!r}")


def ASSERT_LIST(got: list, want: list, what: str) -> None:
    if got != want:
        i = next(i for i, (x, y) in enumerate(zip(got + [None], want + [None])) if x != y)
        raise CaseFailure(f"{what}: int {i}: {got[i] if i < len(got) else None!r} != "
                          f"{want[i] if i < len(want) else None!r}")


@dataclass
class hmm_buffer:
    ptr: int = 0
    mirror: list = field(default_factory=list)
    size: int = 0
    fd: int = -1
    cpages: int = 0
    faults: int = 0


class Ctx:
    """The fixture (``FIXTURE(hmm)`` / ``FIXTURE(hmm2)``) and the per-run parameters."""

    def __init__(self, k, proc: Process, variant: str, fixture: str, npages: int) -> None:
        self.k = k
        self.proc = proc
        self.variant = variant
        self.fixture = fixture
        self.npages = npages
        self.page_size = 1 << PAGE_SHIFT
        self.page_shift = PAGE_SHIFT
        self.page_ints = getattr(k, "page_ints", 1024)
        self.fd = self.fd0 = self.fd1 = -1

    @property
    def coherent(self) -> bool:
        return self.variant == "coherent"

    # helpers of hmm-tests.c
    def cmd(self, fd: int, request: int, buffer: hmm_buffer, npages: int) -> int:
        return hmm_dmirror_cmd_ioctl(self.proc, fd, request, buffer, npages)

    def migrate_sys_to_dev(self, fd, buffer, npages) -> int:
        return self.cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages)

    def migrate_dev_to_sys(self, fd, buffer, npages) -> int:
        return self.cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages)

    def nints(self, npages: int) -> int:
        return npages * self.page_ints

    def new_buffer(self, npages: int, prot: int, flags: int, fd: int = -1) -> hmm_buffer:
        size = npages << self.page_shift
        ptr = self.proc.mmap(size, prot, flags, fd, 0)
        return hmm_buffer(ptr=ptr, mirror=[0] * self.nints(npages), size=size, fd=fd)

    def free(self, buffer: hmm_buffer) -> None:
        """``hmm_buffer_free()``: munmap (and close the file)."""
        if buffer.ptr:
            self.proc.munmap(buffer.ptr, buffer.size)
        if buffer.fd >= 0:
            self.proc.close(buffer.fd)

    # THP helpers (S2)
    def pmd_size(self) -> int:
        """``read_pmd_pagesize()``."""
        return self.proc.read_pmd_pagesize()

    def pmd_npages(self) -> int:
        return self.pmd_size() >> self.page_shift

    def thp_map(self, ptr: int, use_thp: bool = True) -> int:
        """``map = ALIGN(ptr, size); madvise(map, size, MADV_HUGEPAGE)`` (MADV_NOHUGEPAGE: the
        model's default, nothing to do)."""
        size = self.pmd_size()
        m = (ptr + size - 1) & ~(size - 1)
        if use_thp:
            ASSERT_EQ(self.proc.madvise(m, size, MADV_HUGEPAGE), 0, "madvise")
        return m

    def read(self, buffer: hmm_buffer, n: int, start: int = 0, proc: Process | None = None) -> list:
        return (proc or self.proc).read_buf(buffer.ptr, n, start)

    def write(self, buffer: hmm_buffer, values: list, start: int = 0, proc: Process | None = None) -> None:
        (proc or self.proc).write_buf(buffer.ptr, values, start)


def _i(n, f=lambda i: i):
    return [f(i) for i in range(n)]


# ---- the cases (hmm-tests.c order) ---------------------------------------------------------------

def open_close(t: Ctx) -> None:
    pass


def anon_read(t: Ctx) -> None:
    npages = t.npages
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    n = t.nints(npages)
    # Initialize buffer in system memory but leave the first two pages zero.
    t.write(b, _i(n)[2 * t.page_ints:], 2 * t.page_ints)
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_READ), 0)
    # Fault the second page (zero page); page 0 stays pte_none.
    ASSERT_EQ(t.read(b, 1, t.page_ints)[0], 0, "val")
    ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, npages)
    ASSERT_EQ(ret, 0, "READ")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    want = [0] * (2 * t.page_ints) + _i(n)[2 * t.page_ints:]
    ASSERT_LIST(b.mirror, want, "mirror")
    t.free(b)


def anon_read_prot(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    b.mirror = _i(n, lambda i: -i)
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_NONE), 0)
    ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, npages)
    ASSERT_EQ(ret, -errno.EFAULT, "READ of PROT_NONE")
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_READ), 0)
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    ASSERT_LIST(b.mirror, _i(n, lambda i: -i), "mirror")
    t.free(b)


def anon_write(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    b.mirror = _i(n)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, 0, "WRITE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    t.free(b)


def anon_write_prot(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
    ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, 1)
    ASSERT_EQ(ret, 0, "READ 1")
    ASSERT_EQ(b.cpages, 1, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    b.mirror = _i(n)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, -errno.EPERM, "WRITE to read-only")
    ASSERT_LIST(t.read(b, n), [0] * n, "ptr")
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_READ | PROT_WRITE), 0)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, 0, "WRITE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    t.free(b)


def _anon_write_child(t: Ctx, flags: int, shared: bool, migrate: bool = False, s2: bool = False,
                      use_thp: bool = False) -> None:
    npages = t.pmd_npages() if use_thp else t.npages
    n = t.nints(npages)
    old = None
    if s2:                                       # S2 maps size * 2 (room for THP alignment)
        b = t.new_buffer(2 * npages, PROT_READ | PROT_WRITE, flags)
        b.mirror = [0] * n
        if use_thp:
            old = b.ptr
            b.ptr = t.thp_map(b.ptr)
    else:
        b = t.new_buffer(npages, PROT_READ | PROT_WRITE, flags)
    t.write(b, _i(n))
    b.mirror = _i(n, lambda i: -i)
    if migrate:                                  # S2 (newest) form, migrate=1 leg
        ret = t.migrate_sys_to_dev(t.fd, b, npages)
        ASSERT_EQ(ret, 0, "migrate")
        ASSERT_EQ(b.cpages, npages, "cpages")
    child = t.proc.fork()
    # --- the child ---
    child_mirror = list(b.mirror)
    # Check that we see the parent's values (S2 with migrate=1: a CPU fault of inherited
    # device pages; private: migrate_to_ram from the child's mm).
    ASSERT_LIST(child.read_buf(b.ptr, n), _i(n), "child ptr")
    if not migrate:
        ASSERT_LIST(child_mirror, _i(n, lambda i: -i), "child mirror")
    child_fd = child.open_dmirror(0)             # always device 0, even in the coherent variant
    cb = hmm_buffer(ptr=b.ptr, mirror=child_mirror, size=b.size)
    ret = hmm_dmirror_cmd_ioctl(child, child_fd, HMM_DMIRROR_WRITE, cb, npages)
    ASSERT_EQ(ret, 0, "child WRITE")
    ASSERT_EQ(cb.cpages, npages, "child cpages")
    ASSERT_EQ(cb.faults, 1, "child faults")
    if not migrate:
        ASSERT_LIST(child.read_buf(b.ptr, n), _i(n, lambda i: -i), "child ptr after WRITE")
    ASSERT_EQ(child.close(child_fd), 0)
    child.exit()
    # --- the parent: waitpid, WIFEXITED, WEXITSTATUS == 0 ---
    ASSERT_EQ(child.alive, False, "child exited")
    ASSERT_LIST(t.read(b, n), _i(n, lambda i: -i) if shared else _i(n), "parent ptr")
    if old is not None:
        b.ptr = old
    t.free(b)


def _s2(k) -> bool:
    """The newest hmm-tests.c (S2, linux-mm 2025/26) rewrote anon_write_child; it goes with the
    newest kernel only."""
    return k.name.split("-")[0].split("+")[0] == "newest"


def anon_write_child(t: Ctx) -> None:
    if _s2(t.k):
        # S2 rewrite: migrate in {0, 1} x THP in {0, 1}
        for migrate in (False, True):
            for use_thp in (False, True):
                _anon_write_child(t, MAP_PRIVATE | MAP_ANONYMOUS, False, migrate, s2=True, use_thp=use_thp)
    else:
        _anon_write_child(t, MAP_PRIVATE | MAP_ANONYMOUS, False)


def anon_write_child_shared(t: Ctx) -> None:
    _anon_write_child(t, MAP_SHARED | MAP_ANONYMOUS, True)


def _file_buffer(t: Ctx, npages: int, prot: int) -> hmm_buffer:
    fd = t.proc.open_tmpfile()                   # hmm_create_file(): O_TMPFILE in /tmp
    size = npages << t.page_shift
    ASSERT_EQ(t.proc.ftruncate(fd, size), 0)
    return hmm_buffer(fd=fd, size=size, mirror=[0] * t.nints(npages))


def file_read(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = _file_buffer(t, npages, PROT_READ)
    ASSERT_EQ(t.proc.pwrite_ints(b.fd, _i(n)), 4 * n, "pwrite")        # len == size (the ints written)
    b.ptr = t.proc.mmap(b.size, PROT_READ, MAP_SHARED, b.fd, 0)
    ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, npages)
    ASSERT_EQ(ret, 0, "READ")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    t.free(b)


def file_write(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = _file_buffer(t, npages, PROT_READ | PROT_WRITE)
    b.ptr = t.proc.mmap(b.size, PROT_READ | PROT_WRITE, MAP_SHARED, b.fd, 0)
    b.mirror = _i(n)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, 0, "WRITE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    ASSERT_LIST(t.proc.pread_ints(b.fd, n), _i(n), "pread")
    t.free(b)


def migrate(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    t.free(b)


def migrate_fault(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    # Fault half the pages back to system memory and check them.
    ASSERT_LIST(t.read(b, n // 2), _i(n // 2), "ptr first half")
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate again")
    ASSERT_EQ(b.cpages, npages, "cpages again")
    ASSERT_LIST(b.mirror, _i(n), "mirror again")
    t.free(b)


def migrate_release(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    ret = t.cmd(t.fd, HMM_DMIRROR_RELEASE, b, npages)
    ASSERT_EQ(ret, 0, "RELEASE")
    ASSERT_LIST(t.read(b, n // 2), _i(n // 2), "ptr first half after eviction")
    t.free(b)


def migrate_shared(t: Ctx) -> None:
    npages = t.npages
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS)
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, -errno.ENOENT, "migrate shared")
    t.free(b)


def migrate_mixed(t: Ctx) -> None:
    npages = 6
    ps = t.page_size
    b = t.new_buffer(npages, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    p = b.ptr
    ret = t.migrate_sys_to_dev(t.fd1, b, npages)
    ASSERT_EQ(ret, -errno.EINVAL, "migrate PROT_NONE")
    ASSERT_EQ(t.proc.munmap(p + ps, ps), 0)
    ret = t.migrate_sys_to_dev(t.fd1, b, 3)
    ASSERT_EQ(ret, -errno.EINVAL, "migrate over a hole")
    # Page 2 will be a read-only zero page.
    ASSERT_EQ(t.proc.mprotect(p + 2 * ps, ps, PROT_READ), 0)
    val = t.proc.read_ints(p + 2 * ps, 1)[0] + 3
    ASSERT_EQ(val, 3, "zero page")
    # Page 3 will be read-only.
    ASSERT_EQ(t.proc.mprotect(p + 3 * ps, ps, PROT_READ | PROT_WRITE), 0)
    t.proc.write_ints(p + 3 * ps, [val])
    ASSERT_EQ(t.proc.mprotect(p + 3 * ps, ps, PROT_READ), 0)
    # Page 4-5 will be read-write.
    ASSERT_EQ(t.proc.mprotect(p + 4 * ps, 2 * ps, PROT_READ | PROT_WRITE), 0)
    t.proc.write_ints(p + 4 * ps, [val])
    t.proc.write_ints(p + 5 * ps, [val])
    # Now try to migrate pages 2-5 to device 1.
    b.ptr = p + 2 * ps
    ret = t.migrate_sys_to_dev(t.fd1, b, 4)
    ASSERT_EQ(ret, 0, "migrate 2-5 to dev1")
    ASSERT_EQ(b.cpages, 4, "cpages")
    # Page 5 won't be migrated to device 0 because it's on device 1.
    b.ptr = p + 5 * ps
    ret = t.migrate_sys_to_dev(t.fd0, b, 1)
    ASSERT_EQ(ret, -errno.ENOENT, "migrate page 5 to dev0")
    b.ptr = p
    # hmm_buffer_free(): munmap of the whole range (the hole included)
    t.free(b)


def migrate_multiple(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    for c in range(NTIMES):
        b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        t.write(b, _i(n))
        ret = t.migrate_sys_to_dev(t.fd, b, npages)
        ASSERT_EQ(ret, 0, f"round {c} migrate")
        ASSERT_EQ(b.cpages, npages, "cpages")
        ASSERT_LIST(b.mirror, _i(n), "mirror")
        # Migrate back to system memory and check them.
        if t.coherent:
            ret = t.migrate_dev_to_sys(t.fd, b, npages)
            ASSERT_EQ(ret, 0, "migrate to sys")
            ASSERT_EQ(b.cpages, npages, "cpages to sys")
        ASSERT_LIST(t.read(b, n), _i(n), "ptr")
        t.free(b)


def anon_read_multiple(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    for c in range(NTIMES):
        b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        t.write(b, _i(n, lambda i: i + c))
        ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, npages)
        ASSERT_EQ(ret, 0, "READ")
        ASSERT_EQ(b.cpages, npages, "cpages")
        ASSERT_EQ(b.faults, 1, "faults")
        ASSERT_LIST(b.mirror, _i(n, lambda i: i + c), "mirror")
        t.free(b)


def anon_teardown(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    for c in range(NTIMES):
        b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        t.write(b, _i(n, lambda i: i + c))
        # unmap_buffer(): munmap the second half, here before (odd c) or after (even c) READ
        half = b.size // 2
        if c & 1:
            t.proc.munmap(b.ptr + half, half)
        ret = t.cmd(t.fd, HMM_DMIRROR_READ, b, npages)
        if not c & 1:
            t.proc.munmap(b.ptr + half, half)
        if ret == 0:
            ASSERT_EQ(b.cpages, npages, "cpages")
            ASSERT_EQ(b.faults, 1, "faults")
            ASSERT_LIST(b.mirror, _i(n, lambda i: i + c), "mirror")
        t.free(b)


def mixedmap(t: Ctx) -> None:
    npages = 1
    size = npages << t.page_shift
    ptr = t.proc.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE, t.fd, 0)
    b = hmm_buffer(ptr=ptr, size=size, mirror=[0] * npages)
    ret = t.cmd(t.fd, HMM_DMIRROR_SNAPSHOT, b, npages)
    ASSERT_EQ(ret, 0, "SNAPSHOT")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.mirror[0], HMM_DMIRROR_PROT_READ, "m[0]")
    t.proc.munmap(ptr, size)


def snapshot(t: Ctx) -> None:
    npages = 7
    ps = t.page_size
    b = t.new_buffer(npages, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS)
    p = b.ptr
    # Punch a hole after the first page address.
    ASSERT_EQ(t.proc.munmap(p + ps, ps), 0)
    # Page 2 will be read-only zero page.
    ASSERT_EQ(t.proc.mprotect(p + 2 * ps, ps, PROT_READ), 0)
    val = t.proc.read_ints(p + 2 * ps, 1)[0] + 3
    ASSERT_EQ(val, 3, "zero page")
    # Page 3 will be read-only.
    ASSERT_EQ(t.proc.mprotect(p + 3 * ps, ps, PROT_READ | PROT_WRITE), 0)
    t.proc.write_ints(p + 3 * ps, [val])
    ASSERT_EQ(t.proc.mprotect(p + 3 * ps, ps, PROT_READ), 0)
    # Page 4-6 will be read-write.
    ASSERT_EQ(t.proc.mprotect(p + 4 * ps, 3 * ps, PROT_READ | PROT_WRITE), 0)
    t.proc.write_ints(p + 4 * ps, [val])
    # Page 5 will be migrated to device 0.
    b.ptr = p + 5 * ps
    ret = t.migrate_sys_to_dev(t.fd0, b, 1)
    ASSERT_EQ(ret, 0, "migrate page 5 to dev0")
    ASSERT_EQ(b.cpages, 1, "cpages")
    # Page 6 will be migrated to device 1.
    b.ptr = p + 6 * ps
    ret = t.migrate_sys_to_dev(t.fd1, b, 1)
    ASSERT_EQ(ret, 0, "migrate page 6 to dev1")
    ASSERT_EQ(b.cpages, 1, "cpages")
    # Simulate a device snapshotting CPU pagetables.
    b.ptr = p
    ret = t.cmd(t.fd0, HMM_DMIRROR_SNAPSHOT, b, npages)
    ASSERT_EQ(ret, 0, "SNAPSHOT")
    ASSERT_EQ(b.cpages, npages, "cpages")
    m = b.mirror
    ASSERT_EQ(m[0], HMM_DMIRROR_PROT_ERROR, "m[0]")
    ASSERT_EQ(m[1], HMM_DMIRROR_PROT_ERROR, "m[1]")
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ, "m[2]")
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_READ, "m[3]")
    ASSERT_EQ(m[4], HMM_DMIRROR_PROT_WRITE, "m[4]")
    if not t.coherent:
        ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE, "m[5]")
        ASSERT_EQ(m[6], HMM_DMIRROR_PROT_NONE, "m[6]")
    else:
        ASSERT_EQ(m[5], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, "m[5]")
        ASSERT_EQ(m[6], HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE, "m[6]")
    t.free(b)


def double_map(t: Ctx) -> None:
    npages = 6
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    # Make region read-only.
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_READ), 0)
    for fd in (t.fd0, t.fd1):
        ret = t.cmd(fd, HMM_DMIRROR_READ, b, npages)
        ASSERT_EQ(ret, 0, "READ")
        ASSERT_EQ(b.cpages, npages, "cpages")
        ASSERT_EQ(b.faults, 1, "faults")
        ASSERT_LIST(b.mirror, _i(n), "mirror")
    if t.k.fact("hmm_tests_coherent"):
        # S1/S2: migrate pages to device 1 and try to read from device 0.
        ret = t.migrate_sys_to_dev(t.fd1, b, npages)
        ASSERT_EQ(ret, 0, "migrate to dev1")
        ASSERT_EQ(b.cpages, npages, "cpages")
        ASSERT_LIST(b.mirror, _i(n), "mirror")
        ret = t.cmd(t.fd0, HMM_DMIRROR_READ, b, npages)
        ASSERT_EQ(ret, 0, "READ dev0")
        ASSERT_EQ(b.cpages, npages, "cpages")
        ASSERT_EQ(b.faults, 1, "faults")
        ASSERT_LIST(b.mirror, _i(n), "mirror")
    else:
        # S0 (v5.14-v5.19 hmm-tests): punch a hole after the first page address.
        ASSERT_EQ(t.proc.munmap(b.ptr + t.page_size, t.page_size), 0)
    t.free(b)


def exclusive(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.cmd(t.fd, HMM_DMIRROR_EXCLUSIVE, b, npages)
    ASSERT_EQ(ret, 0, "EXCLUSIVE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    # Fault pages back to system memory and check them: ptr[i]++ == i
    got = t.read(b, n)
    ASSERT_LIST(got, _i(n), "ptr")
    t.write(b, [v + 1 for v in got])
    ASSERT_LIST(t.read(b, n), _i(n, lambda i: i + 1), "ptr + 1")
    ret = t.cmd(t.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages)
    ASSERT_EQ(ret, 0, "CHECK_EXCLUSIVE")
    t.free(b)


def exclusive_mprotect(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.cmd(t.fd, HMM_DMIRROR_EXCLUSIVE, b, npages)
    ASSERT_EQ(ret, 0, "EXCLUSIVE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    ASSERT_EQ(t.proc.mprotect(b.ptr, b.size, PROT_READ), 0)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, -errno.EPERM, "WRITE after mprotect")
    t.free(b)


def exclusive_cow(t: Ctx) -> None:
    npages = t.npages
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.cmd(t.fd, HMM_DMIRROR_EXCLUSIVE, b, npages)
    ASSERT_EQ(ret, 0, "EXCLUSIVE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    child = t.proc.fork()              # no pid check: both processes go on
    for proc in (child, t.proc):
        got = proc.read_buf(b.ptr, n)
        ASSERT_LIST(got, _i(n), f"{proc.name} ptr")
        proc.write_buf(b.ptr, [v + 1 for v in got])
        ASSERT_LIST(proc.read_buf(b.ptr, n), _i(n, lambda i: i + 1), f"{proc.name} ptr + 1")
        if proc is child:
            child.exit()               # the child's harness process ends
    t.free(b)


def hmm_gup_test(t: Ctx) -> None:
    npages = 4
    n = t.nints(npages)
    ps = t.page_size
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror, _i(n), "mirror")
    ASSERT_EQ(t.proc.gup_test(GUP_BASIC_TEST, b.ptr, ps, 0), 0, "GUP_BASIC_TEST")
    ASSERT_EQ(t.proc.gup_test(GUP_FAST_BENCHMARK, b.ptr + ps, ps, 0), 0, "GUP_FAST_BENCHMARK")
    ASSERT_EQ(t.proc.gup_test(PIN_FAST_BENCHMARK, b.ptr + 2 * ps, ps, FOLL_LONGTERM), 0, "PIN_FAST_BENCHMARK")
    ASSERT_EQ(t.proc.gup_test(PIN_LONGTERM_BENCHMARK, b.ptr + 3 * ps, ps, 0), 0, "PIN_LONGTERM_BENCHMARK")
    # Take snapshot to CPU pagetables
    ret = t.cmd(t.fd, HMM_DMIRROR_SNAPSHOT, b, npages)
    ASSERT_EQ(ret, 0, "SNAPSHOT")
    ASSERT_EQ(b.cpages, npages, "cpages")
    m = b.mirror
    if t.coherent:
        ASSERT_EQ(m[0], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, "m[0]")
        ASSERT_EQ(m[1], HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE, "m[1]")
    else:
        ASSERT_EQ(m[0], HMM_DMIRROR_PROT_WRITE, "m[0]")
        ASSERT_EQ(m[1], HMM_DMIRROR_PROT_WRITE, "m[1]")
    ASSERT_EQ(m[2], HMM_DMIRROR_PROT_WRITE, "m[2]")
    ASSERT_EQ(m[3], HMM_DMIRROR_PROT_WRITE, "m[3]")
    # Check again the content on the pages. Make sure there's no corrupted data.
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    t.free(b)


def hmm_cow_in_device(t: Ctx) -> None:
    npages = 4
    n = t.nints(npages)
    b = t.new_buffer(npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    child = t.proc.fork()              # the child busy-loops until killed
    # Parent: write every int (private: fault back then COW; coherent: COW from device memory)
    t.write(b, _i(n))
    child.exit(signal=15)              # kill(pid, SIGTERM); waitpid
    ASSERT_EQ(child.exit_signal, 15, "WTERMSIG == SIGTERM")
    # Take snapshot to CPU pagetables
    ret = t.cmd(t.fd, HMM_DMIRROR_SNAPSHOT, b, npages)
    ASSERT_EQ(ret, 0, "SNAPSHOT")
    ASSERT_EQ(b.cpages, npages, "cpages")
    for i in range(npages):
        ASSERT_EQ(b.mirror[i], HMM_DMIRROR_PROT_WRITE, f"m[{i}]")
    t.free(b)


# ---- S2 THP cases (hmm-tests.c @00890d35dbe7, linux-mm) -------------------------------------------

def anon_write_huge(t: Ctx) -> None:
    """Write huge private anonymous memory: a THP the device writes through hmm_range_fault."""
    size = t.pmd_size()
    npages = size >> t.page_shift
    n = t.nints(npages)
    b = t.new_buffer(2 * npages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    old = b.ptr
    b.ptr = t.thp_map(b.ptr)
    b.mirror = _i(n)
    ret = t.cmd(t.fd, HMM_DMIRROR_WRITE, b, npages)
    ASSERT_EQ(ret, 0, "WRITE")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(b.faults, 1, "faults")
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    b.ptr = old
    t.free(b)


def _huge_buffer(t: Ctx, prot: int, mirror_pages: int = 1, use_thp: bool = True, npmd: int = 2):
    size = t.pmd_size()
    npages = size >> t.page_shift
    b = t.new_buffer(npmd * npages, prot, MAP_PRIVATE | MAP_ANONYMOUS)
    b.mirror = [-1] * t.nints(mirror_pages * npages)          # memset(mirror, 0xFF, size)
    old = b.ptr
    b.ptr = t.thp_map(b.ptr, use_thp)
    return b, old, npages


def migrate_anon_huge_empty(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ)
    n = t.nints(npages)
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], [0] * n, "mirror")
    b.ptr = old
    t.free(b)


def migrate_anon_huge_zero(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ)
    n = t.nints(npages)
    ASSERT_EQ(t.read(b, 1)[0], 0, "val (huge zero page)")
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], [0] * n, "mirror")
    ASSERT_LIST(t.read(b, n), [0] * n, "ptr")
    b.ptr = old
    t.free(b)


def migrate_anon_huge_free(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ | PROT_WRITE)
    n = t.nints(npages)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], _i(n), "mirror")
    ASSERT_EQ(t.proc.madvise(b.ptr, t.pmd_size(), MADV_FREE), 0, "madvise(MADV_FREE)")
    b.ptr = old
    t.free(b)


def migrate_anon_huge_fault(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ | PROT_WRITE)
    n = t.nints(npages)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], _i(n), "mirror")
    ASSERT_LIST(t.read(b, n), _i(n), "ptr")
    b.ptr = old
    t.free(b)


def _offsets(t: Ctx) -> tuple:
    """``{0, 512 * ONEKB, ONEMEG}`` of a 2 MiB PMD, scaled: 0, a quarter, a half."""
    size = t.pmd_size()
    return (0, size // 4, size // 2)


def migrate_partial_unmap_fault(t: Ctx) -> None:
    size = t.pmd_size()
    half = size // 2                                             # ONEMEG
    for use_thp in (False, True):
        for off in _offsets(t):
            b, old, npages = _huge_buffer(t, PROT_READ | PROT_WRITE, use_thp=use_thp)
            n = t.nints(npages)
            t.write(b, _i(n))
            ret = t.migrate_sys_to_dev(t.fd, b, npages)
            ASSERT_EQ(ret, 0, "migrate")
            ASSERT_EQ(b.cpages, npages, "cpages")
            ASSERT_LIST(b.mirror[:n], _i(n), "mirror")
            t.proc.munmap(b.ptr + off, half)
            lo, hi = (off >> t.page_shift) * t.page_ints, ((off + half) >> t.page_shift) * t.page_ints
            ASSERT_LIST(t.read(b, lo), _i(lo), f"ptr below the hole (thp={use_thp}, offset={off:#x})")
            ASSERT_LIST(t.read(b, n - hi, hi), _i(n)[hi:], f"ptr above the hole (thp={use_thp}, offset={off:#x})")
            b.ptr = old
            t.free(b)


def migrate_remap_fault(t: Ctx) -> None:
    size = t.pmd_size()
    for before in (False, True):
        for dont_unmap in (False, True):
            for use_thp in (False, True):
                for off in _offsets(t):
                    flags = MREMAP_MAYMOVE | MREMAP_FIXED | (MREMAP_DONTUNMAP if dont_unmap else 0)
                    b, old, npages = _huge_buffer(t, PROT_READ | PROT_WRITE, use_thp=use_thp, npmd=8)
                    n = t.nints(npages)
                    m = b.ptr
                    t.proc.munmap(m + size, size * 2)
                    t.write(b, _i(n))
                    new = None
                    if before:
                        new = t.proc.mremap(m, size, size, flags, m + size + off)
                        b.ptr = new
                    ret = t.migrate_sys_to_dev(t.fd, b, npages)
                    ASSERT_EQ(ret, 0, "migrate")
                    ASSERT_EQ(b.cpages, npages, "cpages")
                    ASSERT_LIST(b.mirror[:n], _i(n), "mirror")
                    if not before:
                        new = t.proc.mremap(m, size, size, flags, m + size + off)
                        b.ptr = new
                    ASSERT_LIST(t.read(b, n), _i(n), f"ptr (before={before}, dontunmap={dont_unmap}, "
                                f"thp={use_thp}, offset={off:#x})")
                    t.proc.munmap(new, size)
                    b.ptr = old
                    t.free(b)


HMM_DMIRROR_FLAG_FAIL_ALLOC = 1 << 0


def migrate_anon_huge_err(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ | PROT_WRITE, mirror_pages=2)
    n = t.nints(npages)
    p2 = 2 * t.page_ints                                         # ptr[2048]: int 0 of page 2
    t.write(b, _i(n))
    ASSERT_EQ(t.cmd(t.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, "FLAGS")
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], _i(n), "mirror")
    ASSERT_EQ(t.read(b, 1, p2)[0], p2, "ptr[2048]")
    ASSERT_EQ(t.proc.munmap(old, 2 * b.size // 2), 0, "munmap")
    old = t.proc.mmap(b.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    b.ptr = t.thp_map(old)
    t.write(b, _i(n))
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate THP")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_EQ(t.cmd(t.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, "FLAGS")
    ret = t.migrate_dev_to_sys(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate to sys")
    ASSERT_EQ(t.read(b, 1, p2)[0], p2, "ptr[2048] after TO_SYS")
    b.ptr = old
    t.free(b)


def migrate_anon_huge_zero_err(t: Ctx) -> None:
    b, old, npages = _huge_buffer(t, PROT_READ, mirror_pages=2)
    n = t.nints(npages)
    p2 = 2 * t.page_ints
    ASSERT_EQ(t.cmd(t.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, "FLAGS")
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(b.mirror[:n], [0] * n, "mirror")
    ASSERT_EQ(t.read(b, 1, p2)[0], 0, "ptr[2048]")
    ASSERT_EQ(t.proc.munmap(old, b.size), 0, "munmap")
    old = t.proc.mmap(b.size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
    stale = b.ptr                       # the kernel test reads through its stale ptr (quirk)
    b.ptr = t.thp_map(old)
    ASSERT_EQ(t.proc.read_buf(stale, 1)[0], 0, "ptr[0] (zero THP)")
    ASSERT_EQ(t.cmd(t.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC), 0, "FLAGS")
    ret = t.migrate_sys_to_dev(t.fd, b, npages)
    ASSERT_EQ(ret, 0, "migrate")
    ASSERT_EQ(b.cpages, npages, "cpages")
    ASSERT_LIST(t.read(b, n), [0] * n, "ptr")
    b.ptr = old
    t.free(b)


# ---- registry ------------------------------------------------------------------------------------

def _always(k):
    return None


def _need_exclusive(k):
    return None if k.has("make_device_exclusive") else \
        "no make_device_exclusive() in this kernel (b756a3b5e7ea, v5.14): the test is not in its hmm-tests"


def _need_release(k):
    return None if k.has("migrate_device_range") else \
        "no migrate_device_range()/HMM_DMIRROR_RELEASE in this kernel (e778406b40db, v6.1)"


def _need_v6_0_tests(k):
    return None if k.fact("hmm_tests_coherent") else \
        "added to hmm-tests with the device-coherent series (v6.0)"


#: a requirement's answer for a case that is not in this kernel's hmm-tests.c at all
ABSENT = "absent"


def _not_ported(k):
    return None                            # in every hmm-tests.c version; the runner says why it is skipped


def _not_ported_s2(k):
    return None if _s2(k) else ABSENT      # only the newest hmm-tests.c (S2) has these


#: (name, fixture, function or None if not ported, requirement) in hmm-tests.c order
CASES = [
    ("open_close", "hmm", open_close, _always),
    ("anon_read", "hmm", anon_read, _always),
    ("anon_read_prot", "hmm", anon_read_prot, _always),
    ("anon_write", "hmm", anon_write, _always),
    ("anon_write_prot", "hmm", anon_write_prot, _always),
    ("anon_write_child", "hmm", anon_write_child, _always),
    ("anon_write_child_shared", "hmm", anon_write_child_shared, _always),
    ("anon_write_huge", "hmm", anon_write_huge, _always),
    ("anon_write_hugetlbfs", "hmm", None, _not_ported),
    ("file_read", "hmm", file_read, _always),
    ("file_write", "hmm", file_write, _always),
    ("migrate", "hmm", migrate, _always),
    ("migrate_fault", "hmm", migrate_fault, _always),
    ("migrate_release", "hmm", migrate_release, _need_release),
    ("migrate_shared", "hmm", migrate_shared, _always),
    ("migrate_mixed", "hmm2", migrate_mixed, _always),
    ("migrate_multiple", "hmm", migrate_multiple, _always),
    ("anon_read_multiple", "hmm", anon_read_multiple, _always),
    ("anon_teardown", "hmm", anon_teardown, _always),
    ("mixedmap", "hmm", mixedmap, _always),
    ("snapshot", "hmm2", snapshot, _always),
    ("compound", "hmm", None, _not_ported),
    ("double_map", "hmm2", double_map, _always),
    ("exclusive", "hmm", exclusive, _need_exclusive),
    ("exclusive_mprotect", "hmm", exclusive_mprotect, _need_exclusive),
    ("exclusive_cow", "hmm", exclusive_cow, _need_exclusive),
    ("hmm_gup_test", "hmm", hmm_gup_test, _need_v6_0_tests),
    ("hmm_cow_in_device", "hmm", hmm_cow_in_device, _need_v6_0_tests),
] + [(fn.__name__, "hmm", fn, _not_ported_s2) for fn in (
    migrate_anon_huge_empty, migrate_anon_huge_zero, migrate_anon_huge_free, migrate_anon_huge_fault,
    migrate_partial_unmap_fault, migrate_remap_fault, migrate_anon_huge_err, migrate_anon_huge_zero_err)] + [
    ("benchmark_thp_migration", "hmm", None, _not_ported_s2)]

#: the cases that run on the model
PORTED = [c for c in CASES if c[2] is not None]

#: hmm-tests.c cases the model does not express, and why
NOT_PORTED = [
    ("anon_write_hugetlbfs", "hugetlbfs is not modelled"),
    ("compound", "hugetlbfs (PMD-order snapshot bytes) is not modelled"),
    ("benchmark_thp_migration", "a throughput benchmark (TEST_F_TIMEOUT 120 s), not a correctness oracle: "
     "benchmarks/thp_migration.py runs it"),
    ("userfaultfd_read", "proposed (2026), userfaultfd not modelled"),
]
