"""The page-table-walking half of GUP (mm/gup.c): ``get_user_pages*``, ``pin_user_pages*``,
and the ``gup_test`` debugfs ioctls that ``hmm_gup_test`` drives (mm/gup_test.c).

Page-level reference taking is the core's (``k.try_grab_page``, ``k.unpin_user_page``).

* Slow path (``__get_user_pages`` -> ``follow_page_pte`` / ``faultin_page``): a present PTE that
  satisfies the access is grabbed under the PTL; anything else (none, read-only for FOLL_WRITE,
  a device-private entry, a device-exclusive entry) is faulted with ``handle_mm_fault`` and the
  lookup retried.  So a device-private page is migrated back to RAM by its driver's
  ``migrate_to_ram`` and never returned (kernel_eras §9.3).
* FOLL_LONGTERM (``__gup_longterm_locked`` -> ``check_and_migrate_movable_pages``, v6.0+ for
  coherent memory): a device-coherent page cannot be long-term pinned; the pin becomes a plain
  reference, the page is migrated to system memory (``migrate_device_coherent_page``) and the
  whole GUP is retried (-EAGAIN loop).
* Fast path (``lockless_pages_from_mm`` -> ``gup_pte_range``): present, access-satisfying,
  non-special PTEs only (the zero page is special); FOLL_LONGTERM on a page that is not
  long-term pinnable drops the grab and bails out.  Whatever the fast path did not get is done
  by the slow path (``__gup_longterm_unlocked``).  The fast path's ``get_dev_pagemap`` lookup is
  for ``pte_devmap`` (fsdax/devdax) PTEs only, which this mm never creates for private or
  coherent memory.
* DAX (``linux/fs/daxfs.py``; kernel_eras §6.6, §9.3): a devmap PTE (v4.5-v6.16) is special,
  so ``vm_normal_page`` is NULL; GUP takes ``get_dev_pagemap`` for it and drops it once the
  page is held (slow path ``follow_page_pte``; fast path ``gup_pte_range``, which on a failed
  lookup undoes the pages it grabbed -- ``undo_dev_pagemap`` -- and bails).  The model gets and
  puts the pgmap per page in every era: the v4.16+/v5.0 cached lookup (one put at the end) has
  the same net references.  v6.17 (c_fd2825b0760a, "mm: Remove pXX_devmap page table bit and
  pfn_t type") removes both lookups (``gup_pgmap_lookup``); from v6.15 DAX makes no devmap PTEs
  anyway.  From v5.2 (c_7af75561e171) gup-fast bails to the slow path on a
  devmap PTE with FOLL_LONGTERM.  ``check_vma_flags`` refuses FOLL_LONGTERM on an fsdax VMA
  with -EOPNOTSUPP (get_user_pages_longterm v4.15, __gup_longterm_locked v5.2,
  check_vma_flags v5.11: the same errno in every era the model has fsdax).
* P2PDMA (v6.2+, ``k.fact("p2pdma_mmap")``): a PCI P2PDMA page is returned only with
  FOLL_PCI_P2PDMA (``try_grab_page``: -EREMOTEIO; gup-fast bails), and FOLL_LONGTERM together
  with FOLL_PCI_P2PDMA is -EOPNOTSUPP.
"""

from __future__ import annotations

import errno

from ..include.mm import (FOLL_FORCE, FOLL_GET, FOLL_LONGTERM, FOLL_PCI_P2PDMA, FOLL_PIN, FOLL_SPLIT_PMD,
                          FOLL_WRITE)
from .memory import FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_FAULT_ERROR
from .mmap import (PAGE_MASK, PAGE_SIZE, PTE_PRESENT, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE, err,
                   find_vma, walk_inputs)
from ...sync.retry import RetryLoop
from ..include.memremap import MEMORY_DEVICE_COHERENT

