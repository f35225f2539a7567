"""775465fd26a3 "lib/test_hmm: add zone device private THP test infrastructure" and "lib/test_hmm:
add large page allocation failure testing" (Balbir Singh, device-private THP series, v6.19).

Read: lib/test_hmm.c in linux-mm/linux-mm @05ab51217205 (D2 of kernel_hmm_selftests.md) and the
posted series.  What the dmirror driver gains:

* a second free list ``free_folios`` of PMD-order device folios; a chunk made for a large request
  is carved into ``HPAGE_PMD_NR``-page folios (``dmirror_allocate_chunk(mdevice, ppage, is_large)``),
  so the first THP migration makes a second chunk; ``calloc``/``cfree`` count ``1 << order``;
* ``dmirror_devmem_alloc_page(dmirror, is_large)``: a backing folio of the same order, a device
  folio from the right list, ``zone_device_folio_init(folio, pgmap, order)``;
* ``HMM_DMIRROR_FLAGS``: ``dmirror->flags = cmd.npages``; HMM_DMIRROR_FLAG_FAIL_ALLOC makes the
  next large allocation (either direction) fail once, forcing the order-0 fallback;
* migration selects MIGRATE_VMA_SELECT_COMPOUND both ways, ``PTRS_PER_PTE`` pages a batch; a compound source gets a compound
  destination (``MIGRATE_PFN_COMPOUND``) or, if the large allocation fails, order-0 pages;
* ``dmirror_devmem_fault``: a fault through a PMD (``vmf->pte == NULL``) migrates the whole folio,
  one through a PTE the faulting page only;
* ``.folio_free`` frees the backing folio of the same order and puts large folios back on
  ``free_folios``; ``.folio_split`` (``dmirror_devmem_folio_split``) gives every new device folio
  its piece of the backing folio.

A coherent device has one SPM range, already a chunk of base pages, so its large allocations
fail and coherent THPs migrate as order-0 pages (INFERRED: a second memremap of the range would
overlap).  Not modelled: eviction (RELEASE, fd close) of a device folio that is still large and mapped
(the tests unmap their THPs first), the 256 MiB chunk geometry (the model's chunk is
``chunk_pages``; a large chunk holds at least one folio).
"""

from ..linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, dev_pagemap, dev_pagemap_ops
from ..linux.lib import test_hmm as th
from ..linux.lib.test_hmm import (BACKING_PAGE, DPT_XA_TAG_WRITE, HMM_DMIRROR_FLAGS,
                                  HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, _copy_highpage, dmirror_page_to_chunk)
from ..linux.mm.memory import VM_FAULT_SIGBUS
from ..linux.mm.migrate_device import (MIGRATE_PFN_COMPOUND, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE,
                                       MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM, migrate_pfn,
                                       migrate_pfn_to_page, migrate_vma)
from ..linux.mm.mmap import PAGE_SHIFT, PAGE_SIZE, PTRS_PER_PTE, VM_WRITE, err
from ..sync import Var
from ._patch import Patch

PATCH = Patch(
    commit="775465fd26a3", title="lib/test_hmm: add zone device private THP test infrastructure",
    version="v6.19", confidence="INFERRED",
    replaces="dmirror allocated order-0 device pages only and could not migrate or fault a THP",
)
PATCH.set(dmirror_thp=True)

HMM_DMIRROR_FLAG_FAIL_ALLOC = 1 << 0


def _free_folios(mdevice) -> Var:
    v = mdevice.__dict__.get("free_folios")
    if v is None:
        v = mdevice.free_folios = Var(None, f"{mdevice.name}.free_folios")
    return v


def _flags(mirror) -> Var:
    v = mirror.__dict__.get("flags")
    if v is None:
        v = mirror.flags = Var(0, f"dmirror{mirror.id}.flags")
    return v


