"""DRM pagemap (drivers/gpu/drm/drm_pagemap.c, include/drm/drm_pagemap.h; v6.15+), the
device-private memory layer under DRM GPU SVM (Intel Xe; kernel_2025_2026.md §4).

Read: drivers/gpu/drm/drm_pagemap.c in torvalds/linux @10dd1eaa80a5 (before the 2026 fixes
modelled below) and in linux-mm/linux-mm @0915bb15c709 (after df72e55e754c and 9e6372ec2a39).

The objects and the references between them, which is what a driver author has to get right:

* ``drm_pagemap`` -- kref'ed (``drm_pagemap_get/put``); owns the ``dev_pagemap`` of the device
  memory.
* ``drm_pagemap_devmem`` -- one device-memory allocation (an Xe BO): its device pfns, the ``mm``
  it serves, the ``detached`` completion, the driver's ``devmem_release``.
* ``drm_pagemap_zdd`` -- the "zone device data" each device page's ``zone_device_data`` points
  to: a kref, the devmem allocation it owns ("Owns ref": the last zdd put releases the
  allocation and completes ``detached``) and a reference on the ``drm_pagemap``.  The migration
  holds one zdd reference and each device page one (``drm_pagemap_get_devmem_page``); the
  page's is dropped by the free callback (``page_free``; ``folio_free`` from v6.19).  The stored
  sources release the zdd synchronously from the last put (``drm_pagemap_zdd_destroy``): the
  deferred part is the driver's (``devmem_release``; the drm_device put goes through
  ``drm_pagemap_dev_unhold_work``).  An older form queued ``destroy_work``; not read, not modelled.

Paths: ``drm_pagemap_migrate_to_devmem`` (migrate_vma_* with a zdd per page),
``drm_pagemap_migrate_to_ram`` (the ``migrate_to_ram`` callback: the CPU fault migrates the pages
of the faulting page's allocation back), ``drm_pagemap_evict_to_ram`` (``migrate_device_pfns``
over the allocation, retried until ``detached``).

Lifetime checks (violations): a zdd put below zero (``kref_underflow``), a page whose
``zone_device_data`` names a destroyed zdd (``use_after_free``), an allocation released while
one of its device pages still points to it (``devmem_freed_in_use``), a DMA unmap of a page
already freed (``use_after_free``), reading a folio's order after the last ``put_page``
(``use_after_free``).

Driver versions: ``DrmPagemapDriver(..., fixes=...)`` names the 2026 fixes the driver has
(all by default): df72e55e754c "drm/pagemap: Fix folio allocation fallback and use-after-put",
9e6372ec2a39 "drm/pagemap: dma-unmap pages before handling migration errors".
"""

from __future__ import annotations

import errno
from typing import Any

from .....sync import Atomic, Completion, Var
from ....include.memremap import MEMORY_DEVICE_PRIVATE, dev_pagemap, dev_pagemap_ops
from ....mm.memory import VM_FAULT_SIGBUS
from ....mm.migrate_device import (MIGRATE_PFN_MIGRATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT,
                                  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_SYSTEM, migrate_pfn,
                                  migrate_pfn_to_page, migrate_vma)
from ....mm.mmap import PAGE_SIZE, find_vma, vma_is_anonymous

#: the 2026 drm_pagemap fixes a driver version may carry
FIX_USE_AFTER_PUT = "df72e55e754c"       # drm/pagemap: Fix folio allocation fallback and use-after-put
FIX_DMA_UNMAP_FIRST = "9e6372ec2a39"     # drm/pagemap: dma-unmap pages before handling migration errors
DRM_PAGEMAP_FIXES = (FIX_USE_AFTER_PUT, FIX_DMA_UNMAP_FIRST)


class drm_pagemap:
    """``struct drm_pagemap``: kref'ed, owns the ``dev_pagemap`` (``pagemap``)."""

    def __init__(self, pagemap, name: str) -> None:
        self.name = name
        self.ref = Atomic(1, f"{name}.ref")          # kref_init in drm_pagemap_init
        self.pagemap = pagemap

    def _zd_key(self) -> tuple:
        return ("drm_pagemap", self.name)


