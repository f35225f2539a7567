"""fsdax end to end: a file on a DAX mount of a pmem device, mapped shared, written through the
mapping, used as the buffer of O_DIRECT I/O on another file, and truncated -- the paths
ext4/xfs run (``linux/fs/daxfs.py``), on every kernel that has MEMORY_DEVICE_FS_DAX (v4.18+).

    zonedev check scenarios/fsdax.py --kernel all
    zonedev check scenarios/fsdax.py::f12_truncate_vs_odirect_unpin --kernel v5.18,v5.19
    zonedev check scenarios/fsdax.py::generic_413_odirect_from_dax_mapping --kernel v5.17 \\
        --patch scenarios/patches/remove_extra_refcount_2021.py      # F15: the 2021 proposal

The page-level forms of F5 and F12 are in ``scenarios/catalogue.py``; these are the same
questions asked through the file system (MMAPLOCK dropped while waiting, the unmap before the
busy scan, the GUP that takes the reference).

Not expressible here: F3 (raw-mode pmem, no struct pages, and the block layer's drain at unbind:
``docs/catalogue.md`` note 8).  F19's
2026 follow-up (``dax_to_folio`` before the guard faults on an altmap memmap)
needs a memmap that does not cover the zero page; the model's always does.
"""

import errno

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.fs.daxfs import regular_file
from zonedev.linux.include.mm import FOLL_LONGTERM, FOLL_WRITE
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE, OSErrorKernel

ODIRECT_FAILED = zonedev.finding_kind(
    "odirect_failed", "an O_DIRECT read or write returned an error to the user (the test would fail)")
TRUNCATE_INCOMPLETE = zonedev.finding_kind(
    "truncate_incomplete", "truncate returned with the block still in the file or not idle")
LONGTERM_PIN_ALLOWED = zonedev.finding_kind(
    "longterm_pin_allowed", "a FOLL_LONGTERM pin of an fsdax page succeeded or failed with another errno")


def _dax_file(k, nr_pages=1, pmem_pages=2, write=True):
    """A pmem device (fsdax pgmap), a DAX mount, a file of ``nr_pages`` allocated blocks mapped
    shared in a process, each page written once through the mapping (the DAX fault)."""
    pm = ExampleDriver(k, "fsdax", nr_pages=pmem_pages)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap)
    f = k.daxfs_create(sb, "f")
    k.daxfs_fallocate(f, nr_pages)
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, nr_pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    if write:
        for i in range(nr_pages):
            k.dax_user_write(mm, addr + i * 4096, 100 + i)
    return pm, sb, f, mm, addr


def _truncated(k, sb, f, page):
    """Final check: the file is empty, its block back in the allocator, the page idle."""
    def truncated():
        if f.i_size.peek() != 0 or page.pfn not in sb.free.peek():
            return f"{f.name}: size {f.i_size.peek()}, block {page.pfn:#x} not freed"
        if page._refcount.peek() != k.fact("fsdax_idle_refcount"):
            return f"page {page.pfn:#x}: refcount {page._refcount.peek()} after truncate and I/O completion"
        return None
    return zonedev.Check(truncated, TRUNCATE_INCOMPLETE, "truncated")


def _dio_vs_truncate(k, gup):
    pm, sb, f, mm, addr = _dax_file(k)
    page = k.memmap[f.i_blocks.peek()[0]]
    out = regular_file("out", 1)
    errors = []

    def odirect_write():
        """write(out, buf = the DAX mapping, O_DIRECT): GUP the buffer, DMA, release."""
        try:
            k.blkdev_direct_IO(mm, addr, 1, out, 0, read=False, gup=gup)
        except OSErrorKernel as e:
            errors.append(e.errno)

    def truncate():
        k.daxfs_truncate(f, 0)

    def dio_ok():
        # after the truncate the buffer page is beyond EOF: the DAX fault's SIGBUS is the
        # -EFAULT a real O_DIRECT returns then; anything else is a failure
        if errors and errors != [errno.EFAULT]:
            return f"O_DIRECT write failed: {errno.errorcode.get(errors[0], errors[0])}"
        return None

    return zonedev.Run({"odirect_write": odirect_write, "truncate": truncate},
                       finally_=[_truncated(k, sb, f, page), zonedev.Check(dio_ok, ODIRECT_FAILED, "dio_ok")])


