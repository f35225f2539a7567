"""A small DAX file system: the paths ext4 and xfs run on a ``dax=always`` mount of a pmem
device (fs/dax.c, fs/xfs/xfs_file.c, fs/xfs/xfs_iops.c, fs/ext4/inode.c, mm/truncate.c), and a
regular (non-DAX) file whose O_DIRECT I/O uses a DAX mapping as its buffer (the GUP
xfstests generic/413 makes).

Not one kernel file: the smallest file system with the shape of xfs's DAX paths.

* **Files.**  ``daxfs_inode``: ``i_size`` (pages), the block map (index -> pmem pfn, or a hole),
  the DAX page cache (``address_space.i_pages``: index -> :class:`~zonedev.linux.fs.dax.dax_entry`),
  ``i_mmap`` (the VMAs mapping the file: ``mapping_mapped``), MMAPLOCK (``i_mmaplock``, an
  rw-semaphore: faults take it shared, truncate and hole punch exclusive -- xfs's
  ``XFS_MMAPLOCK_*``, ext4's ``i_mmap_sem``/``invalidate_lock``).  Blocks come from the pmem
  device's pages (``daxfs_super``).
* **Faults** (``dax_iomap_fault``; PMD-sized on a mount with ``pmd_order``, see
  ``dax_iomap_pmd_fault``): a read of a hole maps the zero page and
  stores a zero entry (``dax_load_hole``); otherwise the block is allocated if needed, the
  entry stored and associated (``dax_insert_entry`` -> ``dax_associate_entry``), and the page
  mapped by the era's ``dax_insert_pfn``: before v6.15 ``vmf_insert_mixed`` -> ``insert_pfn``
  makes a **devmap PTE** that takes no page reference and no mapcount (``vm_normal_page`` is
  NULL for it, so zap drops nothing); v6.15 ``vmf_insert_page_mkwrite`` (c_38607c62b3).  A
  write to a hole mapped to the zero page unmaps the zero page first.
* **truncate / hole punch** (xfs_setattr_size, xfs_file_fallocate(PUNCH_HOLE)): MMAPLOCK
  exclusive, ``xfs_break_dax_layouts`` -- ``dax_layout_busy_page_range`` and, for a busy page,
  ``___wait_var_event`` with MMAPLOCK dropped around ``schedule()`` (``xfs_wait_dax_page``),
  retried until nothing is busy -- then ``truncate_pagecache_range`` (unmap, delete the DAX
  entries: ``dax_disassociate_entry``) and the blocks go back to the allocator.
* **O_DIRECT** on a regular file (``blkdev_direct_IO``): the user buffer's pages are grabbed
  with ``pin_user_pages_fast`` (FOLL_PIN) or ``get_user_pages_fast`` (FOLL_GET), the data
  copied, and the pages released at bio completion (``unpin_user_page``/``put_page``).  Block
  DIO took FOLL_GET references until ``iov_iter_extract_pages`` (a7e689dd1c06, v6.5) and pins
  after; the caller says which (``gup="pin"|"get"``), the default is the kernel's
  (``dio_default_gup``).
"""

from __future__ import annotations

import errno

from ...sync import Lock, Var
from ..include.mm import FOLL_WRITE
from ..mm.memory import FAULT_FLAG_WRITE, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS
from ..mm.mmap import PAGE_SHIFT, PTE_PRESENT, Pte, RwSem, _split, err, linear_page_index, next_id
from .dax import DAX_ENTRY_PAGE, DAX_ZERO_PAGE, dax_entry


