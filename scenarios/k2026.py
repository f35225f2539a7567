"""The kernels people run today (v6.15 -> v7.x): the bug classes of 2025-26
(kernel_2025_2026.md §3), each a question with its answer per kernel.

``f17_large_folio_reuse`` -- F17, d245f9b4ab80 (v6.19) / 12b2285bf3d1 (its fix, in v6.19 too).
A driver allocated an order-1 device-private folio, it was freed, and two allocations now take
its two pages as order-0 pages.  Before the fix ``zone_device_page_init`` took each page as it
found it: the former tail still points at the old head (``compound_head`` shares a word with
``pgmap``), the former head still says order 1.  Locking, counting and freeing the tail land on
the head; freeing the head drops two pgmap references for one.  The fix reinitialises every page
at allocation.  The fix landed before the v6.19 release, so no released kernel shows F17: the
matrix says ``safe``; ``--without 12b2285bf3d1`` shows the -rc behaviour.

    zonedev check scenarios/k2026.py::f17_large_folio_reuse --kernel v6.19 --without 12b2285bf3d1

``f20_hmm_range_fault_livelock`` -- F20, 1afaeb8293c9 (v6.15) / b570f37a2ce4 (v7.0).  A device
(``hmm_range_fault`` for dmirror device 1) faults a page that lives on device 0 while a CPU fault on
another CPU holds the page lock and waits in ``lru_add_drain_all()`` for a work item queued on the
faulting device thread's CPU.  From v6.15 the fault's ``trylock_page`` fails, ``do_swap_page``
returns, and ``hmm_range_fault`` walks again at once: the CPU never sleeps, the work item never
runs, the lock is never released.  From v7.0 the fault sleeps on the page lock
(``softleaf_entry_wait_on_locked``), the CPU runs the work item, and everything completes.

The CPU is modelled here, in the scenario, until the checker has one (issue 10): ``cpu1_idle`` is
true only while the hmm thread sleeps (in ``softleaf_entry_wait_on_locked``); the kworker of CPU 1
runs the drain work only then.  The livelock is reported as ``livelock`` once ``hmm_range_fault``'s
walk-again loop is a fair ``RetryLoop`` (issue 10, worktree trust): the spinner then waits for a
change that cannot come while the other threads are blocked.  Until that lands the loop spins and
every such execution is cut at the step limit: the search reports nothing (``safe``), with a note.
"""

from __future__ import annotations

import inspect

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.mm.memory import SegmentationFault
from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_READ, hmm_dmirror_cmd
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE, find_vma
from zonedev.selftests.uapi import Process
from zonedev.sync import READ, Completion, Var


# --- F17 -------------------------------------------------------------------------------------------

def _folio_init(k, page, pgmap, order):
    """``zone_device_folio_init`` with the arguments of this kernel: ``(folio, order)`` from
    d245f9b4ab80, ``(folio, pgmap, order)`` from 12b2285bf3d1."""
    if "pgmap" in inspect.signature(type(k).zone_device_folio_init).parameters:
        k.zone_device_folio_init(page, pgmap, order)
    else:
        k.zone_device_folio_init(page, order)


@zonedev.scenario(expect={"v6.19..": "safe"},
                  refs=["F17", "d245f9b4ab80", "12b2285bf3d1"])
def f17_large_folio_reuse(k):
    """Two order-0 allocations reuse the pages of a freed order-1 device-private folio: does
    each get a page of its own (refcount, lock, pgmap references)?  Not before 12b2285bf3d1 (the
    6.19-rc kernels, after d245f9b4ab80 brought large device-private folios): the old tail still
    belongs to the old head.  The fix landed before the v6.19 release, so every released kernel
    from v6.19 is safe; ``--without 12b2285bf3d1`` on v6.19 shows the bug."""
    drv = ExampleDriver(k, "private", nr_pages=2)
    drv.probe()
    pgmap = drv.pgmap
    head, tail = pgmap.pages[0], pgmap.pages[1]
    _folio_init(k, head, pgmap, 1)            # nouveau/dmirror: an order-1 (THP-like) folio
    k.unlock_page(head)
    k.put_page(head)                          # freed whole: folio_free, percpu_ref_put_many(2)

    def alloc(page):
        def thread():
            _folio_init(k, page, pgmap, 0)
            k.unlock_page(page)
            k.put_page(page)                  # the user is done with it
        return thread

    return zonedev.Run({"alloc_head": alloc(head), "alloc_tail": alloc(tail)},
                       finally_=[zonedev.expect_refs(head._refcount, 0, "former head page"),
                                 zonedev.expect_refs(tail._refcount, 0, "former tail page"),
                                 zonedev.expect_refs(pgmap.ref, 1, "pgmap reference (the base one)")],
                       opaque=[drv])


