"""The concurrent shapes driver and mm people hit, with the verdict expected on each kernel.

Where the other shapes live (each with ``expect=`` there):

* puts racing ``memunmap_pages`` on a device-private page: ``scenarios/teardown.py``
  (``teardown``, ``getput``, ``forgotten_put``) and the catalogue's F7/F8 (``teardown3``'s race);
* a CPU fault racing migration (``scenarios/hmm_races.py::fault_vs_migrate``, F9) or the
  driver's eviction (``scenarios/hmm_races.py::release_vs_fault``);
* lookups (``get_dev_pagemap``) racing teardown: ``scenarios/trust.py::get_dev_pagemap_vs_memunmap``
  (F11).  Whether a lookup that found the pgmap in the xarray can still touch its percpu_ref
  after ``percpu_ref_exit`` is decided by the RCU grace period between the erase and the exit.

This file adds:

* ``gup_put_vs_devdax_unbind`` -- puts racing ``memunmap_pages`` on a host (device-dax) page,
  from v5.17 on: where 27674ef6c73f changed the answer;
* ``fork_exit_vs_unbind`` -- fork and exit of a process holding a device-private page while the
  driver unbinds;
* ``evict_vs_pin`` -- a driver's eviction (``migrate_device_range``, then ``memunmap_pages``)
  racing a GUP pin of the same device-coherent page.

    zonedev check scenarios/shapes.py --kernel all
"""

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, PTE_DEVICE_PRIVATE, Pte, find_vma


def _memmap_state(drv):
    return lambda: (tuple(p.memmap_live for p in drv.pgmap.pages), len(drv.callbacks))


@zonedev.scenario(expect={"v5.17": "safe", "v5.18..": "use_after_free"},
                  refs=["27674ef6c73f", "0dc45ca1ce18", "F2"], mode="stateful")
def gup_put_vs_devdax_unbind(k):
    """An O_DIRECT read into a device-dax mapping holds the page (get_user_pages) while the
    device-dax instance is unbound; the I/O completes and drops its reference.  Does
    memunmap_pages wait for that reference before the memmap goes?

    v5.2-v5.17: yes -- every page holds a pgmap reference from memremap_pages until its count
    reaches 0, and memunmap_pages waits for the ref to drain (the catalogue's F2 scenario covers
    v4.5-v5.17).  From v5.18 (27674ef6c73f) memunmap_pages puts the per-page references back in
    bulk (percpu_ref_put_many) and waits only for pgmap references; a GUP reference holds none
    (GUP-fast drops its get_dev_pagemap before returning), so the memmap is removed under the
    page.  0dc45ca1ce18 (v6.1) restored the wait for PRIVATE/COHERENT pages only; mm/memremap.c
    to the newest mm tree keeps the bulk put for GENERIC, FS_DAX and P2PDMA.  Device-dax relies on
    its unbind (kill_dev_dax -> unmap_mapping_range) having removed the mappings GUP could find,
    which does not cover a reference GUP already holds.  Not in §12."""
    drv = ExampleDriver(k, "generic", nr_pages=1)
    drv.probe()
    page = drv.pgmap.pages[0]
    k.get_page(page)                  # get_user_pages for the I/O

    def dio_complete():
        k.put_page(page)

    return zonedev.Run({"dio_complete": dio_complete, "unbind": drv.remove},
                       state=_memmap_state(drv), opaque=[drv])


@zonedev.scenario(expect={"v4.14..v4.20": "use_after_free",
                          "v5.0": ["page_free_while_referenced", "use_after_free"],
                          "v5.2..v5.17": ["page_free_while_referenced", "use_after_free"],
                          "v5.18..v6.0": "use_after_free",
                          "v6.1..": "safe"},
                  refs=["F7", "F8", "0dc45ca1ce18"])
def fork_exit_vs_unbind(k):
    """A process maps a device-private page and forks (copy_page_range: the child's entry takes
    a page reference, both become read-only); then parent and child exit while the driver
    unbinds.  Does the pgmap outlive both mappings?

    v6.1+ (0dc45ca1ce18): yes -- each exit's zap_pte_range drops its reference, the last one
    frees the page and its pgmap reference, and memunmap_pages waits for it.  v5.18-v6.0:
    memunmap_pages does not wait (F8).  v5.0-v5.17: the teardown put of each pfn runs page_free
    while both processes still map the page (F7); v5.0 also removes the memmap under it (F2,
    until v5.2).  v4.14-v4.20: HMM removes the pages under the mapped one.  DPOR over
    the exit paths; at most ~0.4 s per kernel."""
    from zonedev.selftests.uapi import Process
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    parent = Process(k)
    addr = parent.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    page, _ = drv.alloc()
    # migrate_vma_insert_page: the new anon rmap and a device-private entry; the allocation's
    # reference becomes the mapping's
    k.page_add_new_anon_rmap(page, find_vma(parent.mm, addr), addr)
    _, pte = parent.mm.pte(addr, alloc=True)
    pte.set(Pte(PTE_DEVICE_PRIVATE, page, True), "set_pte_at")
    child = parent.fork()

    return zonedev.Run({"parent_exit": parent.exit, "child_exit": child.exit, "unbind": drv.remove},
                       finally_=[zonedev.expect_page_freed(k, page)])


@zonedev.scenario(expect={"v6.1": "safe", "newest": "safe"}, bound={"preemptions": 1},
                  refs=["e778406b40db", "0dc45ca1ce18", "b05a79d4377f"])
def evict_vs_pin(k):
    """dmirror's device-coherent memory (lib/test_hmm.c, device 2) holds a process's page; the
    driver evicts and unbinds it (HMM_DMIRROR_RELEASE: migrate_device_range, then
    memunmap_pages) while another thread pins the page (pin_user_pages, not long-term, through
    the gup_test ioctl), then the process exits.  Can the eviction migrate or free a pinned page,
    or can memunmap_pages finish under the pin?

    v6.1+: no.  migrate_device_range takes its own reference and the migration backs off on
    the pin's extra references; the page stays on the device and memunmap_pages waits for
    its pgmap reference (0dc45ca1ce18, v6.1) until the unpin and the process exit free it.  A
    pin of device-coherent memory migrates it first only when long-term (b05a79d4377f, v6.0);
    this pin is not.  The RELEASE ioctl exists from v6.1 (e778406b40db).  Bounded to 1 preemption (~1.5 s per kernel; exhaustive DPOR:
    2,219 executions, ~8 s idle, also clean on v6.1)."""
    from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_RELEASE, hmm_dmirror_cmd
    from zonedev.linux.mm.gup_user import PIN_BASIC_TEST
    from zonedev.selftests.uapi import Process
    from zonedev.sync import Completion
    k.page_ints = 2
    k.hmm_dmirror_init(8, True)
    proc = Process(k)
    fd = proc.open_dmirror(2)                     # a device-coherent dmirror device
    addr = proc.mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    proc.write_buf(addr, [0, 1])
    cmd = proc.ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, hmm_dmirror_cmd(addr, [0, 0], 1))
    assert cmd.cpages == 1
    pinned = Completion("gup_test done")

    def pin():
        proc.gup_test(PIN_BASIC_TEST, addr, 4096, 0)     # pin_user_pages, then unpin_user_pages
        pinned.complete()

    def release():
        proc.ioctl(fd, HMM_DMIRROR_RELEASE, hmm_dmirror_cmd(addr, [], 1))

    def process_exit():
        pinned.wait_for_completion()
        proc.exit()

    return zonedev.Run({"pin": pin, "release": release, "exit": process_exit})