class address_space:
    """``struct address_space`` of a DAX file: the DAX entries and the VMAs mapping it."""

    def __init__(self, host) -> None:
        self.host = host
        tag = f"{host.name}.i_mapping"
        self.i_pages = Var((), f"{tag}.i_pages")        # sorted ((index, dax_entry), ...)
        self.xa_lock = Lock(f"{tag}.xa_lock")
        self.i_mmap = Var((), f"{tag}.i_mmap")          # the VMAs (vma_interval_tree)

    def _zd_key(self) -> tuple:
        return ("address_space", self.host.name)

    def lookup(self, index: int, label: str = "xa_load"):
        """``xa_load``: the entry covering ``index`` (a PMD entry covers ``1 << order``
        indices from its first) or None."""
        for i, e in self.i_pages.get(label):
            if i <= index < i + (1 << e.order):
                return e
        return None

    def store(self, index: int, entry, label: str = "xa_store") -> None:
        """``xas_store``: put ``entry`` at ``index``, its first index (None erases)."""
        cur = tuple((i, e) for i, e in self.i_pages.get(label) if i != index)
        if entry is not None:
            cur = tuple(sorted(cur + ((index, entry),), key=lambda ie: ie[0]))
        self.i_pages.set(cur, label)

    def entries_in(self, start: int, last: int, label: str = "xas_for_each"):
        """``xas_for_each``: the (first index, entry) pairs of the entries meeting [start, last]."""
        return [(i, e) for i, e in self.i_pages.get(label) if i <= last and i + (1 << e.order) - 1 >= start]

    def __repr__(self) -> str:
        return f"<address_space of {self.host.name}>"


class daxfs_super:
    """The mounted file system: the pmem pgmap its blocks live in and the free blocks.
    ``pmd_order`` > 0 lets faults map ``1 << pmd_order`` pages at once (DAX PMD faults;
    ``PMD_ORDER`` is 9 on x86-64, scenarios use a small order to stay small); 0 maps PTEs only."""

    def __init__(self, k, pgmap, pmd_order: int = 0) -> None:
        self.pgmap = pgmap
        self.pmd_order = pmd_order
        self.free = Var(tuple(p.pfn for p in pgmap.pages), f"{pgmap.name} daxfs free blocks")
        #: blocks owned by more than one file (reflink): ((pfn, owners), ...), xfs's refcount btree
        self.shared = Var((), f"{pgmap.name} daxfs refcount btree")

    def _zd_key(self) -> tuple:
        return ("daxfs", self.pgmap.name)


class daxfs_inode:
    """A regular file on the DAX mount (``IS_DAX(inode)``): also what ``do_mmap`` gets as the
    VMA's file (``vm_ops`` "dax": ``vma_is_dax``; ``fsdax``: ``vma_is_fsdax``)."""

    vm_ops = "dax"
    fsdax = True

    def __init__(self, sb: daxfs_super, name: str) -> None:
        self.sb = sb
        self.name = name
        self.i_size = Var(0, f"{name}.i_size")
        self.i_blocks = Var((), f"{name}.blocks")       # per index: pfn or None (a hole)
        self.i_mmaplock = RwSem(f"{name}.MMAPLOCK")
        self.i_mapping = address_space(self)

    def _zd_key(self) -> tuple:
        return ("daxfs_inode", self.name)

    def __repr__(self) -> str:
        return f"<daxfs inode {self.name} size={self.i_size.peek()}>"

    # --- what the mm calls on the file --------------------------------------------------------
    def mmap(self, k, vma) -> None:
        """``xfs_file_mmap``/``ext4_file_mmap`` + ``vma_link``: the VMA joins ``i_mmap``."""
        m = self.i_mapping
        m.i_mmap.set(m.i_mmap.get("vma_link") + (vma,), "vma_interval_tree_insert")

    def fault(self, k, vmf) -> int:
        """``vm_ops->fault`` (and ``->pfn_mkwrite``): ``xfs_filemap_fault``."""
        return k.dax_iomap_fault(vmf)

    def unlink_vma(self, k, mm, start: int, end: int) -> None:
        """munmap of [start, end) in ``mm``: the VMAs leave ``i_mmap`` (split pieces stay)."""
        m = self.i_mapping
        mine = [v for v in m.i_mmap.get("vma_unlink") if v.vm_mm is mm]
        others = [v for v in m.i_mmap.get("vma_unlink") if v.vm_mm is not mm]
        outside, _ = _split(mine, start, end)
        m.i_mmap.set(tuple(others + outside), "vma_interval_tree_remove")


class regular_file:
    """A file on a non-DAX block device: its blocks' contents, for O_DIRECT."""

    def __init__(self, name: str, nr_pages: int) -> None:
        self.name = name
        self.blocks = Var((None,) * nr_pages, f"{name}.blocks")

    def _zd_key(self) -> tuple:
        return ("file", self.name)