# --- F20 -------------------------------------------------------------------------------------------


def _remote_device_page(k):
    """A page of anonymous memory migrated to dmirror device 0; a mirror of device 1 (another
    owner: its hmm_range_fault must fault the page back)."""
    k.page_ints = 2
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd0 = proc.open_dmirror(0)
    fd1 = proc.open_dmirror(1)
    addr = proc.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, [7, 8])
    cmd = proc.ioctl(fd0, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0, 0], 1))
    assert cmd.cpages == 1
    return proc, fd1, addr, proc.mm.peek_pte(addr).page


@zonedev.scenario(expect={"v6.15..v6.19": "livelock", "v7.0..": "safe"},
                  refs=["F20", "1afaeb8293c9", "b570f37a2ce4"], bound={"executions": 200})
def f20_hmm_range_fault_livelock(k):
    """A device faults (hmm_range_fault) a device-private page whose lock is held by a CPU
    fault waiting in lru_add_drain_all() for work queued on the device thread's CPU: does the
    fault ever complete?  Not from v6.15 (busy retry after the failed trylock: livelock) until
    v7.0 (b570f37a2ce4: sleep on the page lock).  hmm_range_fault's walk-again loop waits
    fairly (a ``RetryLoop``: the retrying thread runs again only once something it read has
    changed), so the busy retry with nothing changing is a ``livelock`` finding, not a spin cut
    at the step limit."""
    proc, fd1, addr, page = _remote_device_page(k)
    cpu1_idle = Var(False, "cpu1 idle (the hmm thread sleeps)")
    # None: the CPU fault has not decided yet; "queued": lru_add_drain_all() queued its work on
    # cpu1; "none": the fault found nothing to do (then the kworker has nothing to run)
    work_queued = Var(None, "lru_add_drain work queued on cpu1")
    drained = Completion("lru_add_drain_all")
    out = {}

    if k.has("softleaf_entry_wait_on_locked"):
        sleep = k.softleaf_entry_wait_on_locked

        def softleaf_entry_wait_on_locked(pg, ptl):
            # the task sleeps: its CPU is free to run the kworker
            cpu1_idle.set(True, "schedule")
            sleep(pg, ptl)
            cpu1_idle.set(False, "woken")
        k.softleaf_entry_wait_on_locked = softleaf_entry_wait_on_locked

    def hmm_fault_cpu1():
        cmd = hmm_dmirror_cmd(addr, [0, 0], 1)
        try:
            proc.ioctl(fd1, HMM_DMIRROR_READ, cmd)
            out["read"] = list(cmd.ptr)
        except OSError as e:
            out["read"] = -e.errno
        cpu1_idle.set(True, "do_exit: cpu1 idle")

    def cpu_fault_cpu0():
        # do_swap_page: the PTE still holds the device entry, the trylock is won; then
        # migrate_to_ram's migrate_vma_* drain the per-CPU LRU caches (lru_add_drain_all)
        pt = proc.mm.pgtable(addr)
        pt.ptl.lock("pte_offset_map_lock")
        pte = pt.pte(addr).get("pte_same")
        if pte is None or pte.kind != PTE_DEVICE_PRIVATE or not k.trylock_page(page, "do_swap_page"):
            pt.ptl.unlock("pte_unmap_unlock")
            work_queued.set("none", "no migration")
            return
        pt.ptl.unlock("pte_unmap_unlock")
        work_queued.set("queued", "queue_work_on(cpu1, lru_add_drain_per_cpu)")
        drained.wait_for_completion("flush_work")
        k.unlock_page(page, "do_swap_page")

    def kworker_cpu1():
        w = work_queued.world
        # the work item runs once it is queued *and* cpu1 is not busy with the spinning fault
        w.point(work_queued, READ, "worker_thread: run lru_add_drain_per_cpu",
                lambda: work_queued.value == "none" or (work_queued.value == "queued" and cpu1_idle.value),
                (cpu1_idle,))
        if work_queued.value == "queued":
            drained.complete("lru_add_drain_per_cpu")

    def read_done():
        return None if out.get("read") == [7, 8] else f"HMM_DMIRROR_READ returned {out.get('read')!r}"

    return zonedev.Run({"hmm_fault_cpu1": hmm_fault_cpu1, "cpu_fault_cpu0": cpu_fault_cpu0,
                        "kworker_cpu1": kworker_cpu1},
                       finally_=[zonedev.Check(read_done, "assert", "device read completes with the data")])


