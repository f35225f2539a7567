"""The failure catalogue (``shared/reference/kernel_eras.md`` §12, F1-F16) as scenarios: one
question per entry, with the kernels where the model finds the failure and the kernels where it
is fixed.  ``docs/catalogue.md`` is the table, with the entries the model cannot express.

    zonedev check scenarios/catalogue.py --kernel all          # every entry on every kernel it applies to
    zonedev check scenarios/catalogue.py::f2_put_vs_devm_release --kernel v5.0,v5.2
    zonedev bisect scenarios/catalogue.py::f2_put_vs_devm_release  # -> 50f44ee7248a

Races are threads; a misuse that is not a race (F1, F6, F10, F16, F4) is a one-thread scenario
whose checks say what the kernel got wrong.  Refcount races with identical users use the
stateful search (``mode="stateful"``); the mm paths (F9) use DPOR.  Every scenario here runs in
well under a second per kernel except F9 (DPOR over two do_swap_page paths: ~2.5 s on a fixed
kernel), whose expectation names only the kernels where its answer matters.

Not here: F11 (get_dev_pagemap racing percpu_ref_exit turns on RCU: scenarios/trust.py), F3
(pmem's block queue is not modelled), F13/F14 (v6.0-rc only; the zero page and the NULL-ops
memory_failure path are not modelled), F15 (a 2021 proposal, never merged: a what-if patch).
"""

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.mm_types import PG_zd_free
from zonedev.linux.mm.memory import SegmentationFault
from zonedev.linux.mm.mmap import (MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE,
                                   PTE_PRESENT, Pte, find_vma)

HMM_FREE_STEPS_ON_DAX = zonedev.finding_kind(
    "hmm_free_steps_on_dax",
    "the device-private free steps (clear PG_active/PG_waiters, memcg uncharge) ran on an fsdax page (F6)")
STATIC_KEY_LEAK = zonedev.finding_kind(
    "static_key_leak", "a static key switched on for a pgmap stays on after the pgmap is gone (F16)")
STALE_ANON_MAPPING = zonedev.finding_kind(
    "stale_anon_mapping",
    "a freed device-private page still looks anonymous: its next page_add_new_anon_rmap is skipped (F4)")


# --- helpers ---------------------------------------------------------------------------------------

def _memmap_state(drv):
    """What the stateful search must see beyond sync objects: which memmaps are live, and how
    many driver callbacks ran."""
    return lambda: (tuple(p.memmap_live for p in drv.pgmap.pages), len(drv.callbacks))


def _kprobe(k, function, pre):
    """A kprobe on a kernel function of this kernel instance: ``pre(*args)`` runs before it.
    Kernel functions call each other through ``k``, so every caller goes through the probe."""
    orig = getattr(k, function)

    def probed(*args, **kwargs):
        pre(*args)
        return orig(*args, **kwargs)
    setattr(k, function, probed)


def _map_device_private(k, proc, addr, page):
    """What ``migrate_vma_insert_page`` does for a device-private destination: the new anon
    rmap, then a device-private swap entry in the PTE.  The allocation's reference becomes the
    mapping's."""
    vma = find_vma(proc.mm, addr)
    k.page_add_new_anon_rmap(page, vma, addr)
    _, pte = proc.mm.pte(addr, alloc=True)
    pte.set(Pte(PTE_DEVICE_PRIVATE, page, True), "set_pte_at")


# --- F1 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.5": ["percpu_ref_underflow", "hang"], "v4.12..": "safe"},
                  refs=["F1", "71389703839e", "6dd29b3df975"])
def f1_gup_fast_without_pgmap_ref(k):
    """GUP-fast takes a reference on a pmem/device-dax page with page_cache_get_speculative()
    and drops it with put_page(); then the driver unbinds.  Is the pgmap percpu_ref balanced?

    v4.5 (get_zone_device_page/put_zone_device_page shadow every page reference with a pgmap
    reference): the speculative get takes none, the put drops one, and the ref underflows ("percpu
    ref (dax_pmem_percpu_release) <= 0 (0) after switching to atomic"); the kill never drains it,
    so the driver's wait hangs.  Reverted (6dd29b3df975), then fixed for good by 71389703839e
    (v4.12): one pgmap reference per page, page references leave the pgmap alone.
    Not a race: the GUP-fast walk completes before the unbind."""
    drv = ExampleDriver(k, "generic", nr_pages=1)
    drv.probe()
    page = drv.pgmap.pages[0]

    def gup_fast_then_unbind():
        if k.page_cache_get_speculative(page):     # gup_pte_range, x86 generic GUP-fast
            k.put_page(page)                       # the caller's put after the I/O
        drv.remove()

    return zonedev.Run({"gup_fast_then_unbind": gup_fast_then_unbind})