__all__ = ["FOLL_GET", "FOLL_PIN", "FOLL_WRITE", "FOLL_LONGTERM", "FOLL_SPLIT_PMD", "FOLL_FORCE"]


def is_longterm_pinnable_page(k, page) -> bool:
    """``is_longterm_pinnable_page()`` / ``folio_is_longterm_pinnable()``: device-coherent pages
    are not (v6.0+); everything else this mm maps is (no CMA/ZONE_MOVABLE modelled).

    Kernel: mm/gup.c, v5.8+."""
    return not k.is_device_coherent_page(page)


def vma_is_fsdax(vma) -> bool:
    """``vma_is_fsdax()``: a mapping of a file on a DAX file system (not device-dax)."""
    return bool(getattr(vma.vm_file, "fsdax", False))


def follow_page_pte(k, vma, addr: int, flags: int):
    """Return the page with a grab (FOLL_GET/FOLL_PIN) or None when a fault is needed; a
    negative errno when the page cannot be returned.

    Kernel: mm/gup.c, v5.8+."""
    mm = vma.vm_mm
    pt = mm.pgtable(addr)
    if pt is None:
        return None
    pt.ptl.lock("follow_page_pte")
    pte = pt.pte(addr).get("ptep_get")
    page = None
    if pte is not None and pte.kind == PTE_PRESENT and (pte.write or not flags & FOLL_WRITE):
        page = pte.page
        if k.fact("p2pdma_mmap") and not flags & FOLL_PCI_P2PDMA and k.is_pci_p2pdma_page(page):
            page = -errno.EREMOTEIO                     # try_grab_page (v6.2+)
        elif pte.devmap and k.fact("gup_pgmap_lookup") and flags & (FOLL_GET | FOLL_PIN):
            # "device mapped pages can only be returned if the caller will manage their
            # lifetime": the pgmap is held across the grab (v4.5-v6.16; the same steps as
            # follow_devmap_page, with try_grab_page's failure kept)
            pgmap = k.get_dev_pagemap(page.pfn)
            if pgmap is None:
                page = -errno.EFAULT
            else:
                if not k.try_grab_page(page, flags):
                    page = -errno.ENOMEM
                k.put_dev_pagemap(pgmap)
        elif not k.try_grab_page(page, flags):
            page = -errno.ENOMEM
    pt.ptl.unlock("pte_unmap_unlock")
    return page


