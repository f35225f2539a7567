"""Userspace for the selftests: a process with an mm, file descriptors and the syscalls the HMM
selftests use (mmap, munmap, mprotect, mremap, fork, exit, open, close, ioctl, O_TMPFILE files
with ftruncate/pread/pwrite), and CPU loads/stores of ints that go through the MMU model
(``cpu_access``: fault, retry).

Data is in ints, as the C tests handle it (``int *ptr``): a page holds ``k.page_ints`` ints
(1024 in the kernel; configurable for speed).  User buffers that the driver copies to/from
(``hmm_buffer.mirror``) are Python lists, not modelled memory.
"""

from __future__ import annotations

import errno

from ..linux.lib.test_hmm import dmirror_file, hmm_dmirror_cmd
from ..linux.mm.mmap import PAGE_SHIFT, PAGE_SIZE, err


class File:
    """An open file description (``struct file``) shared across fork."""

    def __init__(self, kind: str, obj) -> None:
        self.kind = kind          # "dmirror", "tmpfile", "gup_test"
        self.obj = obj
        self.f_count = 1


class Process:
    def __init__(self, k, mm=None, name: str = "hmm-tests") -> None:
        self.k = k
        self.mm = mm if mm is not None else k.mm_alloc()
        self.pid = 100 + self.mm.id
        self.name = name
        self.fds: dict[int, File] = {}
        self.alive = True
        self.exit_signal = None

    @property
    def page_ints(self) -> int:
        return getattr(self.k, "page_ints", 1024)

    # --- memory syscalls ------------------------------------------------------------------------
    def mmap(self, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0, addr: int = 0) -> int:
        file = None
        if fd >= 0:
            f = self._file(fd)
            file = f.obj if f.kind == "tmpfile" else f.obj
        self.mm.mmap_lock.down_write("mmap_write_lock")
        try:
            return self.k.do_mmap(self.mm, addr, length, prot, flags, file, offset >> PAGE_SHIFT)
        finally:
            self.mm.mmap_lock.up_write("mmap_write_unlock")

    def munmap(self, addr: int, length: int) -> int:
        self.mm.mmap_lock.down_write("mmap_write_lock")
        try:
            return self.k.do_munmap(self.mm, addr, length)
        finally:
            self.mm.mmap_lock.up_write("mmap_write_unlock")

    def mprotect(self, addr: int, length: int, prot: int) -> int:
        self.mm.mmap_lock.down_write("mmap_write_lock")
        try:
            return self.k.do_mprotect(self.mm, addr, length, prot)
        finally:
            self.mm.mmap_lock.up_write("mmap_write_unlock")

    def mremap(self, old: int, old_len: int, new_len: int, flags: int, new_addr: int = 0) -> int:
        self.mm.mmap_lock.down_write("mmap_write_lock")
        try:
            return self.k.do_mremap(self.mm, old, old_len, new_len, flags, new_addr)
        finally:
            self.mm.mmap_lock.up_write("mmap_write_unlock")

    def madvise(self, addr: int, length: int, advice: int) -> int:
        return self.k.do_madvise(self.mm, addr, length, advice)

    def read_pmd_pagesize(self) -> int:
        """hmm-tests' ``read_pmd_pagesize()`` (/sys/kernel/mm/transparent_hugepage/hpage_pmd_size):
        the model run's ``HPAGE_PMD_SIZE``."""
        return self.k.hpage_pmd_size()

    # --- CPU access -----------------------------------------------------------------------------
    def read_ints(self, addr: int, n: int) -> list:
        out: list = []
        per = self.page_ints
        while len(out) < n:
            a = addr + len(out) * 4
            page = self.k.cpu_access(self.mm, a, False)
            off = (a & (PAGE_SIZE - 1)) // 4
            m = min(n - len(out), per - off)
            data = page.data.get("load")
            out.extend(data[off:off + m] if data else [0] * m)
        return out

    def write_ints(self, addr: int, values: list) -> None:
        per = self.page_ints
        i = 0
        while i < len(values):
            a = addr + i * 4
            page = self.k.cpu_access(self.mm, a, True)
            off = (a & (PAGE_SIZE - 1)) // 4
            m = min(len(values) - i, per - off)
            data = list(page.data.get("load") or (0,) * per)
            data[off:off + m] = values[i:i + m]
            page.data.set(tuple(data), "store")
            i += m

    def int_addr(self, base: int, i: int) -> int:
        """Address of int ``i`` of a buffer at ``base`` (``(int *)base + i``) in the model's page
        geometry: ``page_ints`` ints per page."""
        page, off = divmod(i, self.page_ints)
        return base + (page << PAGE_SHIFT) + off * 4

    def read_buf(self, base: int, n: int, start: int = 0) -> list:
        out = []
        i = start
        while i < start + n:
            page, off = divmod(i, self.page_ints)
            m = min(start + n - i, self.page_ints - off)
            out += self.read_ints(base + (page << PAGE_SHIFT) + off * 4, m)
            i += m
        return out

    def write_buf(self, base: int, values: list, start: int = 0) -> None:
        i = 0
        while i < len(values):
            page, off = divmod(start + i, self.page_ints)
            m = min(len(values) - i, self.page_ints - off)
            self.write_ints(base + (page << PAGE_SHIFT) + off * 4, values[i:i + m])
            i += m

    # --- files ----------------------------------------------------------------------------------
    def _install(self, f: File) -> int:
        fd = 3
        while fd in self.fds:
            fd += 1
        self.fds[fd] = f
        return fd

    def _file(self, fd: int) -> File:
        f = self.fds.get(fd)
        if f is None:
            raise err(errno.EBADF, f"fd {fd}")
        return f

    def open_dmirror(self, minor: int) -> int:
        return self._install(File("dmirror", self.k.dmirror_fops_open(minor, self.mm)))

    def open_tmpfile(self) -> int:
        return self._install(File("tmpfile", self.k.shmem_file_setup(0, "tmp")))

    def ftruncate(self, fd: int, size: int) -> int:
        f = self._file(fd).obj
        f.i_size.set(size, "i_size_write")
        return 0

    def pwrite_ints(self, fd: int, values: list, offset_ints: int = 0) -> int:
        return self.k.shmem_pwrite(self._file(fd).obj, values, offset_ints, self.page_ints)

    def pread_ints(self, fd: int, n: int, offset_ints: int = 0) -> list:
        return self.k.shmem_pread(self._file(fd).obj, n, offset_ints, self.page_ints)

    def close(self, fd: int) -> int:
        f = self._file(fd)
        del self.fds[fd]
        self._fput(f)
        return 0

    def _fput(self, f: File) -> None:
        """``fput()``: the last reference runs ``->release`` (an ioctl in flight holds one)."""
        f.f_count -= 1
        if f.f_count == 0:
            if f.kind == "dmirror":
                self.k.dmirror_fops_release(f.obj)
            # tmpfile: its pages go with the last mapping; not tracked

    def ioctl(self, fd: int, request: int, cmd: hmm_dmirror_cmd) -> hmm_dmirror_cmd:
        f = self.fds.get(fd)                # fdget(): the file stays alive during the call
        if f is None:
            raise err(errno.EBADF, f"ioctl on fd {fd}")
        if f.kind != "dmirror":
            raise err(errno.ENOTTY, "not a dmirror fd")
        f.f_count += 1
        try:
            return self.k.dmirror_fops_unlocked_ioctl(f.obj, request, cmd)
        finally:
            self._fput(f)

    def gup_test(self, cmd: int, addr: int, size: int, gup_flags: int) -> int:
        """``ioctl(/sys/kernel/debug/gup_test, cmd, &gup)``."""
        from ..linux.include.mm import FOLL_WRITE
        return self.k.gup_test_ioctl(self.mm, cmd, addr, size, FOLL_WRITE | gup_flags)

    # --- processes ------------------------------------------------------------------------------
    def fork(self) -> "Process":
        child = Process(self.k, self.k.dup_mm(self.mm), self.name + "-child")
        for fd, f in self.fds.items():
            f.f_count += 1
            child.fds[fd] = f
        return child

    def exit(self, signal: int | None = None) -> None:
        """``do_exit()``: close every fd (``exit_files``), then ``exit_mm`` (``mmput``)."""
        if not self.alive:
            return
        for fd in sorted(self.fds):
            self.close(fd)
        self.k.mmput(self.mm)
        self.alive = False
        self.exit_signal = signal


def hmm_dmirror_cmd_ioctl(proc: Process, fd: int, request: int, buffer, npages: int) -> int:
    """hmm-tests.c ``hmm_dmirror_cmd()``: returns 0 or -errno; on success copies cpages/faults
    into the buffer (on error the kernel does not copy the struct back)."""
    cmd = hmm_dmirror_cmd(buffer.ptr, buffer.mirror, npages)
    try:
        proc.ioctl(fd, request, cmd)
    except OSError as e:
        return -e.errno
    buffer.cpages = cmd.cpages
    buffer.faults = cmd.faults
    return 0