class drm_pagemap_devmem:
    """``struct drm_pagemap_devmem``: one device-memory allocation."""

    def __init__(self, drv, mm, npages: int, name: str) -> None:
        self.drv = drv
        self.mm = mm
        self.dpagemap = drv.dpagemap
        self.npages = npages
        self.size = npages * PAGE_SIZE
        self.name = name
        self.pfns: tuple = ()                          # the VRAM pages backing it (the BO)
        self.detached = Completion(f"{name}.detached")
        #: the driver object behind the allocation (an Xe BO) is refcounted: the zdd owns one
        #: reference ("Owns ref"), an evictor (TTM) holds its own while it evicts
        self.bo_ref = Atomic(1, f"{name} bo refcount")
        self.released = Var(False, f"{name} released")

    def _zd_key(self) -> tuple:
        return ("devmem", self.name)


class drm_pagemap_zdd:
    """``struct drm_pagemap_zdd``: what a device page's ``zone_device_data`` points to."""

    def __init__(self, dpagemap, name: str) -> None:
        self.name = name
        self.refcount = Atomic(1, f"{name}.refcount")   # kref_init
        self.devmem_allocation = None
        self.dpagemap = dpagemap
        self.freed = Var(False, f"{name} freed")

    def _zd_key(self) -> tuple:
        return ("zdd", self.name)


# --- drm_pagemap and zdd references ----------------------------------------------------------------

def drm_pagemap_get(k, dpagemap):
    """``drm_pagemap_get()``: kref_get."""
    dpagemap.ref.add_return(1, "drm_pagemap_get")
    return dpagemap


def drm_pagemap_put(k, dpagemap) -> None:
    """``drm_pagemap_put()``: kref_put; the last put releases it (``drm_pagemap_release``)."""
    n = dpagemap.ref.sub_return(1, "drm_pagemap_put")
    if n < 0:
        k.world.violate("kref_underflow", "refcount_t: underflow; use-after-free.", None,
                        f"drm_pagemap_put: {dpagemap.name}")


def drm_pagemap_zdd_alloc(k, drv, dpagemap):
    """``drm_pagemap_zdd_alloc()``: kref 1, a reference on the drm_pagemap."""
    drv.nr_zdd += 1
    zdd = drm_pagemap_zdd(dpagemap, f"zdd{drv.nr_zdd}")
    drm_pagemap_get(k, dpagemap)
    drv.zdds.append(zdd)
    return zdd


def drm_pagemap_zdd_get(k, zdd):
    """``drm_pagemap_zdd_get()``: kref_get."""
    if zdd.freed.get("drm_pagemap_zdd_get"):
        k.world.violate("use_after_free", "BUG: KASAN: slab-use-after-free in drm_pagemap_zdd_get", None, zdd.name)
    zdd.refcount.add_return(1, "kref_get")
    return zdd


def drm_pagemap_zdd_put(k, zdd) -> None:
    """``drm_pagemap_zdd_put()``: kref_put; at 0 ``drm_pagemap_zdd_destroy``."""
    n = zdd.refcount.sub_return(1, "kref_put")
    if n < 0:
        k.world.violate("kref_underflow", "refcount_t: underflow; use-after-free.", None,
                        f"drm_pagemap_zdd_put: {zdd.name}")
    elif n == 0:
        drm_pagemap_zdd_destroy(k, zdd)


def drm_pagemap_zdd_destroy(k, zdd) -> None:
    """``drm_pagemap_zdd_destroy()``: complete ``detached`` and release the devmem allocation
    the zdd owns, free the zdd, drop its drm_pagemap reference."""
    devmem = zdd.devmem_allocation
    if devmem is not None:
        devmem.detached.complete_all("complete_all(&devmem->detached)")
        devmem.drv.devmem_release(devmem)
    zdd.freed.set(True, "kfree(zdd)")
    drm_pagemap_put(k, zdd.dpagemap)