def __get_user_pages(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``__get_user_pages()``: look up each page (``follow_page_pte``), faulting it in with
    ``handle_mm_fault`` when needed. Kernel: mm/gup.c, v5.8+."""
    if k.fact("p2pdma_mmap") and gup_flags & FOLL_LONGTERM and gup_flags & FOLL_PCI_P2PDMA:
        raise err(errno.EOPNOTSUPP, "FOLL_LONGTERM with FOLL_PCI_P2PDMA: the pgmap must stay unpluggable")
    pages = []
    addr = start & PAGE_MASK
    for _ in range(nr_pages):
        vma = find_vma(mm, addr, "gup_vma_lookup")
        if vma is None or vma.vm_start > addr:
            raise err(errno.EFAULT, "gup: no vma")
        # check_vma_flags()
        if vma.vm_flags & (VM_IO | VM_PFNMAP):
            raise err(errno.EFAULT, "gup: VM_IO|VM_PFNMAP")
        if gup_flags & FOLL_WRITE and not vma.vm_flags & VM_WRITE and not gup_flags & FOLL_FORCE:
            raise err(errno.EFAULT, "gup: write to read-only vma")
        if not vma.vm_flags & VM_READ and not gup_flags & FOLL_FORCE:
            raise err(errno.EFAULT, "gup: unreadable vma")
        if gup_flags & FOLL_LONGTERM and vma_is_fsdax(vma):
            raise err(errno.EOPNOTSUPP, "check_vma_flags: FOLL_LONGTERM on an fsdax vma")
        # "retry:" -- follow_page_mask(), and faultin_page() then "goto retry" while it
        # returns 0: unbounded in the kernel, so a fair RetryLoop, not a cap
        loop = RetryLoop("__get_user_pages: faultin_page and retry")
        while True:
            page = k.follow_page_pte(vma, addr, gup_flags)
            if isinstance(page, int):
                raise err(-page, "try_grab_page")
            if page is not None:
                break
            # faultin_page()
            ret = k.handle_mm_fault(vma, addr, FAULT_FLAG_REMOTE | (FAULT_FLAG_WRITE if gup_flags & FOLL_WRITE else 0))
            if ret & VM_FAULT_ERROR:
                raise err(errno.EFAULT, f"gup: fault {ret:#x}")
            loop.retry(walk_inputs(mm, addr, addr + PAGE_SIZE))
        pages.append(page)
        addr += PAGE_SIZE
    return pages


def check_and_migrate_movable_pages(k, pages: list, gup_flags: int) -> int:
    """v6.0+: migrate device-coherent pages out of the pin.  Returns 0 or -EAGAIN (retry).
    Kernel: mm/gup.c, v5.8+."""
    coherent = [i for i, p in enumerate(pages) if not k.is_longterm_pinnable_page(p)]
    if not coherent:
        return 0
    for i, page in enumerate(pages):
        if i in coherent:
            # "Migration will fail if the page is pinned, so convert the pin on the source
            # page to a normal reference."
            k.get_page(page)
            k.unpin_user_page(page)
            if k.migrate_device_coherent_page(page):
                k.put_page(page)
        else:
            k.unpin_user_page(page) if gup_flags & FOLL_PIN else k.put_page(page)
    return -errno.EAGAIN


def __gup_longterm_locked(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``__gup_longterm_locked()``: mmap_lock is held for read by the caller.  Kernel: mm/gup.c, v5.8+."""
    while True:
        pages = k.__get_user_pages(mm, start, nr_pages, gup_flags)
        if not gup_flags & FOLL_LONGTERM or MEMORY_DEVICE_COHERENT not in (k.fact("memory_types") or ()):
            return pages
        if k.check_and_migrate_movable_pages(pages, gup_flags) != -errno.EAGAIN:
            return pages


def get_user_pages_remote(k, mm, start: int, nr_pages: int, gup_flags: int, locked: bool = False) -> list:
    """``get_user_pages_remote()``; with ``locked`` the caller already holds mmap_lock.
    Kernel: mm/gup.c, v5.8+."""
    if not locked:
        mm.mmap_lock.down_read("mmap_read_lock")
    try:
        return k.__gup_longterm_locked(mm, start, nr_pages, gup_flags | FOLL_GET)
    finally:
        if not locked:
            mm.mmap_lock.up_read("mmap_read_unlock")


def get_user_pages(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``get_user_pages()`` (caller holds mmap_lock for read): FOLL_GET references.
    Kernel: mm/gup.c, v5.8+."""
    return k.__gup_longterm_locked(mm, start, nr_pages, gup_flags | FOLL_GET)


def pin_user_pages(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``pin_user_pages()`` (v5.6+; caller holds mmap_lock for read): FOLL_PIN.  Kernel: mm/gup.c, v5.8+."""
    return k.__gup_longterm_locked(mm, start, nr_pages, gup_flags | FOLL_PIN)


def gup_fast(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``lockless_pages_from_mm()`` -> ``gup_pte_range()``: no locks, IRQs off
    (``mm.gup_fast_irqs_off`` held for read: a TLB-flush IPI waits for the walk); stop at the
    first PTE that needs the slow path.

    Kernel: mm/gup.c, v5.8+."""
    if gup_flags & FOLL_LONGTERM and not k.fact("gup_fast_longterm_devmap_bails"):
        return []      # before v5.2 there was no FOLL_LONGTERM gup-fast: get_user_pages_longterm() walked slowly
    mm.gup_fast_irqs_off.down_read("local_irq_save")
    try:
        return k.gup_pte_range(mm, start, nr_pages, gup_flags)
    finally:
        mm.gup_fast_irqs_off.up_read("local_irq_restore")



def try_grab_folio_fast(k, page, flags: int) -> bool:
    """GUP-fast's grab of the page a PTE maps: a speculative reference on the head that fails
    *silently* on a count of 0 (the page is being freed; ``gup_pte_range`` bails and the slow
    path decides), where the slow path's ``try_grab_page`` WARNs.  FOLL_PIN adds
    ``GUP_PIN_COUNTING_BIAS`` in the same atomic add, or 1 plus the compound pincount (v5.7+,
    3faa52c03f44); before v5.7 a pin is one plain reference.

    Kernel: mm/gup.c.  Its name by era: ``page_cache_get_speculative`` on the head (v4.5-v5.0),
    ``try_get_compound_head`` (v5.1, 8fde12ca79af), ``try_grab_compound_head`` (v5.6),
    ``try_grab_folio`` (v5.18, d8ddc099c6b3: the model's ``k.try_grab_folio`` is that
    function), ``try_grab_folio_fast`` (v6.10, f442fa614137 "mm: gup: stop abusing
    try_grab_folio").  All of them add with ``page_ref_add_unless(.., 0)``."""
    if k.has("try_grab_folio"):
        return k.try_grab_folio(page, 1, flags) is not None
    head = page.head
    func = "try_grab_compound_head" if k.has("pin_user_page") else "try_get_compound_head"
    bias = k.fact("GUP_PIN_COUNTING_BIAS")
    if flags & FOLL_PIN and bias and not k.hpage_pincount_available(head):
        return k.page_ref_add_unless(head, bias, 0, func)
    if not k.page_ref_add_unless(head, 1, 0, func):
        return False
    if flags & FOLL_PIN and bias:
        k.pincount_add(head, 1, func)
    return True


def gup_pte_range(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """The lockless walk of ``gup_fast`` (``gup_pte_range()``).  Kernel: mm/gup.c, v5.8+."""
    pages = []
    addr = start & PAGE_MASK
    for _ in range(nr_pages):
        pt = mm.pgtable(addr)
        if pt is None:
            break
        v = pt.pte(addr)
        pte = v.get("ptep_get_lockless")
        if pte is None or pte.kind != PTE_PRESENT or (gup_flags & FOLL_WRITE and not pte.write) \
                or k.is_zero_page(pte.page):
            break
        page = pte.page
        pgmap = None
        if pte.devmap and k.fact("gup_pgmap_lookup"):
            if gup_flags & FOLL_LONGTERM and k.fact("gup_fast_longterm_devmap_bails"):
                break                                    # v5.2+: the slow path decides
            pgmap = k.get_dev_pagemap(page.pfn)
            if pgmap is None:                            # undo_dev_pagemap(): drop what we took
                for p in pages:
                    k.unpin_user_page(p) if gup_flags & FOLL_PIN else k.put_page(p)
                return []
        elif k.fact("p2pdma_mmap") and not gup_flags & FOLL_PCI_P2PDMA and k.is_pci_p2pdma_page(page):
            break
        grabbed = k.try_grab_folio_fast(page, gup_flags)
        if pgmap is not None:
            k.put_dev_pagemap(pgmap)
        if not grabbed:
            break
        if gup_flags & FOLL_LONGTERM and not k.is_longterm_pinnable_page(page):
            k.unpin_user_page(page) if gup_flags & FOLL_PIN else k.put_page(page)
            break
        if not pte.same(v.get("ptep_get (recheck)")):
            k.unpin_user_page(page) if gup_flags & FOLL_PIN else k.put_page(page)
            break
        pages.append(page)
        addr += PAGE_SIZE
    return pages


def internal_get_user_pages_fast(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``internal_get_user_pages_fast()``: the lockless walk first, the slow path under mmap_lock
    for the rest. Kernel: mm/gup.c, v5.8+."""
    if k.fact("p2pdma_mmap") and gup_flags & FOLL_LONGTERM and gup_flags & FOLL_PCI_P2PDMA:
        raise err(errno.EOPNOTSUPP, "FOLL_LONGTERM with FOLL_PCI_P2PDMA: the pgmap must stay unpluggable")
    pages = k.gup_fast(mm, start, nr_pages, gup_flags)
    if len(pages) == nr_pages:
        return pages
    rest = start + len(pages) * PAGE_SIZE
    mm.mmap_lock.down_read("mmap_read_lock")
    try:
        pages += k.__gup_longterm_locked(mm, rest, nr_pages - len(pages), gup_flags)
    finally:
        mm.mmap_lock.up_read("mmap_read_unlock")
    return pages


def get_user_pages_fast(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``get_user_pages_fast()``: FOLL_GET references, lockless where it can. Kernel: mm/gup.c,
    v5.8+."""
    return k.internal_get_user_pages_fast(mm, start, nr_pages, gup_flags | FOLL_GET)


def pin_user_pages_fast(k, mm, start: int, nr_pages: int, gup_flags: int) -> list:
    """``pin_user_pages_fast()`` (v5.6+): FOLL_PIN, lockless where it can. Kernel: mm/gup.c, v5.8+."""
    return k.internal_get_user_pages_fast(mm, start, nr_pages, gup_flags | FOLL_PIN)


# --- mm/gup_test.c -------------------------------------------------------------------------------
GUP_FAST_BENCHMARK = 1
PIN_FAST_BENCHMARK = 2
PIN_LONGTERM_BENCHMARK = 3
GUP_BASIC_TEST = 4
PIN_BASIC_TEST = 5


def gup_test_ioctl(k, mm, cmd: int, addr: int, size: int, gup_flags: int, nr_pages_per_call: int = 1) -> int:
    """``gup_test_ioctl()`` -> ``__gup_test_ioctl()``: get or pin every page of [addr, addr+size)
    and release them at once (``put_back_pages``).  Returns 0 or raises ``OSError``.

    Kernel: mm/gup_test.c, v5.11+ (mm/gup_benchmark.c before)."""
    nr = size // PAGE_SIZE
    if cmd == GUP_FAST_BENCHMARK:
        pages = k.get_user_pages_fast(mm, addr, nr, gup_flags)
    elif cmd == PIN_FAST_BENCHMARK:
        pages = k.pin_user_pages_fast(mm, addr, nr, gup_flags)
    elif cmd in (GUP_BASIC_TEST, PIN_BASIC_TEST, PIN_LONGTERM_BENCHMARK):
        flags = gup_flags | (FOLL_LONGTERM if cmd == PIN_LONGTERM_BENCHMARK else 0)
        mm.mmap_lock.down_read("mmap_read_lock")
        try:
            pages = (k.get_user_pages if cmd == GUP_BASIC_TEST else k.pin_user_pages)(mm, addr, nr, flags)
        finally:
            mm.mmap_lock.up_read("mmap_read_unlock")
    else:
        raise err(errno.EINVAL, "gup_test: unknown command")
    for page in pages:                                   # put_back_pages()
        if cmd in (GUP_FAST_BENCHMARK, GUP_BASIC_TEST):
            k.put_page(page)
        else:
            k.unpin_user_page(page)
    return 0


FUNCTIONS = (is_longterm_pinnable_page, follow_page_pte, __get_user_pages, check_and_migrate_movable_pages,
             __gup_longterm_locked, get_user_pages_remote, get_user_pages, pin_user_pages, gup_fast,
             try_grab_folio_fast, gup_pte_range, internal_get_user_pages_fast, get_user_pages_fast, pin_user_pages_fast, gup_test_ioctl)