# --- F2 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.5..v5.0": "use_after_free", "v5.2..v5.17": "safe"},
                  refs=["F2", "50f44ee7248a", "41e94a851304"], mode="stateful")
def f2_put_vs_devm_release(k):
    """A GUP user drops its reference to a pmem/device-dax page while the driver unbinds
    (devm_memremap_pages_release).  Can arch_remove_memory run while the page is still
    referenced?

    v4.5-v5.0: yes.  The release kills the ref, puts every pfn and removes the memmap; the wait
    for the page references is the driver's, after release returns ("obviously too late",
    50f44ee7248a).  Fixes: 41e94a851304 ("add devm_memremap_pages", v4.3), so v4.5 has it too,
    before the B-D era §12 names.  v5.2 (50f44ee7248a): kill -> put -> cleanup (wait) -> remove.
    The expectation stops at v5.17: from v5.18 memunmap_pages no longer waits for references to
    host pages at all (scenarios/shapes.py::gup_put_vs_devdax_unbind)."""
    drv = ExampleDriver(k, "generic", nr_pages=1)
    drv.probe()
    page = drv.pgmap.pages[0]
    k.get_page(page)                  # get_user_pages: the page is in an I/O

    def gup_user():
        k.put_page(page)              # the I/O completes

    return zonedev.Run({"gup_user": gup_user, "unbind": drv.remove},
                       state=_memmap_state(drv), opaque=[drv])