def _user_fault(k, proc, addr, signals):
    try:
        k.do_user_addr_fault(proc.mm, addr, False)
    except SegmentationFault as e:            # the process would get SIGBUS
        signals.append(str(e))


# --- F26: DRM GPU SVM (drm_pagemap / drm_gpusvm, v6.15+) ---------------------------------------------

def _svm_buffer(k, npages=2, fixes=None):
    """An Xe-like driver (4 VRAM pages) and a process whose ``npages`` anonymous pages (holding
    1, 2, ...) were migrated into one devmem allocation by ``drm_pagemap_migrate_to_devmem``."""
    from zonedev.linux.drivers.gpu.drm.drm_pagemap import DRM_PAGEMAP_FIXES, DrmPagemapDriver, \
        drm_pagemap_migrate_to_devmem
    k.page_ints = 1
    drv = DrmPagemapDriver(k, 4, fixes=DRM_PAGEMAP_FIXES if fixes is None else fixes)
    drv.probe()
    proc = Process(k)
    addr = proc.mmap(npages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, list(range(1, npages + 1)))
    devmem = drv.devmem_alloc(proc.mm, npages)
    proc.mm.mmap_lock.down_read("mmap_read_lock")
    err = drm_pagemap_migrate_to_devmem(k, devmem, proc.mm, addr, addr + npages * 4096)
    proc.mm.mmap_lock.up_read("mmap_read_unlock")
    assert err == 0, err
    return drv, proc, addr, devmem


def _lifetimes(drv, devmem):
    """What a driver author needs at the end: each device page still in use holds exactly one
    zdd reference and nothing else does (an extra put is ``kref_underflow`` at the time); the
    allocation is freed exactly once, and only when no page uses it any more (eviction is best
    effort: it may give up with -EBUSY while a fault holds a page)."""
    def check():
        k = drv.k
        in_use = [k.pfn_to_page(p) for p in devmem.pfns if k.pfn_to_page(p)._refcount.peek() > 0]
        if drv.zdd_refs() != len(in_use):
            return f"{drv.zdd_refs()} zdd references held at the end for {len(in_use)} device pages in use"
        freed = drv.released.count(devmem.name)
        if in_use and freed:
            return f"{devmem.name} freed with {len(in_use)} device pages still in use"
        if not in_use and (freed != 1 or devmem.bo_ref.peek() != 0):
            return f"{devmem.name} freed {freed} times, {devmem.bo_ref.peek()} BO references left"
        return None
    return zonedev.Check(check, "leak", "zdd and devmem lifetimes")


def _data(proc, addr, npages):
    def check():
        want = list(range(1, npages + 1))
        got = []
        for i in range(npages):
            pte = proc.mm.peek_pte(addr + i * 4096)
            if pte is None:
                return f"page {i} unmapped"
            got.append(pte.page.data.peek()[0] if pte.page.data.peek() else None)
        return None if got == want else f"data {got} != {want}"
    return zonedev.Check(check, "data", "the process's data survives")


@zonedev.scenario(expect={"v6.15..": "safe"}, refs=["F26", "drm_pagemap"], bound={"executions": 1000})
def drm_fault_vs_evict(k):
    """A CPU fault on a page of a devmem allocation (migrate_to_ram) races the driver evicting
    the same allocation (drm_pagemap_evict_to_ram): are the zdd and the allocation released
    exactly once, no device page left pointing at a freed zdd, and the data intact?  Yes on every
    kernel with DRM GPU SVM (v6.15..newest), within a 1000-execution bound (not exhaustive)."""
    from zonedev.linux.drivers.gpu.drm.drm_pagemap import drm_pagemap_evict_to_ram
    drv, proc, addr, devmem = _svm_buffer(k)
    drv.devmem_get(devmem)                    # TTM's reference on the BO it is evicting
    out = {}

    def cpu_fault():
        _user_fault(k, proc, addr, [])

    def evict():
        out["evict"] = drm_pagemap_evict_to_ram(k, devmem)
        drv.devmem_put(devmem)

    return zonedev.Run({"cpu_fault": cpu_fault, "evict": evict},
                       finally_=[_lifetimes(drv, devmem), _data(proc, addr, 2)], opaque=[drv])