@PATCH.define
def dmirror_allocate_chunk(k, mdevice, want_page: bool, is_large: bool = False):
    """``dmirror_allocate_chunk(mdevice, ppage, is_large)``: memremap a chunk; a large request
    carves it into PMD-order folios on ``free_folios`` (left-over pages on ``free_pages``);
    optionally pop one page or folio for the caller.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    mod = mdevice.module
    n = mod.chunk_pages
    nr = k.hpage_pmd_nr()
    if mdevice.zone_device_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
        start = (mod.next_private_pfn + nr - 1) & ~(nr - 1)   # request_free_mem_region: aligned
        mod.next_private_pfn = start + n
        ptype = MEMORY_DEVICE_PRIVATE
    else:
        # one SPM range per coherent device: a second chunk would map it twice (memremap_pages
        # refuses an overlapping range), so a coherent large request falls back to order 0
        if mdevice.devmem_chunks.get("devmem_chunks"):
            raise err(12, "dmirror_allocate_chunk: the coherent SPM range is already mapped")
        start = mod.spm_addr_dev0 if (mdevice.minor - 2) else mod.spm_addr_dev1
        ptype = MEMORY_DEVICE_COHERENT
    ops = dev_pagemap_ops(page_free=lambda page, *a: k.dmirror_devmem_free(page),
                          migrate_to_ram=lambda vmf: k.dmirror_devmem_fault(vmf),
                          folio_split=lambda head, tail: k.dmirror_devmem_folio_split(head, tail))
    pgmap = dev_pagemap(ptype, nr_pages=n, start_pfn=start, ops=ops, owner=mdevice,
                        name=f"dmirror{mdevice.minor}@{start:#x}")
    chunk = th.dmirror_chunk(mdevice, pgmap)
    pgmap.data = chunk
    mdevice.devmem_lock.lock("mutex_lock(&mdevice->devmem_lock)")
    try:
        k.memremap_pages(pgmap)
    except Exception:
        mdevice.devmem_lock.unlock("mutex_unlock(&mdevice->devmem_lock)")
        raise err(12, "dmirror_allocate_chunk: memremap_pages failed")
    chunk.idle_ref = pgmap.ref.peek() if pgmap.ref is not None else None
    chunk.free_refcount = k.pfn_to_page(start)._refcount.peek()
    mdevice.devmem_chunks.set(mdevice.devmem_chunks.get("devmem_chunks") + (chunk,), "devmem_chunks[devmem_count++]")
    mdevice.devmem_lock.unlock("mutex_unlock(&mdevice->devmem_lock)")
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    head = mdevice.free_pages.get("mdevice->free_pages")
    fhead = _free_folios(mdevice).get("mdevice->free_folios")
    pfn = start
    while pfn < start + n:
        page = k.pfn_to_page(pfn)
        if is_large and not pfn & (nr - 1) and pfn + nr <= start + n:
            page.zone_device_data.set(fhead, "page->zone_device_data = mdevice->free_folios")
            fhead = page
            pfn += nr
            continue
        page.zone_device_data.set(head, "page->zone_device_data = mdevice->free_pages")
        head = page
        pfn += 1
    page = None
    if want_page:
        if is_large and fhead is not None:
            page, fhead = fhead, fhead.zone_device_data.get("zone_device_data")
            mdevice.calloc.set(mdevice.calloc.get("calloc") + nr, "calloc += nr")
        elif not is_large:
            page, head = head, head.zone_device_data.get("zone_device_data")
            mdevice.calloc.set(mdevice.calloc.get("calloc") + 1, "calloc++")
    mdevice.free_pages.set(head, "mdevice->free_pages")
    _free_folios(mdevice).set(fhead, "mdevice->free_folios")
    mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
    return page if want_page else True


@PATCH.define
def dmirror_devmem_alloc_page(k, mdevice, is_large: bool = False):
    """``dmirror_devmem_alloc_page(dmirror, is_large)``: a backing folio of the order (private),
    a device page or PMD-order folio from its free list or a new chunk, then
    ``zone_device_folio_init(folio, pgmap, order)``.  None if anything fails.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    order = k.hpage_pmd_order() if is_large else 0
    rpage = None
    if mdevice.zone_device_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
        rpage = k.folio_alloc(0, order, "folio_alloc")
    lst = _free_folios(mdevice) if is_large else mdevice.free_pages
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    dpage = lst.get("mdevice->free_list")
    if dpage is not None:
        lst.set(dpage.zone_device_data.get("dpage->zone_device_data"), "mdevice->free_list")
        mdevice.calloc.set(mdevice.calloc.get("calloc") + (1 << order), "calloc += 1 << order")
        mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
    else:
        mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
        try:
            dpage = k.dmirror_allocate_chunk(mdevice, True, is_large)
        except OSError:
            dpage = None
        if dpage is None:
            if rpage is not None:
                k.put_page(rpage)
            return None
    k.zone_device_folio_init(dpage, dpage.pgmap, order)
    dpage.zone_device_data.set(rpage, "dpage->zone_device_data = rpage")
    return dpage