# --- mount, create, size ------------------------------------------------------------------------

def daxfs_mount(k, pgmap, pmd_order: int = 0) -> daxfs_super:
    """``mount -o dax``: the pmem pgmap (MEMORY_DEVICE_FS_DAX, already ``memremap``-ed by pmem);
    ``pmd_order`` > 0: PMD faults where the file's blocks allow them.  Kernel: fs/xfs/xfs_super.c,
    v4.18+."""
    return daxfs_super(k, pgmap, pmd_order)


def daxfs_create(k, sb: daxfs_super, name: str | None = None) -> daxfs_inode:
    """``open(O_CREAT)``: an empty file.  Kernel: fs/xfs/xfs_iops.c, v4.18+."""
    return daxfs_inode(sb, name or f"f{next_id('daxfs_inode')}")


def daxfs_alloc_block(k, sb: daxfs_super) -> int:
    """The block allocator (``xfs_bmapi_write``): a free pmem page, zeroed (DAX zeroes new
    blocks before they are mapped).

    Kernel: fs/xfs/xfs_bmap_util.c, v4.18+."""
    free = sb.free.get("xfs_alloc_vextent")
    if not free:
        raise err(errno.ENOSPC, "daxfs: no free block")
    sb.free.set(free[1:], "xfs_alloc_vextent")
    pfn = free[0]
    k.memmap[pfn].data.set(0, "dax_iomap_zero")
    return pfn


def daxfs_fallocate(k, inode: daxfs_inode, nr_pages: int) -> None:
    """``fallocate(fd, 0, 0, nr_pages * PAGE_SIZE)``: extend the file with allocated blocks.
    Kernel: fs/xfs/xfs_file.c, v4.18+."""
    blocks = list(inode.i_blocks.get("xfs_alloc_file_space"))
    while len(blocks) < nr_pages:
        blocks.append(None)
    for i in range(nr_pages):
        if blocks[i] is None:
            blocks[i] = k.daxfs_alloc_block(inode.sb)
    inode.i_blocks.set(tuple(blocks), "xfs_alloc_file_space")
    if inode.i_size.get("i_size_read") < nr_pages:
        inode.i_size.set(nr_pages, "i_size_write")


def daxfs_block_shared(k, sb: daxfs_super, pfn: int) -> bool:
    """The refcount btree (fs/xfs/xfs_refcount.c): is this block in more than one file?  What
    ``xfs_reflink_trim_around_shared`` turns into ``IOMAP_F_SHARED``.  Kernel: v4.9+ (xfs
    reflink; with DAX v5.19+)."""
    return any(p == pfn for p, _ in sb.shared.get("xfs_refcount_lookup"))


def daxfs_block_put(k, sb: daxfs_super, pfn: int) -> None:
    """One file lets go of a block (``xfs_refcount_decrease_extent`` / ``xfs_free_extent``):
    the last owner frees it.  Kernel: fs/xfs/xfs_refcount.c, v4.9+."""
    shared = dict(sb.shared.get("xfs_refcount_decrease"))
    if pfn in shared:
        n = shared.pop(pfn) - 1
        if n > 1:
            shared[pfn] = n
        sb.shared.set(tuple(sorted(shared.items())), "xfs_refcount_decrease")
        return
    sb.free.set(sb.free.get("xfs_free_extent") + (pfn,), "xfs_free_extent")


def daxfs_reflink(k, src: daxfs_inode, dst: daxfs_inode) -> None:
    """``ioctl(dst, FICLONE, src)`` (xfs_reflink_remap_range) onto an empty ``dst``: ``dst``
    maps the same blocks, each now owned by one more file.  MMAPLOCK of both, exclusive.
    Kernel: fs/xfs/xfs_reflink.c, v4.9+; on DAX files v5.19+."""
    src.i_mmaplock.down_write("xfs_ilock2_io_mmap")
    dst.i_mmaplock.down_write("xfs_ilock2_io_mmap")
    blocks = src.i_blocks.get("xfs_reflink_remap_extent")
    shared = dict(dst.sb.shared.get("xfs_refcount_increase"))
    for pfn in blocks:
        if pfn is not None:
            shared[pfn] = shared.get(pfn, 1) + 1
    dst.sb.shared.set(tuple(sorted(shared.items())), "xfs_refcount_increase")
    dst.i_blocks.set(blocks, "xfs_reflink_remap_extent")
    dst.i_size.set(src.i_size.get("i_size_read"), "i_size_write")
    dst.i_mmaplock.up_write("xfs_iunlock2_io_mmap")
    src.i_mmaplock.up_write("xfs_iunlock2_io_mmap")