def _use_after_put(k, fixed):
    from zonedev.linux.drivers.gpu.drm.drm_pagemap import FIX_DMA_UNMAP_FIRST, FIX_USE_AFTER_PUT
    drv, proc, addr, devmem = _svm_buffer(k, fixes=(FIX_DMA_UNMAP_FIRST,) + ((FIX_USE_AFTER_PUT,) if fixed else ()))
    drv.fail_folio_alloc_after = 1            # the second system page cannot be allocated

    def cpu_fault():
        signals = []
        _user_fault(k, proc, addr, signals)   # SIGBUS: the migration failed (-ENOMEM)

    return zonedev.Run({"cpu_fault": cpu_fault}, opaque=[drv])


@zonedev.scenario(expect={"v6.15..": "use_after_free"}, refs=["F26", "df72e55e754c"])
def f26_use_after_put(k):
    """drm_pagemap before df72e55e754c: a CPU fault migrates a 2-page allocation to RAM and the
    second system page cannot be allocated.  Does the error path touch the first page after
    putting it?  Yes: it reads folio_order() of the folio it just freed.  The bug is the
    driver's, so it shows on every kernel with DRM GPU SVM (v6.15..newest); the fixed driver
    (``f26_use_after_put_fixed``) is safe on all of them."""
    return _use_after_put(k, fixed=False)


@zonedev.scenario(expect={"v6.15..": "safe"}, refs=["F26", "df72e55e754c"])
def f26_use_after_put_fixed(k):
    """The same with df72e55e754c "drm/pagemap: Fix folio allocation fallback and use-after-put":
    the order is read before the put."""
    return _use_after_put(k, fixed=True)


def _dma_unmap(k, fixed):
    from zonedev.linux.drivers.gpu.drm.drm_pagemap import FIX_DMA_UNMAP_FIRST, FIX_USE_AFTER_PUT, \
        drm_pagemap_evict_to_ram
    drv, proc, addr, devmem = _svm_buffer(k, fixes=(FIX_USE_AFTER_PUT,) + ((FIX_DMA_UNMAP_FIRST,) if fixed else ()))
    drv.fail_copy_to_ram = True               # the copy engine fails during eviction
    drv.devmem_get(devmem)                    # TTM's reference on the BO it is evicting

    def evict():
        drm_pagemap_evict_to_ram(k, devmem)
        drv.devmem_put(devmem)

    return zonedev.Run({"evict": evict}, opaque=[drv])


@zonedev.scenario(expect={"v6.15..": "use_after_free"}, refs=["F26", "9e6372ec2a39"])
def f26_dma_unmap_after_put(k):
    """drm_pagemap before 9e6372ec2a39: eviction's copy to RAM fails.  Are the system pages
    still DMA-mapped when the error path frees them?  Yes: put first, dma-unmap after -- on every
    kernel with DRM GPU SVM (v6.15..newest); ``f26_dma_unmap_after_put_fixed`` is safe there."""
    return _dma_unmap(k, fixed=False)


@zonedev.scenario(expect={"v6.15..": "safe"}, refs=["F26", "9e6372ec2a39"])
def f26_dma_unmap_after_put_fixed(k):
    """The same with 9e6372ec2a39 "drm/pagemap: dma-unmap pages before handling migration
    errors"."""
    return _dma_unmap(k, fixed=True)


def _mm_leak(k, fixed):
    from zonedev.linux.drivers.gpu.drm.drm_gpusvm import DrmGpuSvm, FIX_MM_LEAK, drm_gpusvm_range_evict
    drv, proc, addr, devmem = _svm_buffer(k)
    svm = DrmGpuSvm(k, proc.mm, addr, addr + 2 * 4096, fixes=(FIX_MM_LEAK,) if fixed else ())
    svm.init()
    svm.fail_kvmalloc = True
    users = proc.mm.mm_users.peek()

    def evict():
        drm_gpusvm_range_evict(k, svm, addr, addr + 2 * 4096)

    return zonedev.Run({"evict": evict}, finally_=[zonedev.expect_refs(proc.mm.mm_users, users, "mm->mm_users")],
                       opaque=[drv])