def drm_pagemap_page_zone_device_data(k, page):
    """``page->zone_device_data`` as a zdd; a destroyed one is a use after free."""
    zdd = page.zone_device_data.get("page->zone_device_data")
    if zdd is None or zdd.freed.get("zdd->refcount"):
        k.world.violate("use_after_free",
                        "BUG: KASAN: slab-use-after-free: page->zone_device_data points to a freed drm_pagemap_zdd",
                        page.pfn, "drm_pagemap_page_zone_device_data")
        return None
    return zdd


def drm_pagemap_get_devmem_page(k, page, zdd) -> None:
    """``drm_pagemap_get_devmem_page()``: init the device page (refcount 1, locked, a pgmap
    reference) and point its ``zone_device_data`` at the zdd, taking a zdd reference."""
    k.zone_device_page_init(page)
    k.set_page_field(page, "zone_device_data", drm_pagemap_zdd_get(k, zdd), "drm_pagemap_get_devmem_page")


def drm_pagemap_migration_unlock_put_pages(k, npages: int, mpfns: list) -> None:
    """``drm_pagemap_migration_unlock_put_pages()``: unlock and put each destination page."""
    for i in range(npages):
        page = migrate_pfn_to_page(k, mpfns[i])
        if page is None:
            continue
        k.unlock_page(page)
        k.put_page(page)
        mpfns[i] = 0


# --- DMA mapping (what the device copies through) ---------------------------------------------------

def drm_pagemap_migrate_map_pages(k, drv, mpfns: list, npages: int) -> list:
    """``drm_pagemap_migrate_map_(system_)pages()``: dma-map each page (no page reference:
    the mapping lives only as long as the caller's own reference)."""
    mapped = []
    for i in range(npages):
        page = migrate_pfn_to_page(k, mpfns[i])
        if page is None:
            continue
        drv.dma_mapped.set(drv.dma_mapped.get("dma_map_page") + (page.pfn,), "dma_map_page")
        mapped.append(page)
    return mapped


def drm_pagemap_migrate_unmap_pages(k, drv, mapped: list) -> None:
    """``drm_pagemap_migrate_unmap_pages()``: dma-unmap what was mapped.  Unmapping a page that
    was already freed means the IOMMU mapped freed memory in between (the device could have
    written it)."""
    for page in mapped:
        if k.page_is_buddy_free(page):
            k.world.violate("use_after_free",
                            "dma_unmap_page() of a page already freed: the device kept a DMA mapping of "
                            "freed memory (fixed by 9e6372ec2a39)", page.pfn, "drm_pagemap_migrate_unmap_pages")
        cur = drv.dma_mapped.get("dma_unmap_page")
        drv.dma_mapped.set(tuple(p for p in cur if p != page.pfn), "dma_unmap_page")


# --- migration to device ------------------------------------------------------------------------------