def daxfs_cow_block(k, inode: daxfs_inode, index: int, old: int) -> int:
    """A DAX write to a shared block (``xfs_reflink_allocate_cow``, ``dax_iomap_copy_around``,
    ``xfs_reflink_end_cow``): a new block with the old contents replaces it in this file, and
    the old block loses one owner.  Returns the new block.  Kernel: fs/xfs/xfs_reflink.c and
    fs/dax.c, v5.19+."""
    pfn = k.daxfs_alloc_block(inode.sb)
    k.memmap[pfn].data.set(k.memmap[old].data.get("dax_iomap_copy_around"), "dax_iomap_copy_around")
    blocks = list(inode.i_blocks.get("xfs_reflink_end_cow"))
    blocks[index] = pfn
    inode.i_blocks.set(tuple(blocks), "xfs_reflink_end_cow")
    k.daxfs_block_put(inode.sb, old)
    return pfn


def daxfs_extend(k, inode: daxfs_inode, nr_pages: int) -> None:
    """``ftruncate`` up: the new range is a hole (no blocks).  Kernel: fs/xfs/xfs_iops.c, v4.18+."""
    blocks = inode.i_blocks.get("xfs_setattr_size")
    if len(blocks) < nr_pages:
        inode.i_blocks.set(blocks + (None,) * (nr_pages - len(blocks)), "xfs_setattr_size")
    inode.i_size.set(max(nr_pages, inode.i_size.get("i_size_read")), "i_size_write")


# --- the mapping --------------------------------------------------------------------------------

def mapping_mapped(k, mapping) -> bool:
    """``mapping_mapped()``: some VMA maps the file.  Kernel: include/linux/fs.h, v4.5+."""
    return bool(mapping.i_mmap.get("mapping_mapped"))


def unmap_mapping_pages(k, mapping, start: int, nr: int, even_cows: bool = False) -> None:
    """``unmap_mapping_pages()`` (mm/memory.c): zap the PTEs of file pages [start, start+nr) in
    every VMA that maps them (``i_mmap_lock_read``; ``zap_page_range_single``), then the TLB
    flush, whose IPI waits for any gup-fast walker of that mm (IRQs off): the guarantee
    dax_layout_busy_page's comment relies on -- a racing gup-fast either is seen holding the
    page or sees the PTE gone and drops its speculative reference before the flush returns.

    Kernel: mm/memory.c, v4.16+."""
    last = start + nr - 1
    for vma in mapping.i_mmap.get("i_mmap_lock_read"):
        first_idx = vma.vm_pgoff
        last_idx = vma.vm_pgoff + ((vma.vm_end - vma.vm_start) >> PAGE_SHIFT) - 1
        lo, hi = max(start, first_idx), min(last, last_idx)
        if lo > hi:
            continue
        a = vma.vm_start + ((lo - first_idx) << PAGE_SHIFT)
        b = vma.vm_start + ((hi - first_idx + 1) << PAGE_SHIFT)
        k.unmap_vma_range(vma, a, b)
        sync = vma.vm_mm.gup_fast_irqs_off
        sync.down_write("flush_tlb_mm_range (IPI)")
        sync.up_write("flush_tlb_mm_range (IPI)")