@zonedev.scenario(expect={"v5.6..v5.17": "safe", "v5.18": ["fsdax_waiter_never_woken", "hang"], "v5.19..": "safe"},
                  refs=["F12", "d8ddc099c6b3", "f4f451a16dd1"])
def f12_truncate_vs_odirect_unpin(k):
    """An I/O that pins the buffer page (FOLL_PIN: O_DIRECT from a DAX mapping into a regular
    file from v6.5, a7e689dd1c06; any other pinning caller before) while the DAX file is
    truncated: truncate finds the page busy, sleeps with MMAPLOCK dropped, and the
    I/O completion's unpin must wake it.

    v5.18: the folio unpin (gup_put_folio) drops the pin with folio_put_refs and never sends the
    2->1 wake-up: truncate sleeps for good (F12; gup_put_folio came with d8ddc099c6b3, v5.18).
    Fixed by f4f451a16dd1 (v5.19).  Every other kernel with FOLL_PIN wakes it: v5.6-v5.17
    through the devmap-managed put, v6.15+ through the free path at 0."""
    return _dio_vs_truncate(k, "pin")


@zonedev.scenario(expect={"v4.18": "dax_mapping_lost", "v4.19..": "safe"}, refs=["5fac7408d828", "xfs_break_dax_layouts"])
def truncate_vs_odirect_put(k):
    """The same race with a FOLL_GET reference (block O_DIRECT before iov_iter_extract_pages,
    v6.5; vmsplice): put_page's devmap-managed path wakes the waiter at 1 (v4.18-v6.14), the
    free path at 0 (v6.15+).  Safe on every fsdax kernel but v4.18, whose devmap-managed put at 1
    also clears ->mapping of the page still in the file (dax_mapping_lost; fixed by 2fa147bdbf67,
    v4.19).  The wait itself is 5fac7408d828's (v4.18: xfs_break_dax_layouts sleeping until the
    page is idle)."""
    return _dio_vs_truncate(k, "get")


@zonedev.scenario(expect={"v4.18": ["dax_mapping_lost", "fsdax_waiter_never_woken", "hang"],
                          "v4.19..v5.2": ["fsdax_waiter_never_woken", "hang"], "v5.3..": "safe"},
                  refs=["F5", "c5d6c45e90c4"])
def f5_truncate_vs_odirect_release_pages(k):
    """The I/O completion releases the buffer pages in one release_pages() batch.  v4.18-v5.2:
    release_pages sends only DEVICE_PUBLIC pages to the devmap-managed put, so the fsdax page
    drops to 1 with no wake-up and truncate sleeps for good (F5).  Fixed by c5d6c45e90c4
    (v5.3)."""
    return _dio_vs_truncate(k, "release")


@zonedev.scenario(expect={"v4.18": ["dax_disassociate_busy_page", "dax_mapping_lost"],
                          "v4.19..v6.2": "dax_disassociate_busy_page", "v6.15..": "safe"},
                  refs=["C3", "38607c62b3"])
def odirect_after_munmap_vs_truncate(k):
    """An asynchronous O_DIRECT holds the DAX buffer page (GUP) while the process unmaps the
    buffer and another thread truncates the DAX file.  Does truncate wait for the I/O?

    v4.18-v6.14: no, when the file is no longer mapped anywhere: dax_layout_busy_page_range
    returns early on !mapping_mapped(), so the block is removed from the file while the device
    still writes to it (WARN_ON_ONCE(trunc && page_ref_count(page) > 1) in
    dax_disassociate_entry; the block can be reallocated under the DMA).  v6.15 dropped the
    early-out (kernel_2025_2026 C3): truncate waits for the I/O.  (INFERRED consequence of the
    early-out; no report of it is known.)"""
    pm, sb, f, mm, addr = _dax_file(k)
    page = k.memmap[f.i_blocks.peek()[0]]
    held = k.dio_get_user_pages(mm, addr, 1, False, "get")     # io_submit: the bio holds the page
    mm.mmap_lock.down_write()
    k.do_munmap(mm, addr, 4096)                                 # munmap(buf) while the I/O runs
    mm.mmap_lock.up_write()

    def io_completion():
        k.dio_put_user_pages(held, "get")

    def truncate():
        k.daxfs_truncate(f, 0)

    return zonedev.Run({"io_completion": io_completion, "truncate": truncate},
                       finally_=[_truncated(k, sb, f, page)])