# --- F4 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.14..": "safe"}, refs=["F4", "7ab0ad0e74f8", "b7a523109fb5"])
def f4_freed_private_page_keeps_anon_mapping(k):
    """A device-private page is mapped into a process (anon rmap), the process unmaps it, and
    the page goes back to the driver.  Does the freed page still look anonymous, so that
    migrate_vma_insert_page -> page_add_new_anon_rmap silently skips the rmap when the driver
    hands it out again (__page_set_anon_rmap: ``if (PageAnon(page)) return;``)?

    Only between b7a523109fb5 ("mm: don't clear ->mapping in hmm_devmem_free") and 7ab0ad0e74f8
    (Fixes: b7a523109fb5), both in the v5.3 merge window: no release has it, so the scenario is
    safe on every modelled kernel.  ``zonedev check ... --kernel v5.3 --without 7ab0ad0e74f8``
    finds it.  §12 dates F4 "C-E"; the model follows the commits: before v5.3 the free path
    (v4.14-v4.18) or hmm_devmem_free (v4.19-v5.2) cleared ->mapping."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    from zonedev.selftests.uapi import Process
    proc = Process(k)
    addr = proc.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    page, _ = drv.alloc()
    _map_device_private(k, proc, addr, page)

    def munmap():
        proc.munmap(addr, 4096)       # zap_pte_range: page_remove_rmap, put_page -> page_free

    def freed_page_not_anon():
        if page.flags.bits & (1 << PG_zd_free) and k.PageAnon(page):
            return (f"page {page.pfn:#x} is back in the driver's free list with ->mapping = "
                    f"{page.mapping.peek()!r}: PageAnon() is true")
        return None

    return zonedev.Run({"munmap": munmap},
                       finally_=[zonedev.Check(freed_page_not_anon, STALE_ANON_MAPPING, "freed page not anon")])


# --- F5 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.18..v5.2": ["fsdax_waiter_never_woken", "hang"], "v5.3..": "safe"},
                  refs=["F5", "c5d6c45e90c4"])
def f5_release_pages_vs_break_layouts(k):
    """Truncate waits in the filesystem's break-layouts loop for an fsdax page that direct I/O
    holds; the I/O completes and drops its reference in a batch (release_pages).  Is the
    waiter woken?

    v4.18-v5.2: no.  release_pages() sends only DEVICE_PUBLIC pages to the devmap put; an fsdax
    page reaches 1 (idle) without wake_up_var and truncate sleeps for good.  Fixed by
    c5d6c45e90c4 (v5.3), which tries put_devmap_managed_page() for every ZONE_DEVICE page.  §12
    says D-E; the fix is in v5.3, the first E kernel.  v6.15+: the page's mapping holds a
    reference too; truncate unmaps it first (unmap_mapping_pages) and waits for 0."""
    drv = ExampleDriver(k, "fsdax", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)                  # get_user_pages for the direct I/O

    def dio_complete():
        k.release_pages([page])

    def truncate():
        if k.fact("dax_mapping_takes_ref"):
            k.put_page(page)          # unmap_mapping_pages drops the mapping's reference
        k.dax_break_layouts([page])

    return zonedev.Run({"dio_complete": dio_complete, "truncate": truncate})


# --- F6 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.18": ["dax_mapping_lost", HMM_FREE_STEPS_ON_DAX],
                          "v4.19..v5.3": HMM_FREE_STEPS_ON_DAX, "v5.6..": "safe"},
                  refs=["F6", "429589d647e2", "001_19201cc6408e5961.txt"])
def f6_hmm_free_steps_on_dax_page(k):
    """An fsdax page goes idle: a GUP user drops the last extra reference.  Does the free path
    run the device-private steps -- clear PG_active and PG_waiters, mem_cgroup_uncharge -- on
    the DAX page ("certainly unnecessary and might be broken", Dan Williams)?

    v4.18-v5.5: yes, __put_devmap_managed_page runs them for every managed type at refcount 1.
    Fixed by 429589d647e2 (v5.6): only device-private pages get them; fsdax gets
    wake_up_var().  v4.18 also clears ->mapping of the page still in its file
    (dax_mapping_lost, fixed by 2fa147bdbf67 in v4.19).  The probe watches the page-flag steps;
    in v4.18-v5.5 the memcg uncharge sits beside them.  v6.15+'s free_zone_device_folio uncharges
    every ZONE_DEVICE folio again, on purpose and at refcount 0, without the flag steps: safe
    here (scenarios/seeds.py::dax_free_path asks the uncharge question of seed 001 and answers
    "yes" again from v6.15).  Not a race: one put."""
    drv = ExampleDriver(k, "fsdax", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)
    seen = []
    for function in ("__ClearPageActive", "__ClearPageWaiters"):
        _kprobe(k, function, lambda p, *a, _f=function: seen.append(_f) if k.is_fsdax_page(p) else None)

    def on_dax_page():
        return f"{' and '.join(seen)} on fsdax page {page.pfn:#x}" if seen else None

    return zonedev.Run({"gup_user": lambda: k.put_page(page)},
                       finally_=[zonedev.Check(on_dax_page, HMM_FREE_STEPS_ON_DAX, "no HMM free steps on DAX")])


# --- F7 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.14..v4.20": "use_after_free",
                          "v5.0": ["page_free_while_referenced", "use_after_free"],
                          "v5.2..v5.17": ["page_free_while_referenced", "use_after_free"],
                          "v5.18..v6.0": "use_after_free",
                          "v6.1..": "safe"},
                  refs=["F7", "27674ef6c73f", "0dc45ca1ce18"], mode="stateful")
def f7_teardown_put_frees_busy_page(k):
    """A process unmaps a device-private page while the driver tears the pgmap down.  Can the
    teardown's put of each pfn take the page 2 -> 1 and run the driver's page_free while the
    process still maps it?

    v5.0-v5.17 (HMM pages hold the per-page pgmap reference, 1-based free): yes, when the
    teardown put comes first (page_free_while_referenced).  v4.14-v4.20: HMM pages hold no
    pgmap reference and hmm_devmem_remove removes the pages under the mapped one; v5.0 adds
    F2.  v5.18 (27674ef6c73f) drops the teardown put -- and with it the wait (F8) -- until v6.1
    (0dc45ca1ce18).  v5.2-v5.17 also have the other order (use_after_free, found by the model's
    own lifetime check): the process's put takes the page 2 -> 1 and runs page_free holding
    nothing (mm/memremap.c ``__put_devmap_managed_page``), while the teardown put takes it
    1 -> 0 ("only triggered by the dev_pagemap shutdown path"), drops the last pgmap reference,
    and memunmap_pages exits and returns under the running page_free.  §12 dates F7 from v4.18 (D); for device-private pages it starts at v5.0,
    when HMM moved onto devm_memremap_pages."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()             # the process's mapping holds the allocation's reference

    def munmap():
        k.put_page(page)              # zap_pte_range

    return zonedev.Run({"munmap": munmap, "memunmap": drv.remove},
                       finally_=[zonedev.expect_page_freed(k, page)],
                       state=_memmap_state(drv), opaque=[drv])