def dax_insert_pfn(k, vmf, page, write: bool) -> int:
    """v4.18-v6.14: ``vmf_insert_mixed(_mkwrite)`` -> ``insert_pfn`` with a ``PFN_DEV|PFN_MAP``
    pfn: a devmap PTE (``pte_mkdevmap``); no page reference, no mapcount.

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    vmf.ptl.lock("insert_pfn")
    cur = vmf.ptev.get("pte_none")
    if cur is not None and cur.page is page:
        if write and not cur.write:
            vmf.ptev.set(Pte(PTE_PRESENT, page, True, True, devmap=True), "insert_pfn(mkwrite)")
        vmf.ptl.unlock("insert_pfn")
        return VM_FAULT_NOPAGE
    vmf.ptev.set(Pte(PTE_PRESENT, page, write, write, devmap=True), "set_pte_at(pte_mkdevmap)")
    vmf.ptl.unlock("insert_pfn")
    return VM_FAULT_NOPAGE


VM_FAULT_FALLBACK = 0x000800


def dax_insert_pmd(k, vma, base: int, head, order: int, write: bool) -> None:
    """v4.18-v6.14 ``vmf_insert_pfn_pmd``: a devmap PMD -- no page reference, no mapcount.
    The model keeps a PMD as one entry per 4K page with ``Pte.huge`` = its order.  Kernel:
    mm/huge_memory.c, v4.18-v6.14."""
    mm = vma.vm_mm
    pt, _ = mm.pte(base, alloc=True)
    pt.ptl.lock("insert_pfn_pmd")
    for i in range(1 << order):
        _, v = mm.pte(base + (i << PAGE_SHIFT), alloc=True)
        if v.get("pmd_none") is None:
            v.set(Pte(PTE_PRESENT, k.pfn_to_page(head.pfn + i), write, write, devmap=True, huge=order),
                  "set_pmd_at(pmd_mkdevmap)")
    pt.ptl.unlock("insert_pfn_pmd")


def dax_iomap_pmd_fault(k, vmf) -> int:
    """``dax_iomap_pmd_fault`` (fs/dax.c; MMAPLOCK shared): map ``1 << pmd_order`` pages with
    one PMD when the VMA covers the aligned range, the file's size does, no PTE entry sits in
    it (``grab_mapping_entry`` favours PTEs: ``VM_FAULT_FALLBACK``) and the blocks are one
    aligned extent; otherwise fall back to PTE faults.  Holes are not given huge zero pages
    (``dax_pmd_load_hole``) nor allocated as extents here: they fall back too.  The entry is a
    ``DAX_PMD`` entry; ``dax_associate_entry`` makes the folio (v6.15: ``dax_folio_init``).
    Kernel: fs/dax.c, v4.18+."""
    vma = vmf.vma
    inode = vma.vm_file
    mapping = inode.i_mapping
    order = inode.sb.pmd_order
    nr = 1 << order
    write = bool(vmf.flags & FAULT_FLAG_WRITE)
    index = linear_page_index(vma, vmf.address)
    first = index & ~(nr - 1)
    base = vma.vm_start + ((first - vma.vm_pgoff) << PAGE_SHIFT)
    if base < vma.vm_start or base + (nr << PAGE_SHIFT) > vma.vm_end or (base >> PAGE_SHIFT) & (nr - 1):
        return VM_FAULT_FALLBACK
    inode.i_mmaplock.down_read("xfs_ilock(XFS_MMAPLOCK_SHARED)")
    try:
        if first + nr > inode.i_size.get("i_size_read"):
            return VM_FAULT_FALLBACK
        blocks = inode.i_blocks.get("xfs_bmapi_read")[first:first + nr]
        if None in blocks or blocks[0] & (nr - 1) or list(blocks) != list(range(blocks[0], blocks[0] + nr)) \
                or any(k.daxfs_block_shared(inode.sb, pfn) for pfn in blocks):
            return VM_FAULT_FALLBACK                      # reflinked extents: PTEs in the model
        mapping.xa_lock.lock("grab_mapping_entry")
        entries = mapping.entries_in(first, first + nr - 1, "grab_mapping_entry")
        if any(e.order == 0 for _, e in entries):
            mapping.xa_lock.unlock("grab_mapping_entry")
            return VM_FAULT_FALLBACK
        if not entries:
            entry = dax_entry(DAX_ENTRY_PAGE, blocks[0], order)
            mapping.store(first, entry, "dax_insert_entry")
            k.dax_associate_entry(entry, mapping, first)
        mapping.xa_lock.unlock("dax_unlock_entry")
        k.dax_insert_pmd(vma, base, k.memmap[blocks[0]], order, write)
        return VM_FAULT_NOPAGE
    finally:
        inode.i_mmaplock.up_read("xfs_iunlock(XFS_MMAPLOCK_SHARED)")


def dax_iomap_fault(k, vmf) -> int:
    """``xfs_filemap_fault`` -> ``dax_iomap_fault`` -> ``dax_iomap_pmd_fault`` (on a mount with
    ``pmd_order``) and, when it falls back, ``dax_iomap_pte_fault`` (MMAPLOCK shared).
    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    vma = vmf.vma
    inode = vma.vm_file
    if inode.sb.pmd_order:
        ret = k.dax_iomap_pmd_fault(vmf)
        if ret != VM_FAULT_FALLBACK:
            return ret
    mapping = inode.i_mapping
    write = bool(vmf.flags & FAULT_FLAG_WRITE)
    inode.i_mmaplock.down_read("xfs_ilock(XFS_MMAPLOCK_SHARED)")
    try:
        index = linear_page_index(vma, vmf.address)
        if index >= inode.i_size.get("i_size_read"):
            return VM_FAULT_SIGBUS
        mapping.xa_lock.lock("grab_mapping_entry")
        entry = mapping.lookup(index, "grab_mapping_entry")
        pfn = inode.i_blocks.get("xfs_bmapi_read")[index]
        if pfn is None and not write:                     # dax_load_hole
            zp = k.zero_page()
            if entry is None:
                entry = dax_entry(DAX_ZERO_PAGE, zp.pfn)
                mapping.store(index, entry, "dax_insert_entry")
                k.dax_associate_entry(entry, mapping, index)
            mapping.xa_lock.unlock("dax_unlock_entry")
            vmf.ptl.lock("insert_pfn")
            if vmf.ptev.get("pte_none") is None:
                vmf.ptev.set(Pte(PTE_PRESENT, zp, False), "set_pte_at(zero page)")
            vmf.ptl.unlock("insert_pfn")
            return VM_FAULT_NOPAGE
        if pfn is None:                                   # iomap_begin(IOMAP_WRITE): allocate
            pfn = k.daxfs_alloc_block(inode.sb)
            blocks = list(inode.i_blocks.get("xfs_bmapi_write"))
            blocks[index] = pfn
            inode.i_blocks.set(tuple(blocks), "xfs_bmapi_write")
        # IOMAP_F_SHARED: the block is reflinked (xfs_reflink_trim_around_shared)
        shared = k.daxfs_block_shared(inode.sb, pfn)
        if shared and write:                              # copy on write: a private block
            pfn = k.daxfs_cow_block(inode, index, pfn)
        if shared or entry is None or entry.kind != DAX_ENTRY_PAGE:
            if entry is not None:                         # a zero-page or shared entry is replaced
                k.dax_disassociate_entry(entry, False)
                k.unmap_mapping_pages(mapping, index, 1)
            entry = dax_entry(DAX_ENTRY_PAGE, pfn)
            mapping.store(index, entry, "dax_insert_entry")
            k.dax_associate_entry(entry, mapping, index, shared)
        mapping.xa_lock.unlock("dax_unlock_entry")
        page = k.memmap[pfn]
        k.dax_insert_pfn(vmf, page, write)
        return VM_FAULT_NOPAGE
    finally:
        inode.i_mmaplock.up_read("xfs_iunlock(XFS_MMAPLOCK_SHARED)")