@zonedev.scenario(expect={"v4.18": "dax_mapping_lost", "v4.19..": "safe"},
                  refs=["F15", "003_ede6d8706e8d37f1.txt", "2fa147bdbf67", "38607c62b3", "a7e689dd1c06"])
def generic_413_odirect_from_dax_mapping(k):
    """xfstests generic/413 (t_mmap_dio): a DAX file is mapped and written through the mapping,
    the mapping is the buffer of an O_DIRECT write to a regular file and of an O_DIRECT read back
    from it, then the DAX file is truncated.  Does the data arrive, without a warning?

    Yes on every released kernel: before v6.15 the page idles at 1 and GUP takes it to 2; from
    v6.15 the mapping holds a reference and GUP takes it from 1.  The I/O takes FOLL_GET
    references before v6.5 (a7e689dd1c06 made block O_DIRECT pin), so v5.18's unpin that misses
    the fsdax wake-up (F12) is not on this path: ``f12_truncate_vs_odirect_unpin`` has a pinning
    caller.  v4.18's put at 1 clears the page's ->mapping (fixed by 2fa147bdbf67, v4.19),
    reported at the put even with nobody waiting.  On the 2021 proposal (``--patch
    scenarios/patches/remove_extra_refcount_2021.py`` on v5.17) the mapped page sits at 0, GUP
    refuses it with WARN_ON_ONCE(page_ref_count(page) <= 0) and the I/O fails (F15)."""
    pm, sb, f, mm, addr = _dax_file(k, nr_pages=1)
    page = k.memmap[f.i_blocks.peek()[0]]
    out = regular_file("out", 1)
    errors = []
    seen = []

    def t_mmap_dio():
        try:
            k.blkdev_direct_IO(mm, addr, 1, out, 0, read=False)        # write(out, buf, O_DIRECT)
            k.dax_user_write(mm, addr, 0)                               # scribble over the buffer
            k.blkdev_direct_IO(mm, addr, 1, out, 0, read=True)         # read(out, buf, O_DIRECT)
            seen.append(k.dax_user_read(mm, addr))
        except OSErrorKernel as e:
            errors.append(e.errno)
        k.daxfs_truncate(f, 0)

    def data_intact():
        if errors:
            return f"O_DIRECT failed: {errno.errorcode.get(errors[0], errors[0])}"
        if seen != [100]:
            return f"read back {seen}, wrote 100"
        return None

    return zonedev.Run({"t_mmap_dio": t_mmap_dio},
                       finally_=[zonedev.Check(data_intact, ODIRECT_FAILED, "data_intact"),
                                 _truncated(k, sb, f, page)])


@zonedev.scenario(expect={"v4.18..": "safe"}, refs=["002_bcb6ade84e983da5.txt", "7af75561e171", "38607c62b3"])
def longterm_pin_fsdax_end_to_end(k):
    """The 002 question, end to end: a FOLL_LONGTERM pin of a mapped fsdax page through fast GUP
    (``pin_user_pages_fast``; before v5.2 there was no long-term fast GUP and the slow
    ``get_user_pages_longterm`` path is what such a caller had) must fail with -EOPNOTSUPP and
    leave no reference, while truncate runs.  Safe on every fsdax kernel (v4.18+).

    v5.2-v6.14: gup-fast bails on the devmap PTE (7af75561e171), the slow path's VMA check
    refuses.  v6.15+ (38607c62b3): the PTE is a normal one; gup-fast grabs, sees the folio is not long-term
    pinnable, drops it, and the slow path refuses the same way."""
    pm, sb, f, mm, addr = _dax_file(k)
    page = k.memmap[f.i_blocks.peek()[0]]
    got = []

    def rdma_reg_mr():
        try:
            pages = k.pin_user_pages_fast(mm, addr, 1, FOLL_LONGTERM | FOLL_WRITE)
            got.append(("pinned", len(pages)))
            for p in pages:
                k.unpin_user_page(p)
        except OSErrorKernel as e:
            got.append(("errno", e.errno))

    def truncate():
        k.daxfs_truncate(f, 0)

    def refused():
        if got != [("errno", errno.EOPNOTSUPP)]:
            return f"FOLL_LONGTERM on fsdax: {got}, expected -EOPNOTSUPP"
        return None

    return zonedev.Run({"rdma_reg_mr": rdma_reg_mr, "truncate": truncate},
                       finally_=[zonedev.Check(refused, LONGTERM_PIN_ALLOWED, "refused"), _truncated(k, sb, f, page)])