def drm_pagemap_migrate_to_devmem(k, devmem, mm, start: int, end: int) -> int:
    """``drm_pagemap_migrate_to_devmem()``: migrate [start, end) of ``mm`` into ``devmem``
    (the caller's allocation reference is consumed).  mmap_lock held for read."""
    drv = devmem.drv
    dpagemap = devmem.dpagemap
    pagemap = dpagemap.pagemap
    npages = (end - start) // PAGE_SIZE
    vas = find_vma(mm, start, "vma_lookup")
    if vas is None or vas.vm_start > start or end > vas.vm_end or not vma_is_anonymous(vas):
        drv.devmem_release(devmem)
        return -errno.EINVAL
    zdd = drm_pagemap_zdd_alloc(k, drv, dpagemap)
    zdd.devmem_allocation = devmem            # "Owns ref"
    args = migrate_vma(vma=vas, start=start, end=end, pgmap_owner=pagemap.owner,
                       flags=MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_COHERENT)
    err = 0
    try:
        k.migrate_vma_setup(args)
    except OSError as e:
        drm_pagemap_zdd_put(k, zdd)
        return -e.errno
    if not args.cpages:
        drm_pagemap_zdd_put(k, zdd)
        return -errno.EBUSY
    if args.cpages != npages:                  # all or nothing
        err = -errno.EBUSY
    else:
        dst = drv.populate_devmem_pfn(devmem, npages)
        pages = []
        for i in range(npages):
            page = k.pfn_to_page(dst[i])
            drm_pagemap_get_devmem_page(k, page, zdd)
            args.dst[i] = migrate_pfn(page.pfn)
            pages.append(page)
        srcs = [(migrate_pfn_to_page(k, args.src[i]), pages[i]) for i in range(npages)]
        mapped = drm_pagemap_migrate_map_pages(k, drv, args.src, npages)
        drv.copy_to_devmem(srcs)
        drm_pagemap_migrate_unmap_pages(k, drv, mapped)
    k.migrate_vma_pages(args)
    if not err and any(not s & MIGRATE_PFN_MIGRATE for s in args.src[:npages]):
        err = -errno.EBUSY                     # "Raced while finalizing migration."
    k.migrate_vma_finalize(args)
    drm_pagemap_zdd_put(k, zdd)
    return err


# --- migration to RAM -------------------------------------------------------------------------------

def drm_pagemap_migrate_populate_ram_pfn(k, drv, fault_page, npages: int, src: list, dst: list) -> tuple[int, int]:
    """``drm_pagemap_migrate_populate_ram_pfn()``: a locked system page for each page to
    migrate (for a CPU fault: only the pages of the faulting page's allocation).  Returns
    ``(err, mpages)``.  On an allocation failure every page allocated so far is put: before
    df72e55e754c the loop read the folio's order *after* ``put_page`` -- a use after put."""
    fault_zdd = fault_page.zone_device_data.get("fault_page->zone_device_data") if fault_page is not None else None
    for i in range(npages):
        if not src[i] & MIGRATE_PFN_MIGRATE:
            continue
        spage = migrate_pfn_to_page(k, src[i])
        if spage is None:
            continue
        if fault_page is not None and spage.zone_device_data.get("src_page->zone_device_data") is not fault_zdd:
            continue
        page = drv.folio_alloc()
        if page is None:
            return _populate_ram_free_pages(k, drv, npages, dst), 0
        dst[i] = migrate_pfn(page.pfn)
    mpages = 0
    for i in range(npages):
        page = migrate_pfn_to_page(k, dst[i])
        if page is None:
            continue
        k.trylock_page(page, "folio_trylock")      # a fresh page: WARN_ON_ONCE(!folio_trylock()) never fires
        mpages += 1
    return 0, mpages


def _populate_ram_free_pages(k, drv, npages: int, dst: list) -> int:
    """The ``free_pages:`` label: put every page allocated so far; -ENOMEM."""
    for i in range(npages):
        page = migrate_pfn_to_page(k, dst[i])
        if page is None:
            continue
        if drv.has_fix(FIX_USE_AFTER_PUT):
            k.compound_order(page)             # folio_order() before the put
            k.put_page(page)
            dst[i] = 0
        else:
            k.put_page(page)
            dst[i] = 0
            # "order = folio_order(page_folio(page));" after the put: the folio may be free
            # already (and reallocated, with another order, by another CPU)
            if k.page_is_buddy_free(page):
                k.world.violate("use_after_free",
                                "folio_order(page_folio(page)) after put_page(page): the folio was freed "
                                "(drm/pagemap use-after-put, fixed by df72e55e754c)", page.pfn,
                                "drm_pagemap_migrate_populate_ram_pfn")
            k.compound_order(page)
    return -errno.ENOMEM