# --- user access through a mapping ----------------------------------------------------------------

def dax_user_write(k, mm, addr: int, value) -> None:
    """A store through the mapping: fault as needed, then write the pmem page.
    Kernel: mm/memory.c, v4.18+."""
    page = k.cpu_access(mm, addr, True)
    page.data.set(value, "store")


def dax_user_read(k, mm, addr: int):
    """A load through the mapping (a read fault maps a hole to the zero page).
    Kernel: mm/memory.c, v4.18+."""
    page = k.cpu_access(mm, addr, False)
    return page.data.get("load")


# --- truncate and hole punch --------------------------------------------------------------------

def xfs_break_dax_layouts(k, inode: daxfs_inode, start: int = 0, end: int = -1) -> int:
    """fs/xfs/xfs_file.c: wait until no page of [start, end] is busy; MMAPLOCK is held
    exclusive on entry and on return, dropped while sleeping.  Returns how often it waited.

    Kernel: fs/xfs/xfs_file.c, v4.18+ (5fac7408d828)."""
    waits = 0
    lock = inode.i_mmaplock
    while True:
        page = k.dax_layout_busy_page_range(inode.i_mapping, start, end)
        if page is None:
            return waits
        waits += 1
        k.dax_wait_page_idle(page, drop=lambda: lock.up_write("xfs_iunlock(XFS_MMAPLOCK_EXCL)"),
                             retake=lambda: lock.down_write("xfs_ilock(XFS_MMAPLOCK_EXCL)"))