# --- F8 ---------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v5.17": ["page_free_while_referenced", "use_after_free"], "v5.18..v6.0": "use_after_free",
                          "v6.1..": "safe"},
                  refs=["F8", "0dc45ca1ce18", "27674ef6c73f", "003_ede6d8706e8d37f1.txt"], mode="stateful")
def f8_memunmap_vs_mapped_private_page(k):
    """A device-private page is mapped and pinned by a GUP user; the GUP user unpins, the
    migration drops the source page, and the driver calls memunmap_pages, all at once.  Can
    memunmap_pages return (and the memmap go) while the page is still referenced?

    v5.18-v6.0: yes.  27674ef6c73f (seed 003's cleanup, merged) stopped dropping a pgmap
    reference per page, so memunmap's wait covers none of them (use_after_free).  v6.1
    (0dc45ca1ce18): zone_device_page_init takes a pgmap reference, the final put drops it,
    memunmap waits.  v5.17 shows the 1-based teardown put instead (F7), and a put's
    free_devmap_managed_page that is still running when memunmap_pages returns
    (use_after_free on the pgmap's ops)."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()             # the mapping's reference (the migration drops it) ...
    k.get_page(page)                  # ... and the GUP user's

    return zonedev.Run({"gup_user": lambda: k.put_page(page), "migration": lambda: k.put_page(page),
                        "memunmap": drv.remove},
                       finally_=[zonedev.expect_page_freed(k, page)],
                       state=_memmap_state(drv), opaque=[drv])


# --- F9 ---------------------------------------------------------------------------------------------

_PAGE_INTS = 2


def _dmirror_page_on_device(k):
    """dmirror (lib/test_hmm.c) loaded; one anonymous page holding (0, 1) migrated to device 0."""
    from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd
    from zonedev.selftests.uapi import Process
    k.page_ints = _PAGE_INTS
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd = proc.open_dmirror(0)
    addr = proc.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, list(range(_PAGE_INTS)))
    cmd = proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0] * _PAGE_INTS, 1))
    assert cmd.cpages == 1
    return proc, fd, addr


@zonedev.scenario(expect={"v5.8..v6.0": ["signal", "use_after_free"], "v6.1": "safe", "newest": "safe"},
                  refs=["F9", "16ce101db85d", "CVE-2022-3523"])
def f9_fault_vs_migrate_to_ram(k):
    """Two CPU threads of a process fault on the same device-private page; each fault's
    migrate_to_ram migrates it back to system memory.  Can one fault's migrate_to_ram run on a
    page the other has already freed?

    v5.8-v6.0 (dmirror exists from v5.8; the bug since v4.14): do_swap_page calls
    migrate_to_ram holding no page reference; the other side frees the page and
    dmirror_devmem_fault reads zone_device_data of a free page (use_after_free) and the process
    gets SIGBUS.  Fixed by 16ce101db85d (v6.1): a reference taken under the PTL after pte_same.
    DPOR, exhaustive: ~0.06 s on a failing kernel, ~2.5 s on a fixed one, so the fixed side is
    checked on v6.1 and newest only (scenarios/hmm_races.py::fault_vs_migrate is this race
    again over hmm-tests' buffer; with ``-p migrator=to_sys`` its other side is the dmirror
    MIGRATE_TO_SYS ioctl)."""
    proc, fd, addr = _dmirror_page_on_device(k)
    signals = []

    def fault():
        try:
            k.do_user_addr_fault(proc.mm, addr, False)
        except SegmentationFault as e:          # the process would be killed
            signals.append(str(e))

    def data_back():
        pte = proc.mm.peek_pte(addr)
        if pte is None:
            return "page unmapped"
        if pte.kind == PTE_PRESENT:
            got = pte.page.data.peek()
        elif pte.kind == PTE_DEVICE_PRIVATE:
            got = pte.page.zone_device_data.peek()
            got = got.data.peek() if got is not None and hasattr(got, "data") else None
        else:
            return f"page left as {pte!r}"
        return None if got == tuple(range(_PAGE_INTS)) else f"data {got!r}"

    return zonedev.Run({"cpu0_fault": fault, "cpu1_fault": fault},
                       finally_=[zonedev.Check(data_back, "data", "data intact"),
                                 zonedev.Check(lambda: signals[0] if signals else None, "signal", "no SIGBUS")])


# --- F10 --------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v5.18..v6.0": "use_after_free", "v6.1..": "hang"},
                  refs=["F10", "0dc45ca1ce18", "e778406b40db", "249881232e14"])
def f10_memunmap_without_eviction(k):
    """A driver unbinds (memunmap_pages) while a process still maps one of its device-private
    pages, without migrating it back first.  What happens?

    v6.1+: memunmap_pages waits for every allocated page to be freed (0dc45ca1ce18) -- forever,
    since nothing frees it (hang).  That is the rule, not a core bug: drivers must evict first
    with migrate_device_range (e778406b40db; nouveau 249881232e14, dmirror's
    HMM_DMIRROR_RELEASE: scenarios/hmm_races.py::release_vs_fault, safe on v6.1).  v5.18-v6.0:
    the memmap is removed under the mapped page (F8).  Not a race: one thread."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()             # mapped by a process that keeps it

    return zonedev.Run({"unbind": drv.remove})