@zonedev.scenario(expect={"v4.18..": "safe"}, refs=["F19", "98c183a4fccf"])
def f19_holes_mapped_to_zero_page(k):
    """Two holes of a DAX file are read through a shared mapping (each maps the zero page and
    stores a zero-page entry), one is then written (the zero entry becomes a block), and the
    file is truncated.  Do the zero-page entries touch the zero page's struct page?

    Not on a released kernel.  v6.15's 38607c62b3 alone associated the shared zero page with the
    file (``folio = dax_to_folio(entry)`` with no zero-entry guard): the second hole hits
    WARN_ON_ONCE(folio->mapping).  98c183a4fccf (same merge) returns early for zero and empty
    entries; ``--without 98c183a4fccf`` on v6.15 shows the bug."""
    pm = ExampleDriver(k, "fsdax", nr_pages=2)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap)
    f = k.daxfs_create(sb, "sparse")
    k.daxfs_extend(f, 2)                                 # ftruncate up: two holes
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    zero = k.zero_page()
    seen = []

    def reader():
        seen.append(k.dax_user_read(mm, addr))
        seen.append(k.dax_user_read(mm, addr + 4096))
        k.dax_user_write(mm, addr, 5)
        k.daxfs_truncate(f, 0)

    def zero_page_untouched():
        if zero.mapping.peek() is not None:
            return f"the zero page's ->mapping is {zero.mapping.peek()!r}"
        return None

    return zonedev.Run({"reader": reader}, finally_=[zonedev.Check(zero_page_untouched, "final", "zero_page_untouched")])


def _mmap(k, mm, f, nr_pages, pgoff=0):
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, nr_pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, pgoff)
    mm.mmap_lock.up_write()
    return addr


@zonedev.scenario(expect={"v4.18..": "safe"}, refs=["F18", "98b1917cdef9", "4996fc547f5b", "38607c62b3"])
def f18_large_fsdax_folio_reuse(k):
    """A 2-block extent of a DAX file is mapped with one PMD fault (the model's PMD is order 1),
    unmapped, and the file truncated; another file gets the two blocks and two processes each
    map one of them with a PTE fault.  Does each block come back as a clean small folio?

    Not on v6.15-rc1/rc2: the PMD fault made an order-1 fsdax folio (``dax_folio_init``), the
    truncate split it (``dax_folio_put``) without clearing page[1]'s ``_nr_pages``, which shares
    its word with ``memcg_data`` since 4996fc547f5b; the PTE fault of the former tail then looks
    up that "memcg" in ``__lruvec_stat_mod_folio`` and oopses.  98b1917cdef9 (v6.15-rc3) resets
    the order first, so no release has F18: ``--without 98b1917cdef9`` on v6.15 shows it.
    Before v6.15 a DAX PMD is a devmap entry and no folio is made."""
    pm = ExampleDriver(k, "fsdax", nr_pages=2)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap, pmd_order=1)
    f = k.daxfs_create(sb, "f")
    k.daxfs_fallocate(f, 2)                              # one aligned 2-block extent
    mm = k.mm_alloc()
    addr = _mmap(k, mm, f, 2)
    k.dax_user_write(mm, addr, 1)                        # PMD fault: the whole extent
    mm.mmap_lock.down_write()
    k.do_munmap(mm, addr, 2 * 4096)
    mm.mmap_lock.up_write()
    k.daxfs_truncate(f, 0)                               # the last association goes
    g = k.daxfs_create(sb, "g")
    k.daxfs_fallocate(g, 2)                              # the same two blocks
    procs = []
    for i in range(2):                                   # one-page VMAs: PTE faults only
        m = k.mm_alloc()
        procs.append((m, _mmap(k, m, g, 1, pgoff=i)))
    seen = {}

    def writer(i):
        def thread():
            m, a = procs[i]
            k.dax_user_write(m, a, 10 + i)
            seen[i] = k.dax_user_read(m, a)
        return thread

    def data_intact():
        if seen != {0: 10, 1: 11}:
            return f"read back {seen}"
        return None

    return zonedev.Run({"map_block0": writer(0), "map_block1": writer(1)},
                       finally_=[zonedev.Check(data_intact, "final", "data_intact")], opaque=[pm])