def dax_delete_mapping_entry(k, mapping, index: int) -> None:
    """``dax_delete_mapping_entry`` -> ``__dax_invalidate_entry``: remove the entry and
    disassociate its page (``trunc``: the page must be idle now).

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    mapping.xa_lock.lock("xas_lock_irq")
    entry = mapping.lookup(index, "get_unlocked_entry")
    if entry is not None:
        k.dax_disassociate_entry(entry, True)
        mapping.store(index, None, "xas_store(NULL)")
    mapping.xa_lock.unlock("xas_unlock_irq")


def truncate_dax_range(k, inode: daxfs_inode, start: int, last: int) -> None:
    """``truncate_pagecache_range`` + ``xfs_free_file_space``: unmap, delete the entries, free
    the blocks.

    Kernel: mm/truncate.c, v4.18+."""
    mapping = inode.i_mapping
    k.unmap_mapping_pages(mapping, start, last - start + 1)
    for index, _ in mapping.entries_in(start, last, "truncate_inode_pages_range"):
        k.dax_delete_mapping_entry(mapping, index)
    blocks = list(inode.i_blocks.get("xfs_bunmapi"))
    freed = []
    for i in range(start, min(last + 1, len(blocks))):
        if blocks[i] is not None:
            freed.append(blocks[i])
            blocks[i] = None
    inode.i_blocks.set(tuple(blocks), "xfs_bunmapi")
    for pfn in freed:                                     # a reflinked block loses one owner
        k.daxfs_block_put(inode.sb, pfn)


def daxfs_truncate(k, inode: daxfs_inode, new_size: int) -> int:
    """``truncate(2)`` down (xfs_vn_setattr -> xfs_setattr_size): MMAPLOCK exclusive, break
    layouts, drop the pages past ``new_size``.  Returns how often it waited for a busy page.

    Kernel: fs/xfs/xfs_iops.c, v4.18+."""
    lock = inode.i_mmaplock
    lock.down_write("xfs_ilock(XFS_MMAPLOCK_EXCL)")
    waits = k.xfs_break_dax_layouts(inode, new_size, -1)
    old = inode.i_size.get("i_size_read")
    if new_size < old:
        k.truncate_dax_range(inode, new_size, old - 1)
        blocks = inode.i_blocks.get("xfs_setattr_size")
        inode.i_blocks.set(blocks[:new_size], "xfs_setattr_size")
    inode.i_size.set(new_size, "i_size_write")
    lock.up_write("xfs_iunlock(XFS_MMAPLOCK_EXCL)")
    return waits


def daxfs_punch_hole(k, inode: daxfs_inode, start: int, nr: int) -> int:
    """``fallocate(FALLOC_FL_PUNCH_HOLE)`` (xfs_file_fallocate -> xfs_free_file_space).
    Kernel: fs/xfs/xfs_file.c, v4.18+."""
    lock = inode.i_mmaplock
    lock.down_write("xfs_ilock(XFS_MMAPLOCK_EXCL)")
    waits = k.xfs_break_dax_layouts(inode, start, start + nr - 1)
    k.truncate_dax_range(inode, start, start + nr - 1)
    lock.up_write("xfs_iunlock(XFS_MMAPLOCK_EXCL)")
    return waits


# --- O_DIRECT on a regular file whose buffer is a DAX mapping -------------------------------------

#: the release from which block and iomap O_DIRECT pin the user buffer: a7e689dd1c06 ("block:
#: Convert bio_iov_iter_get_pages to use iov_iter_extract_pages", v6.5: block's for-6.5 branch)
#: turned ``bio_iov_iter_get_pages`` from ``iov_iter_get_pages`` (FOLL_GET) to
#: ``iov_iter_extract_pages`` (FOLL_PIN for a user buffer, BIO_PAGE_PINNED); the modelled
#: kernels after it are v6.15 on
DIO_PINS_FROM = (6, 5)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.lstrip("v").split(".")[:2] if x.isdigit())


def dio_default_gup(k) -> str:
    """How O_DIRECT grabs its buffer by default: FOLL_GET references (``iov_iter_get_pages``)
    until a7e689dd1c06, pins (``iov_iter_extract_pages``) in a kernel with a release after it
    (``DIO_PINS_FROM``; no patch of the series is that commit, so the kernel's newest patch
    release says which side it is on).

    Kernel: block/bio.c ``bio_iov_iter_get_pages``, FOLL_GET before a7e689dd1c06 (v6.5), FOLL_PIN
    from it."""
    newest = max((_release(p.version) for p in k.patches), default=())
    return "pin" if newest >= DIO_PINS_FROM else "get"


def dio_get_user_pages(k, mm, addr: int, nr_pages: int, to_buffer: bool, gup: str | None = None) -> list:
    """``bio_iov_iter_get_pages``: ``pin_user_pages_fast`` (``gup="pin"``, FOLL_PIN) or
    ``get_user_pages_fast`` (FOLL_GET; also ``gup="release"``, whose completion releases the
    pages in one batch); FOLL_WRITE when the I/O writes into the buffer (a read from the
    file).

    Kernel: block/bio.c, v4.18+."""
    flags = FOLL_WRITE if to_buffer else 0
    if (gup or k.dio_default_gup()) == "pin":
        return k.pin_user_pages_fast(mm, addr, nr_pages, flags)
    return k.get_user_pages_fast(mm, addr, nr_pages, flags)


def dio_put_user_pages(k, pages, gup: str | None = None) -> None:
    """``bio_release_pages`` at I/O completion: ``unpin_user_page`` or ``put_page``; with
    ``gup="release"`` one ``release_pages()`` batch (``put_user_pages``-style callers).

    Kernel: block/bio.c, v4.18+."""
    if gup == "release":
        k.release_pages(list(pages))
        return
    for page in pages:
        if (gup or k.dio_default_gup()) == "pin":
            k.unpin_user_page(page)
        else:
            k.put_page(page)


def dio_copy(k, pages, file: regular_file, first_block: int, to_buffer: bool) -> None:
    """The device's DMA between the file's blocks and the grabbed buffer pages.
    Kernel: block/fops.c, v4.18+."""
    blocks = list(file.blocks.get("dma"))
    for i, page in enumerate(pages):
        if to_buffer:
            page.data.set(blocks[first_block + i], "dma to memory")
        else:
            blocks[first_block + i] = page.data.get("dma from memory")
    if not to_buffer:
        file.blocks.set(tuple(blocks), "dma")


def blkdev_direct_IO(k, mm, addr: int, nr_pages: int, file: regular_file, first_block: int = 0,
                     read: bool = True, gup: str | None = None) -> int:
    """``read``/``write`` with O_DIRECT on ``file`` with the user buffer at ``addr``: grab,
    DMA, release.  Returns the number of pages transferred.

    Kernel: block/fops.c, v5.16+ (fs/block_dev.c before)."""
    pages = k.dio_get_user_pages(mm, addr, nr_pages, read, gup)
    try:
        k.dio_copy(pages, file, first_block, read)
    finally:
        k.dio_put_user_pages(pages, gup)
    return len(pages)


FUNCTIONS = (daxfs_mount, daxfs_create, daxfs_alloc_block, daxfs_fallocate, daxfs_block_shared, daxfs_block_put,
             daxfs_reflink, daxfs_cow_block, daxfs_extend, mapping_mapped,
             unmap_mapping_pages, dax_insert_pfn, dax_insert_pmd, dax_iomap_pmd_fault, dax_iomap_fault,
             dax_user_write, dax_user_read,
             xfs_break_dax_layouts, dax_delete_mapping_entry, truncate_dax_range, daxfs_truncate,
             daxfs_punch_hole, dio_default_gup, dio_get_user_pages, dio_put_user_pages, dio_copy,
             blkdev_direct_IO)