def _large_alloc_fails(mirror) -> bool:
    """HMM_DMIRROR_FLAG_FAIL_ALLOC: one-shot."""
    f = _flags(mirror)
    if f.get("dmirror->flags") & HMM_DMIRROR_FLAG_FAIL_ALLOC:
        f.set(f.peek() & ~HMM_DMIRROR_FLAG_FAIL_ALLOC, "dmirror->flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC")
        return True
    return False


@PATCH.define
def dmirror_devmem_free(k, page) -> None:
    """``dmirror_devmem_free()`` (``.folio_free``): free the backing folio; unless the chunk is
    being removed, ``cfree += nr`` and put the folio back on ``free_folios`` (large) or
    ``free_pages``.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    folio = page.head
    order = folio.order
    mdevice = dmirror_page_to_chunk(folio).mdevice
    rpage = folio.zone_device_data.get("BACKING_PAGE") if k.is_device_private_page(folio) else folio
    if rpage is not folio and rpage is not None:
        k.put_page(rpage)
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    if not dmirror_page_to_chunk(folio).remove.get("chunk->remove"):
        mdevice.cfree.set(mdevice.cfree.get("cfree") + (1 << order), "cfree += nr")
        lst = _free_folios(mdevice) if order else mdevice.free_pages
        folio.zone_device_data.set(lst.get("mdevice->free_list"), "folio->page.zone_device_data")
        lst.set(folio, "mdevice->free_list = folio")
    else:
        mdevice.removed_frees += 1
    mdevice.lock.unlock("spin_unlock(&mdevice->lock)")


@PATCH.define
def dmirror_devmem_folio_split(k, head, tail) -> None:
    """``dmirror_devmem_folio_split()`` (``.folio_split``): the new device folio ``tail`` gets
    its page of the backing folio (which is split with it) and the head's pgmap and mapping;
    ``tail == NULL`` ends the split.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    rpage = head.zone_device_data.peek() if k.is_device_private_page(head) else None
    if tail is None:
        if rpage is not None and rpage.order:               # the backing folio is split too
            for pfn in range(rpage.pfn + 1, rpage.pfn + (1 << rpage.order)):
                p = k.memmap[pfn]
                p.head = p
                k.set_page_count(p, 1, "dmirror_devmem_folio_split")
            tail1 = k.memmap[rpage.pfn + 1]           # page[1]'s _nr_pages word (v6.15+)
            if tail1.memcg_data is not None:
                tail1.memcg_data.set(0, "folio_split")
            rpage.order = 0
        return
    tail.pgmap = head.pgmap
    k.set_page_field(tail, "mapping", head.mapping.get("folio->mapping"), "dmirror_devmem_folio_split")
    if rpage is None:
        tail.zone_device_data.set(None, "tail->page.zone_device_data = NULL")
        return
    rtail = k.memmap[rpage.pfn + (tail.pfn - head.pfn)]
    tail.zone_device_data.set(rtail, "tail->page.zone_device_data = rpage_tail")
    rtail.zone_device_data.set(rpage.zone_device_data.get("rpage->zone_device_data"),
                               "rpage_tail->zone_device_data")