@zonedev.scenario(expect={"v6.15..": "leak"}, refs=["F26", "847b371debf3", "99624bdff867"])
def f26_mm_reference_leak(k):
    """drm_gpusvm before "Fix MM reference leak in drm_gpusvm_range_evict": the pfn array
    cannot be allocated.  Is the mm reference taken by mmget_not_zero() dropped?  No: a leak on
    every kernel with DRM GPU SVM (v6.15..newest); ``f26_mm_reference_leak_fixed`` is safe."""
    return _mm_leak(k, fixed=False)


@zonedev.scenario(expect={"v6.15..": "safe"}, refs=["F26", "847b371debf3", "99624bdff867"])
def f26_mm_reference_leak_fixed(k):
    """The same with the fix (mmput on the kvmalloc_array() failure path)."""
    return _mm_leak(k, fixed=True)


# --- F22, F23: the THP insertion of migrate_vma_pages (a30b48bf1b24, v6.19) -----------------------------

def _thp_insert_setup(k):
    """A process with a 2-page anonymous VMA (the model's PMD: HPAGE_PMD_NR = 2 here) and an
    order-1 device-private folio for it, as ``migrate_vma_pages`` hands a compound destination to
    ``migrate_vma_insert_huge_pmd_page`` for a hole."""
    from zonedev.linux.mm.migrate_device import MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, migrate_vma
    drv = ExampleDriver(k, "private", nr_pages=2)
    drv.probe()
    folio = drv.pgmap.pages[0]
    _folio_init(k, folio, drv.pgmap, 1)
    proc = Process(k)
    addr = proc.mmap(2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    vma = find_vma(proc.mm, addr)
    migrate = migrate_vma(vma=vma, start=addr, end=addr + 2 * 4096, pgmap_owner=drv)
    src = [MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE]
    return drv, proc, addr, migrate, folio, src


@zonedev.scenario(expect={"v6.19..v7.0": "hang", "v7.1..": "safe"}, refs=["F22", "a30b48bf1b24", "63451de16e0a"])
def f22_pmd_lock_leak(k):
    """The OOM reaper marked the mm unstable while a device-private THP is being inserted: does
    migrate_vma_insert_huge_pmd_page() release the PMD lock when check_stable_address_space()
    fails?  Not until 63451de16e0a: the exit path's next pmd_lock() of that mm waits for ever.
    A hang on v6.19 and v7.0 (a30b48bf1b24 brought the THP insertion), safe from v7.1."""
    drv, proc, addr, migrate, folio, src = _thp_insert_setup(k)
    pmd = k.pmd_entry(proc.mm, addr)
    k.mm_set_unstable(proc.mm)                # the OOM reaper
    inserted = Completion("migrate_vma_pages done")

    def migrate_thp():
        k.migrate_vma_insert_huge_pmd_page(migrate, addr, folio, src, pmd)
        inserted.complete()

    def exit_zap():
        inserted.wait_for_completion()        # exit_mmap -> zap_huge_pmd: pmd_lock
        ptl = k.pmd_lock(proc.mm, pmd)
        ptl.unlock("spin_unlock")

    return zonedev.Run({"migrate_thp": migrate_thp, "exit_zap": exit_zap}, opaque=[drv])


@zonedev.scenario(expect={"v6.19..v7.0": "leak", "v7.1..": "safe"}, refs=["F23", "a30b48bf1b24", "2c6f81d58741"])
def f23_pgtable_leak(k):
    """The PMD was populated meanwhile (a racing fault mapped it), so the THP insertion backs
    off: is the page-table page it preallocated freed?  Not until 2c6f81d58741: a leak on v6.19
    and v7.0 (from a30b48bf1b24), safe from v7.1."""
    from zonedev.linux.mm.migrate_device import MIGRATE_PFN_MIGRATE
    drv, proc, addr, migrate, folio, src = _thp_insert_setup(k)
    pmd = k.pmd_entry(proc.mm, addr)
    pmd.set(("huge", 0), "set_pmd_at (a racing fault)")

    def migrate_thp():
        k.migrate_vma_insert_huge_pmd_page(migrate, addr, folio, src, pmd)

    def backed_off():
        return None if not src[0] & MIGRATE_PFN_MIGRATE else "the insertion did not back off"

    return zonedev.Run({"migrate_thp": migrate_thp},
                       finally_=[zonedev.Check(lambda: (f"{k.pgtables_in_flight(proc.mm)} page-table page(s) "
                                                        "neither deposited nor freed")
                                               if k.pgtables_in_flight(proc.mm) else None, "leak", "pgtable freed"),
                                 zonedev.Check(backed_off, "assert", "src MIGRATE cleared")],
                       opaque=[drv])


# --- F24, F25: device-private THP PMD operations ------------------------------------------------------

def _device_thp(k):
    """A process whose 2-page THP (the model's PMD: HPAGE_PMD_ORDER 1 here) was migrated to dmirror
    device 0: a device-private PMD from v6.19 (before, the THP is split and migrated as base
    pages)."""
    from zonedev.linux.mm.huge_memory import MADV_HUGEPAGE
    k.page_ints = 2
    k.thp_pmd_order = 1
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd = proc.open_dmirror(0)
    size = proc.read_pmd_pagesize()
    ptr = proc.mmap(2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    addr = (ptr + size - 1) & ~(size - 1)
    assert proc.madvise(addr, size, MADV_HUGEPAGE) == 0
    proc.write_buf(addr, [1, 2, 3, 4])
    cmd = proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0] * 4, 2))
    assert cmd.cpages == 2
    return proc, addr, size