def __drm_pagemap_migrate_to_ram(k, vas, page, fault_addr: int, size: int) -> int:
    """``__drm_pagemap_migrate_to_ram()``: migrate the faulting page's allocation (the
    ``size``-aligned range around ``fault_addr``, clipped to the VMA) back to system memory."""
    zdd = drm_pagemap_page_zone_device_data(k, page)
    if zdd is None:
        return -errno.EFAULT
    drv = zdd.devmem_allocation.drv
    start = fault_addr - fault_addr % size
    end = start + size
    start, end = max(start, vas.vm_start), min(end, vas.vm_end)
    npages = (end - start) // PAGE_SIZE
    args = migrate_vma(vma=vas, start=start, end=end, pgmap_owner=page.pgmap.owner,
                       flags=MIGRATE_VMA_SELECT_DEVICE_PRIVATE | MIGRATE_VMA_SELECT_DEVICE_COHERENT,
                       fault_page=page)
    try:
        k.migrate_vma_setup(args)
    except OSError as e:
        return -e.errno
    if not args.cpages:                        # "Raced with another CPU fault, nothing to do"
        return 0
    err, mpages = drm_pagemap_migrate_populate_ram_pfn(k, drv, page, npages, args.src, args.dst)
    mapped = []
    if not err:
        mapped = drm_pagemap_migrate_map_pages(k, drv, args.dst, npages)
        err = drv.copy_to_ram(args.src, args.dst, npages)
    err = _finalize_errors(k, drv, err, mapped, npages, args.dst)
    k.migrate_vma_pages(args)
    k.migrate_vma_finalize(args)
    return err


def _finalize_errors(k, drv, err: int, mapped: list, npages: int, dst: list) -> int:
    """The ``err_finalize:`` label.  From 9e6372ec2a39 the pages are dma-unmapped first and only
    then, on an error, unlocked and put; before it they were put (and freed) while still
    mapped and unmapped after."""
    if drv.has_fix(FIX_DMA_UNMAP_FIRST):
        drm_pagemap_migrate_unmap_pages(k, drv, mapped)
        if err:
            drm_pagemap_migration_unlock_put_pages(k, npages, dst)
    else:
        if err:
            drm_pagemap_migration_unlock_put_pages(k, npages, dst)
        drm_pagemap_migrate_unmap_pages(k, drv, mapped)
    return err


def drm_pagemap_migrate_to_ram(k, vmf) -> int:
    """``drm_pagemap_migrate_to_ram()`` (``dev_pagemap_ops.migrate_to_ram``): SIGBUS on
    failure."""
    zdd = drm_pagemap_page_zone_device_data(k, vmf.page)
    if zdd is None:
        return VM_FAULT_SIGBUS
    err = __drm_pagemap_migrate_to_ram(k, vmf.vma, vmf.page, vmf.address, zdd.devmem_allocation.size)
    return VM_FAULT_SIGBUS if err else 0


def drm_pagemap_folio_free(k, folio) -> None:
    """``drm_pagemap_folio_free()`` (``folio_free``; ``page_free`` before v6.19): drop the page's
    zdd reference."""
    zdd = drm_pagemap_page_zone_device_data(k, folio)
    if zdd is not None:
        drm_pagemap_zdd_put(k, zdd)


def drm_pagemap_folio_split(k, orig_folio, new_folio) -> None:
    """``drm_pagemap_folio_split()`` (``dev_pagemap_ops.folio_split``, v6.19+): the new folio gets
    the pgmap and its own zdd reference (every piece frees -- and puts -- once)."""
    if new_folio is None:
        return
    new_folio.pgmap = orig_folio.pgmap
    zdd = drm_pagemap_page_zone_device_data(k, orig_folio)
    if zdd is not None:
        k.set_page_field(new_folio, "zone_device_data", drm_pagemap_zdd_get(k, zdd), "folio_set_zone_device_data")


# --- eviction -----------------------------------------------------------------------------------------

