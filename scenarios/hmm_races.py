"""Races on the HMM paths, on the dmirror model (lib/test_hmm.c) and the mm model.

``fault_vs_migrate`` -- failure F9, CVE-2022-3523, fixed by 16ce101db85d (v6.1):
a CPU fault on a device-private page runs concurrently with ``migrate_vma_*`` moving the same
page back to system memory (a second CPU thread faulting the same address: its
``migrate_to_ram`` runs ``migrate_vma_setup``/``pages``/``finalize``; or, v6.0+, the dmirror
MIGRATE_TO_SYS ioctl with ``-p migrator=to_sys``).  Before the fix ``do_swap_page`` calls
``migrate_to_ram`` holding no reference: the other side can free the page first, and
``dmirror_devmem_fault`` then reads ``zone_device_data`` of a free page (a free-list link, not
its backing page) -- reported as ``use_after_free``.  From v6.1 the fault holds a reference
taken under the PTL, the migration sees the extra reference and backs off.

    zonedev check scenarios/hmm_races.py::fault_vs_migrate --kernel v6.0   # FOUND use_after_free
    zonedev check scenarios/hmm_races.py::fault_vs_migrate --kernel v6.1   # ok

``anon_teardown`` -- hmm-tests' ``anon_teardown`` as a real race: munmap of the second half of a
buffer while the device READs it through ``hmm_range_fault`` (mirror mutex, notifier sequence,
retry).  READ either succeeds with the data or fails with -EFAULT; never stale data, a hang or
a violation.

``release_vs_fault`` -- HMM_DMIRROR_RELEASE (eviction with ``migrate_device_range`` then
``memunmap_pages``) while the CPU faults the same device page, then the process exits (v6.1+).
Eviction is best effort: it skips a page it cannot trylock (the fault's migration holds it), and
its reference makes that migration back off, so the page can stay on the device and
``memunmap_pages`` waits -- until the process touches the page again or exits.  Without the exit
thread the checker reports that wait as a hang (F10's shape, transient here).
"""

import errno

import zonedev
from zonedev.linux.mm.memory import SegmentationFault
from zonedev.linux.lib.test_hmm import (HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_READ,
                                        HMM_DMIRROR_RELEASE, hmm_dmirror_cmd)
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE, PTE_PRESENT
from zonedev.selftests.uapi import Process

PAGE_INTS = 2


def _device_private_buffer(k, npages=1, chunk_pages=8):
    """Load dmirror, map ``npages`` of anonymous memory holding 0, 1, 2, ... and migrate them
    to device 0 (private)."""
    k.page_ints = PAGE_INTS
    mod = k.hmm_dmirror_init(chunk_pages, True)
    proc = Process(k)
    fd = proc.open_dmirror(0)
    addr = proc.mmap(npages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    data = list(range(npages * PAGE_INTS))
    proc.write_buf(addr, data)
    cmd = proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0] * len(data), npages))
    assert cmd.cpages == npages
    return mod, proc, fd, addr, data


def _data_intact(k, proc, addr, data):
    """At the end each page is either still on the device or back in RAM, with its data."""
    def check():
        for i in range(len(data) // PAGE_INTS):
            pte = proc.mm.peek_pte(addr + i * 4096)
            want = tuple(data[i * PAGE_INTS:(i + 1) * PAGE_INTS])
            if pte is None:
                return f"page {i}: unmapped"
            if pte.kind == PTE_DEVICE_PRIVATE:
                got = pte.page.zone_device_data.peek()
                got = got.data.peek() if got is not None and hasattr(got, "data") else None
            elif pte.kind == PTE_PRESENT:
                got = pte.page.data.peek()
            else:
                return f"page {i}: left as {pte!r}"
            if got != want:
                return f"page {i}: data {got!r} != {want!r}"
        return None
    return zonedev.Check(check, "data", "data_intact")


@zonedev.scenario(params={"migrator": "fault"}, kernels=["v5.17", "v5.18", "v6.0", "v6.1", "newest"],
                  expect={"v5.8..v6.0": ["signal", "use_after_free"], "v6.1": "safe"},
                  refs=["F9", "16ce101db85d", "CVE-2022-3523"])
def fault_vs_migrate(k, migrator):
    """A CPU fault on a device-private page while migrate_vma_* moves the same page (F9).
    v5.8-v6.0 (dmirror exists from v5.8): do_swap_page calls migrate_to_ram holding no page
    reference, the other side frees the page under it (use_after_free) and the process gets
    SIGBUS; fixed by 16ce101db85d (v6.1, CVE-2022-3523): a reference taken under the PTL after
    pte_same (catalogue.py::f9_fault_vs_migrate_to_ram says more).  Exhaustive DPOR: ~0.1 s per failing kernel (v5.8-v6.0), ~2.5 s on v6.1; the fixed side is
    expected on v6.1 only (the catalogue's F9 checks newest)."""
    mod, proc, fd, addr, data = _device_private_buffer(k)
    signals = []

    def cpu_fault():
        _user_fault(k, proc, addr, signals)

    def migrate():
        if migrator == "to_sys":
            proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_SYS, hmm_dmirror_cmd(addr, [], 1))
        else:                     # another CPU thread of the process faults the same page
            _user_fault(k, proc, addr, signals)

    return zonedev.Run({"cpu_fault": cpu_fault, "migrate": migrate},
                       finally_=[_data_intact(k, proc, addr, data), _no_signal(signals)])