@PATCH.define
def dmirror_migrate_alloc_and_copy(k, args: migrate_vma, mirror) -> None:
    """``dmirror_migrate_alloc_and_copy()``: a compound source gets a PMD-order device folio
    (``MIGRATE_PFN_COMPOUND``) unless the large allocation fails (FAIL_ALLOC), then order-0 device
    pages for each of its pages; data copied or zeroed.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    mdevice = mirror.mdevice
    i = 0
    while i < args.npages:
        src = args.src[i]
        if not src & MIGRATE_PFN_MIGRATE:
            i += 1
            continue
        spage = migrate_pfn_to_page(k, src)
        if spage is not None and k.is_zone_device_page(spage):
            k.world.violate("dmirror_warn", "WARN: page already in device spage pfn", spage.pfn,
                            "dmirror_migrate_alloc_and_copy")
            i += 1
            continue
        nr = k.hpage_pmd_nr() if src & MIGRATE_PFN_COMPOUND else 1
        write = src & MIGRATE_PFN_WRITE or (spage is None and args.vma.vm_flags & VM_WRITE)
        dpage = None
        if nr > 1 and not _large_alloc_fails(mirror):
            dpage = k.dmirror_devmem_alloc_page(mdevice, True)
        if dpage is not None:
            rpage = BACKING_PAGE(k, dpage)
            for j in range(nr):
                rp = k.memmap[rpage.pfn + j]
                if spage is not None:
                    _copy_highpage(rp, k.memmap[spage.pfn + j])
                else:
                    rp.data.set(None, "clear_highpage")
                rp.zone_device_data.set(mirror, "rpage->zone_device_data = dmirror")
            args.dst[i] = migrate_pfn(dpage.pfn) | MIGRATE_PFN_COMPOUND | (MIGRATE_PFN_WRITE if write else 0)
            i += nr
            continue
        for j in range(nr):                                  # order-0 (the fallback too)
            dpage = k.dmirror_devmem_alloc_page(mdevice, False)
            if dpage is None:
                continue
            rpage = BACKING_PAGE(k, dpage)
            if spage is not None:
                _copy_highpage(rpage, k.memmap[spage.pfn + j])
            else:
                rpage.data.set(None, "clear_highpage")
            rpage.zone_device_data.set(mirror, "rpage->zone_device_data = dmirror")
            args.dst[i + j] = migrate_pfn(dpage.pfn) | (MIGRATE_PFN_WRITE if write else 0)
        i += nr


@PATCH.define
def dmirror_migrate_finalize_and_map(k, args: migrate_vma, mirror) -> int:
    """``dmirror_migrate_finalize_and_map()``: every page of a migrated device folio goes into
    the mirror (its backing page).
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    for i in range(args.npages):
        if not args.src[i] & MIGRATE_PFN_MIGRATE:
            continue
        dpage = migrate_pfn_to_page(k, args.dst[i])
        if dpage is None:
            continue
        nr = 1 << dpage.order if args.dst[i] & MIGRATE_PFN_COMPOUND else 1
        tag = DPT_XA_TAG_WRITE if args.dst[i] & MIGRATE_PFN_WRITE else 0
        entry = BACKING_PAGE(k, dpage)
        for j in range(nr):
            mirror.slot((args.start >> PAGE_SHIFT) + i + j).set((k.memmap[entry.pfn + j], tag), "xa_store")
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    return 0


@PATCH.define
def dmirror_migrate_to_device(k, mirror, cmd) -> int:
    """``dmirror_migrate_to_device()`` selecting SYSTEM | COMPOUND.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    def step(args):
        args.flags = MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND
        k.migrate_vma_setup(args)
        k.dmirror_migrate_alloc_and_copy(args, mirror)
        k.migrate_vma_pages(args)
        k.dmirror_migrate_finalize_and_map(args, mirror)
        k.migrate_vma_finalize(args)
    ret = th._vma_walk(k, mirror, cmd, step, PTRS_PER_PTE)
    if ret:
        return ret
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    bounce = th._bounce(k, start, cmd.npages)
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    ret = k.dmirror_do_read(mirror, start, end, bounce)
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    if ret == 0:
        cmd.ptr[: len(bounce["buf"])] = bounce["buf"]
    cmd.cpages = bounce["cpages"]
    return ret


@PATCH.define
def dmirror_devmem_fault_alloc_and_copy(k, args: migrate_vma, mirror) -> int:
    """``dmirror_devmem_fault_alloc_and_copy()``: a compound device source gets a same-order
    system folio (``MIGRATE_PFN_COMPOUND``) unless FAIL_ALLOC, then order-0 pages; the mirror's
    entries are erased and the data copied.  VM_FAULT_OOM if no page at all.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    i = 0
    while i < args.npages:
        src = args.src[i]
        spage = migrate_pfn_to_page(k, src)
        if spage is None or not src & MIGRATE_PFN_MIGRATE:
            i += 1
            continue
        if not (k.is_device_private_page(spage) or k.is_device_coherent_page(spage)):
            k.world.violate("dmirror_warn", "WARN_ON(!is_device_private_page(spage) && !is_device_coherent_page(spage))",
                            spage.pfn, "dmirror_devmem_fault_alloc_and_copy")
            i += 1
            continue
        nr = 1 << spage.order if src & MIGRATE_PFN_COMPOUND else 1
        rsrc = BACKING_PAGE(k, spage)
        w = MIGRATE_PFN_WRITE if src & MIGRATE_PFN_WRITE else 0
        dfolio = None
        if nr > 1 and not _large_alloc_fails(mirror):
            dfolio = k.folio_alloc(0, spage.order, "vma_alloc_folio")
        for j in range(nr):
            mirror.slot(((args.start >> PAGE_SHIFT) + i + j)).set(None, "xa_erase")
        if dfolio is not None:
            k.lock_page(dfolio)
            for j in range(nr):
                _copy_highpage(k.memmap[dfolio.pfn + j], k.memmap[rsrc.pfn + j])
            args.dst[i] = migrate_pfn(dfolio.pfn) | MIGRATE_PFN_COMPOUND | w
        else:
            for j in range(nr):
                dpage = k.alloc_page()
                k.lock_page(dpage)
                _copy_highpage(dpage, k.memmap[rsrc.pfn + j])
                args.dst[i + j] = migrate_pfn(dpage.pfn) | w
        i += nr
    return 0