def drm_pagemap_evict_to_ram(k, devmem) -> int:
    """``drm_pagemap_evict_to_ram()``: migrate every page of the allocation back to system
    memory by pfn (``migrate_device_pfns``, no mmap lock); retry (twice) until the allocation is
    ``detached`` (its zdd destroyed)."""
    drv = devmem.drv
    npages = devmem.npages
    err = 0
    for attempt in range(3):                  # the kernel's own bound: retry_count = 2
        if not k.mmget_not_zero(devmem.mm):
            return -errno.EFAULT
        src = list(drv.populate_devmem_pfn(devmem, npages))
        k.migrate_device_pfns(src, npages)
        dst = [0] * npages
        err, mpages = drm_pagemap_migrate_populate_ram_pfn(k, drv, None, npages, src, dst)
        mapped = []
        if not err and mpages:
            mapped = drm_pagemap_migrate_map_pages(k, drv, dst, npages)
            err = drv.copy_to_ram(src, dst, npages)
        err = _finalize_errors(k, drv, err, mapped, npages, dst)
        k.migrate_device_pages(src, dst, npages)
        k.migrate_device_finalize(src, dst, npages)
        k.mmput(devmem.mm)                    # mmput_async
        if devmem.detached.completion_done("completion_done(&devmem->detached)"):
            return 0
    return err or -errno.EBUSY


# --- the driver (an Xe-like user of drm_pagemap) -------------------------------------------------------