# --- F12 --------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v5.6..v5.17": "safe", "v5.18": ["fsdax_waiter_never_woken", "hang"],
                          "v5.19..": "safe"},
                  refs=["F12", "f4f451a16dd1", "d8ddc099c6b3"])
def f12_unpin_vs_break_layouts(k):
    """Truncate waits for an fsdax page that an RDMA/vfio user pinned (pin_user_pages); the user
    unpins.  Is the truncate woken?

    v5.18: no.  gup_put_folio (d8ddc099c6b3) drops the pin with folio_put_refs, which skips the
    fsdax 2 -> 1 wake-up; the waiter sleeps for good.  Fixed in v5.19 by f4f451a16dd1 (Muchun
    Song): put_devmap_managed_page_refs first.  v5.6-v5.17: unpin_user_page went through
    __unpin_devmap_managed_user_page (or put_page before v5.7), which wakes.  v6.15+: 0-based
    fsdax; truncate unmaps the mapping's reference first and waits for 0."""
    drv = ExampleDriver(k, "fsdax", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.pin_user_page(page)

    def unpin():
        k.unpin_user_page(page)

    def truncate():
        if k.fact("dax_mapping_takes_ref"):
            k.put_page(page)          # unmap_mapping_pages drops the mapping's reference
        k.dax_break_layouts([page])

    return zonedev.Run({"unpin": unpin, "truncate": truncate})


# --- F16 --------------------------------------------------------------------------------------------

@zonedev.scenario(expect={"v4.14..v5.2": STATIC_KEY_LEAK, "v5.3..": "safe"},
                  refs=["F16", "1e240e8d4a7d"])
def f16_devmap_key_left_on(k):
    """An HMM driver maps device-private memory and unloads.  Is the put_page fast-path static
    key (device_private_key, devmap_managed_key from v4.18) switched off again?

    v4.14-v5.2: no -- hmm_devmem_add takes it and nothing ever drops it ("hmm never called
    dev_pagemap_put_ops", Christoph Hellwig), so every put_page keeps taking the ZONE_DEVICE
    branch after the driver is gone.  Fixed in v5.3 by "lift devmap_enable into
    devm_memremap_pages" (model: 1e240e8d4a7d, the dev_pagemap cleanups): memremap_pages takes
    the key and memunmap_pages drops it.  A cost, not a crash.  Not a race: one thread."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()

    def key_off():
        n = k.devmap_managed_key.peek()
        return f"devmap_managed_key is {n} after the only pgmap is gone" if n else None

    return zonedev.Run({"unload": drv.remove},
                       finally_=[zonedev.Check(key_off, STATIC_KEY_LEAK, "static key off")])