def _user_fault(k, proc, addr, signals):
    try:
        k.do_user_addr_fault(proc.mm, addr, False)
    except SegmentationFault as e:     # the process would be killed
        signals.append(str(e))


def _no_signal(signals):
    return zonedev.Check(lambda: signals[0] if signals else None, "signal", "no SIGBUS/SIGSEGV")


@zonedev.scenario(params={"npages": 2}, kernels=["v6.1", "newest"], expect={"v5.8..": "safe"})
def anon_teardown(k, npages):
    """munmap of the second half of a buffer during a device READ of all of it (hmm-tests
    anon_teardown).  Safe on every kernel with the dmirror test driver (v5.8+): the READ either
    mirrors every page (cpages == npages, one fault) or fails with -EFAULT, as the test asserts."""
    k.page_ints = PAGE_INTS
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd = proc.open_dmirror(0)
    size = npages * 4096
    addr = proc.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    data = list(range(npages * PAGE_INTS))
    proc.write_buf(addr, data)
    out = {}

    def read():
        cmd = hmm_dmirror_cmd(addr, [0] * len(data), npages)
        try:
            proc.ioctl(fd, HMM_DMIRROR_READ, cmd)
            out["ret"], out["cpages"], out["faults"], out["mirror"] = 0, cmd.cpages, cmd.faults, list(cmd.ptr)
        except OSError as e:
            out["ret"] = -e.errno

    def unmap_buffer():
        proc.munmap(addr + size // 2, size // 2)

    def as_the_test_asserts():
        if out.get("ret") == 0:
            if out["cpages"] != npages or out["faults"] != 1 or out["mirror"] != data:
                return f"READ returned 0 with cpages {out['cpages']}, faults {out['faults']}, mirror {out['mirror']}"
        elif out.get("ret") != -errno.EFAULT:
            return f"READ failed with {out.get('ret')}"
        return None

    return zonedev.Run({"read": read, "unmap_buffer": unmap_buffer},
                       finally_=[zonedev.Check(as_the_test_asserts, "assert", "hmm-tests anon_teardown")])


@zonedev.scenario(kernels=["v6.1", "newest"], expect={"v6.1": "safe", "newest": "safe"},
                  bound={"preemptions": 1}, refs=["F10", "e778406b40db", "0dc45ca1ce18"])
def release_vs_fault(k):
    """HMM_DMIRROR_RELEASE evicting a device page while the CPU faults it, then the process
    exits (which frees whatever the eviction had to skip).  Safe on v6.1 and newest, the
    kernels with the RELEASE ioctl (migrate_device_range, e778406b40db, v6.1): the fault and the
    eviction each move the page to RAM or find it moved, with no signal and no violation; the
    page's pgmap reference (0dc45ca1ce18, v6.1) is dropped once, when the page is freed.
    (F10 is the driver that never evicts.)  Exhaustive DPOR takes ~20 s per
    kernel, so the matrix bounds it to 1 preemption (~1.5 s: 446 executions on v6.1);
    tests/test_hmm_races.py runs the exhaustive search on v6.1."""
    from zonedev.sync import Completion
    mod, proc, fd, addr, data = _device_private_buffer(k)
    signals = []
    faulted = Completion("cpu_fault done")

    def cpu_fault():
        _user_fault(k, proc, addr, signals)
        faulted.complete()

    def release():
        proc.ioctl(fd, HMM_DMIRROR_RELEASE, hmm_dmirror_cmd(addr, [], 1))

    def process_exit():
        faulted.wait_for_completion()
        proc.exit()

    return zonedev.Run({"cpu_fault": cpu_fault, "release": release, "exit": process_exit},
                       finally_=[_no_signal(signals)])