class DrmPagemapDriver:
    """A GPU driver on drm_pagemap, as Xe uses it: one ``dev_pagemap`` of VRAM (device
    private), a ``drm_pagemap`` over it, VRAM allocations (``drm_pagemap_devmem``) from a free
    list, and the devmem ops (``populate_devmem_pfn``, ``copy_to_devmem``, ``copy_to_ram``,
    ``devmem_release``).

    ``fixes``: the drm_pagemap fixes this driver version has (``DRM_PAGEMAP_FIXES`` by default).
    Fault injection, for the error paths: ``fail_folio_alloc_after`` (that many system folio
    allocations succeed, then they fail), ``fail_copy_to_ram`` (the copy engine fails)."""

    def __init__(self, k, nr_pages: int = 4, fixes=DRM_PAGEMAP_FIXES, name: str = "xe") -> None:
        self.k = k
        self.name = name
        self.fixes = set(fixes)
        self.fail_folio_alloc_after: int | None = None
        self.fail_copy_to_ram = False
        ops = dev_pagemap_ops()
        if k.fact("folio_free"):
            ops.folio_free = self._folio_free
        else:
            ops.page_free = self._folio_free
        ops.migrate_to_ram = lambda vmf: drm_pagemap_migrate_to_ram(k, vmf)
        if k.fact("folio_free"):
            ops.folio_split = lambda orig, new: drm_pagemap_folio_split(k, orig, new)
        self.pgmap = dev_pagemap(MEMORY_DEVICE_PRIVATE, nr_pages, ops=ops, owner=self, name=f"{name} vram")
        self.dpagemap = None
        self.vram = Var((), f"{name} vram free list")
        self.dma_mapped = Var((), f"{name} dma mappings")
        self.zdds: list = []
        self.nr_zdd = 0
        self.nr_devmem = 0
        self.released: list = []

    def has_fix(self, commit: str) -> bool:
        return commit in self.fixes

    # --- probe -----------------------------------------------------------------------------------
    def probe(self) -> None:
        """``devm_memremap_pages`` of the VRAM, then ``drm_pagemap_init``."""
        self.k.memremap_pages(self.pgmap)
        self.dpagemap = drm_pagemap(self.pgmap, f"{self.name} drm_pagemap")
        self.vram.set(tuple(p.pfn for p in self.pgmap.pages), "probe")

    def _folio_free(self, folio) -> None:
        drm_pagemap_folio_free(self.k, folio)

    # --- devmem ops ------------------------------------------------------------------------------
    def devmem_alloc(self, mm, npages: int):
        """An allocation of ``npages`` VRAM pages (an Xe BO) for ``mm``; None when VRAM is full."""
        free = self.vram.get("xe_bo_create")
        if len(free) < npages:
            return None
        self.vram.set(free[npages:], "xe_bo_create")
        self.nr_devmem += 1
        devmem = drm_pagemap_devmem(self, mm, npages, f"{self.name} devmem{self.nr_devmem}")
        devmem.pfns = free[:npages]
        return devmem

    def populate_devmem_pfn(self, devmem, npages: int) -> list:
        """``populate_devmem_pfn``: the allocation's device pfns."""
        if devmem.released.get("populate_devmem_pfn"):
            self.k.world.violate("use_after_free", "BUG: KASAN: use-after-free: populate_devmem_pfn on a "
                                 "released devmem allocation", None, devmem.name)
        return list(devmem.pfns[:npages])

    def copy_to_devmem(self, pairs) -> int:
        """``copy_to_devmem``: system (or zero) page -> VRAM page."""
        for spage, dpage in pairs:
            dpage.data.set(spage.data.get("copy_to_devmem") if spage is not None else None, "copy_to_devmem")
        return 0

    def copy_to_ram(self, src: list, dst: list, npages: int) -> int:
        """``copy_to_ram``: VRAM page -> system page."""
        if self.fail_copy_to_ram:
            return -errno.EIO
        for i in range(npages):
            s, d = migrate_pfn_to_page(self.k, src[i]), migrate_pfn_to_page(self.k, dst[i])
            if s is not None and d is not None:
                d.data.set(s.data.get("copy_to_ram"), "copy_to_ram")
        return 0

    def devmem_get(self, devmem) -> None:
        """A reference on the allocation's driver object (``xe_bo_get``): TTM holds one while it
        evicts."""
        if devmem.released.get("xe_bo_get"):
            self.k.world.violate("use_after_free", "BUG: KASAN: use-after-free: xe_bo_get on a freed BO", None,
                                 devmem.name)
        devmem.bo_ref.add_return(1, "xe_bo_get")

    def devmem_release(self, devmem) -> None:
        """``devmem_release`` (Xe: ``xe_svm_devmem_release`` -> put the BO): drops the reference
        the zdd owned."""
        self.devmem_put(devmem)

    def devmem_put(self, devmem) -> None:
        """``xe_bo_put``: the last reference frees the VRAM (back to the free list).  Freeing it
        while a device page still points to it is what a driver must never do."""
        k = self.k
        n = devmem.bo_ref.sub_return(1, "xe_bo_put")
        if n < 0:
            k.world.violate("kref_underflow", "refcount_t: underflow; use-after-free. (xe_bo_put)", None, devmem.name)
        if n != 0:
            return
        for pfn in devmem.pfns:
            page = k.pfn_to_page(pfn)
            zdd = page.zone_device_data.peek()
            if page._refcount.peek() > 0 and zdd is not None and zdd.devmem_allocation is devmem:
                k.world.violate("devmem_freed_in_use",
                                "device memory freed while a device page's zone_device_data still owns the allocation",
                                pfn, devmem.name)
        devmem.released.set(True, "xe_bo_free")
        self.released.append(devmem.name)
        self.vram.set(self.vram.get("xe_bo_free") + devmem.pfns, "xe_bo_free")

    def folio_alloc(self):
        """``vma_alloc_folio``/``folio_alloc`` for migration to RAM, with fault injection."""
        if self.fail_folio_alloc_after is not None:
            if self.fail_folio_alloc_after <= 0:
                return None
            self.fail_folio_alloc_after -= 1
        return self.k.alloc_page()

    # --- state for checks ----------------------------------------------------------------------------
    def zdd_refs(self) -> int:
        """References still held on live zdds (0 when every device page is freed)."""
        return sum(z.refcount.peek() for z in self.zdds if not z.freed.peek())


__all__ = ["DRM_PAGEMAP_FIXES", "DrmPagemapDriver", "FIX_DMA_UNMAP_FIRST", "FIX_USE_AFTER_PUT", "drm_pagemap",
           "drm_pagemap_devmem", "drm_pagemap_evict_to_ram", "drm_pagemap_folio_free", "drm_pagemap_migrate_to_devmem",
           "drm_pagemap_migrate_to_ram", "drm_pagemap_zdd", "drm_pagemap_zdd_get", "drm_pagemap_zdd_put"]