@PATCH.define
def dmirror_migrate_to_system(k, mirror, cmd) -> int:
    """``dmirror_migrate_to_system()`` selecting this device's pages | COMPOUND.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    cmd.cpages = 0

    def step(args):
        args.flags = th.dmirror_select_device(mirror) | MIGRATE_VMA_SELECT_COMPOUND
        k.migrate_vma_setup(args)
        k.dmirror_devmem_fault_alloc_and_copy(args, mirror)
        k.migrate_vma_pages(args)
        cmd.cpages += sum((1 << migrate_pfn_to_page(k, s).order if s & MIGRATE_PFN_COMPOUND and
                           migrate_pfn_to_page(k, s) is not None else 1)
                          for s in args.src if s & th.MIGRATE_PFN_VALID and s & MIGRATE_PFN_MIGRATE)
        k.migrate_vma_finalize(args)
    return th._vma_walk(k, mirror, cmd, step, PTRS_PER_PTE)


@PATCH.define
def dmirror_devmem_fault(k, vmf) -> int:
    """``dmirror_devmem_fault()`` (``.migrate_to_ram``): through a PMD (``vmf->pte == NULL``)
    the whole folio's range, through a PTE the faulting page; COMPOUND selected.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    page = vmf.page
    rpage = page.head.zone_device_data.get("folio_zone_device_data(page_folio(vmf->page))")
    gone = rpage is None or k.is_zone_device_page(rpage) or k.page_is_buddy_free(rpage)
    mirror = None if gone else rpage.zone_device_data.get("rpage->zone_device_data")
    if gone or not isinstance(mirror, th.dmirror) or mirror.freed:
        k.world.violate("use_after_free",
                        "BUG: KASAN: use-after-free in dmirror_devmem_fault (the device page was freed "
                        "under migrate_to_ram: zone_device_data is stale)", page.pfn, "dmirror_devmem_fault")
        return VM_FAULT_SIGBUS
    if vmf.pmd:
        size = PAGE_SIZE << page.head.order
        start = vmf.address & ~(size - 1)
    else:
        size, start = PAGE_SIZE, vmf.address & ~(PAGE_SIZE - 1)
    args = migrate_vma(vma=vmf.vma, start=start, end=start + size, pgmap_owner=mirror.mdevice,
                       flags=th.dmirror_select_device(mirror) | MIGRATE_VMA_SELECT_COMPOUND, fault_page=page)
    try:
        k.migrate_vma_setup(args)
    except OSError:
        return VM_FAULT_SIGBUS
    ret = k.dmirror_devmem_fault_alloc_and_copy(args, mirror)
    if ret:
        return ret
    k.migrate_vma_pages(args)
    k.migrate_vma_finalize(args)
    return 0


@PATCH.define
def dmirror_fops_unlocked_ioctl(k, filp, command: int, cmd):
    """``dmirror_fops_unlocked_ioctl()`` with HMM_DMIRROR_FLAGS (``dmirror->flags = cmd.npages``).
    Kernel: lib/test_hmm.c, as "lib/test_hmm: add large page allocation failure testing" (v6.19
    series) has it."""
    if command == HMM_DMIRROR_FLAGS and not filp.closed and filp.private_data is not None:
        _flags(filp.private_data).set(cmd.npages, "dmirror->flags = cmd.npages")
        cmd.cpages, cmd.faults = 0, 0
        return cmd
    return th.dmirror_fops_unlocked_ioctl(k, filp, command, cmd)


@PATCH.define
def dmirror_device_remove_chunks(k, mdevice) -> None:
    """``dmirror_device_remove_chunks()``: as before, and ``free_folios`` emptied too.
    Kernel: lib/test_hmm.c, as 775465fd26a3 (v6.19) has it."""
    th.dmirror_device_remove_chunks(k, mdevice)
    _free_folios(mdevice).set(None, "mdevice->free_folios = NULL")