UFFD_WP_LOST = zonedev.finding_kind(
    "uffd_wp_lost", "a userfaultfd write-protect marker vanished from a page-table entry (F24): the "
                    "write-protect trap is bypassed")


@zonedev.scenario(expect={"v6.15..": "safe"}, refs=["F24", "368076f52ebe"])
def f24_uffd_wp_lost_on_mprotect(k):
    """A device-private THP is registered for userfaultfd write-protect and write-protected
    (UFFDIO_WRITEPROTECT), then mprotect(PROT_READ) runs over it: does every entry keep its
    uffd-wp marker?  368076f52ebe's change_non_present_huge_pmd() drops the marker when it makes a
    *writable* device-private PMD readable (fixed by the 2026 posting,
    scenarios/patches/f24_carry_uffd_wp.py) -- but every path the model has that sets the marker
    (UFFDIO_WRITEPROTECT, the migration restore) write-protects the entry first, so mprotect never
    meets a writable marked PMD: safe on every kernel.  tests/test_thp.py plants that state and
    shows the dropped marker and the fix."""
    proc, addr, size = _device_thp(k)
    assert k.userfaultfd_register_wp(proc.mm, addr, size) == 0
    assert k.mwriteprotect_range(proc.mm, addr, size) == 0

    def mprotect_cpu0():
        proc.mprotect(addr, size, PROT_READ)

    def marker_kept():
        lost = [hex(addr + i * 4096) for i in range(size // 4096)
                if not (proc.mm.peek_pte(addr + i * 4096) or None) or not proc.mm.peek_pte(addr + i * 4096).uffd_wp]
        return f"uffd-wp marker gone at {', '.join(lost)}" if lost else None

    return zonedev.Run({"mprotect_cpu0": mprotect_cpu0},
                       finally_=[zonedev.Check(marker_kept, UFFD_WP_LOST, "uffd-wp marker kept")])


@zonedev.scenario(expect={"v6.19..v7.0": "pmd_not_present_bug", "v7.1..": "safe"},
                  refs=["F25", "a30b48bf1b24", "bbcbf045d6c7"])
def f25_munmap_vs_pmd_migration_entry(k):
    """powerpc book3s64 (``uname -m`` ppc64le): CPU A unmaps a device-private THP for migration
    (eviction: try_to_migrate sets a PMD migration entry under the PMD lock, drops it for the copy,
    then restores the mapping); CPU B munmap()s the range meanwhile -- zap_huge_pmd takes the
    non-present PMD: does pmdp_huge_get_and_clear_full() cope?  Not until bbcbf045d6c7 (v7.1):
    VM_BUG_ON(!pmd_present(*pmdp)) -- for the migration entry and, as the fix's message says, for a
    device-private PMD itself.  Before v6.19 no device-private PMD exists."""
    proc, addr, size = _device_thp(k)
    k.uname_m = "ppc64le"
    folio = proc.mm.peek_pte(addr).page
    k.get_page(folio)                           # migrate_device_range found it: get_page_unless_zero

    def migrate_cpu0():
        k.lock_page(folio)
        k.try_to_migrate(folio)                 # set_pmd_migration_entry; ptl dropped for the copy
        k.remove_migration_ptes(folio, folio)   # the copy failed / was not needed: restore
        k.unlock_page(folio)
        k.put_page(folio)

    def munmap_cpu1():
        proc.munmap(addr, size)

    return zonedev.Run({"migrate_cpu0": migrate_cpu0, "munmap_cpu1": munmap_cpu1})
