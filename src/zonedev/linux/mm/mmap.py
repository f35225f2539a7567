"""A minimal mm: ``struct mm_struct``, VMAs, page tables, mmap/munmap/mprotect/mremap, exit.

Kernel sources: mm/mmap.c (do_mmap, do_munmap/__do_munmap, exit_mmap), mm/mprotect.c
(mprotect_fixup, change_pte_range), mm/mremap.c (move_vma, move_ptes), include/linux/mm_types.h
(mm_struct, vm_area_struct), include/linux/mm.h (vm_flags), include/linux/rwsem.h (mmap_lock).

Model choices (all were true of every kernel v4.5+ for the paths modelled):

* **VMAs are immutable values.**  ``mm.vmas`` is one :class:`~zonedev.sync.Var` holding the
  sorted tuple of VMAs; mprotect/munmap/mremap build new VMA objects under the mmap write
  lock, so the VMA layout is part of the checker's state.
* **Page tables**: one :class:`PageTable` per PMD entry (``PTRS_PER_PTE`` = 512 pages), each
  with its own split PTL (``Lock``), as with ``USE_SPLIT_PTE_PTLOCKS``; every PTE is a ``Var``
  created on first touch (so small tests make few objects).  A PTE value is ``None``
  (``pte_none``) or an immutable :class:`Pte` of one of the kinds below.
* **mmap_lock** is an rw-semaphore (:class:`RwSem`): faults, ``hmm_range_fault`` and
  ``migrate_vma_*`` callers hold it for read and so run concurrently; munmap/mprotect/mremap/
  fork hold it for write.
* THP: PMD mappings as one entry per base page with ``Pte.huge`` (see ``huge_memory.py``);
  partial munmap/mprotect/mremap/madvise split them first (``split_huge_pmd_range``).
* hugetlb, swap, file writeback and ``vm_pgoff`` for files beyond a linear offset are not
  modelled.  ``PageAnonExclusive`` (v5.19+) is not modelled: COW reuse uses the v5.9+ rule
  "the only reference" (``page_count == 1``), which gives the same answers on these paths.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from ...sync import READ, WRITE, Atomic, Lock, Var, WaitQueue
from ...sync.world import SyncObject

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
PTRS_PER_PTE = 512
PMD_SHIFT = PAGE_SHIFT + 9
TASK_SIZE = 1 << 47

# include/linux/mm.h vm_flags
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYSHARE = 0x80
VM_IO = 0x4000
VM_DONTEXPAND = 0x40000
VM_PFNMAP = 0x400
VM_MIXEDMAP = 0x10000000
VM_HUGETLB = 0x400000
VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP

# uapi mman.h
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4
MADV_FREE = 8

# PTE kinds
PTE_PRESENT = "present"                 # pte_present(): a page (or the zero page) is mapped
PTE_DEVICE_PRIVATE = "device_private"   # swap entry SWP_DEVICE_{READ,WRITE} (v4.14+)
PTE_DEVICE_EXCLUSIVE = "device_exclusive"  # swap entry SWP_DEVICE_EXCLUSIVE_* (v5.14+)
PTE_MIGRATION = "migration"             # swap entry SWP_MIGRATION_{READ,WRITE}


def next_id(kind: str) -> int:
    """A small id, counted per ``World`` so that every execution of a scenario names its
    objects the same way (class-level counters would differ from one execution to the next)."""
    from ...sync import current_world
    w = current_world()
    ids = w.__dict__.setdefault("_zd_ids", {})
    ids[kind] = ids.get(kind, 0) + 1
    return ids[kind]


class OSErrorKernel(OSError):
    """A syscall or ioctl failed: ``errno`` is what the kernel returns (negated in the kernel)."""

    def __init__(self, err: int, what: str = "") -> None:
        super().__init__(err, f"{errno.errorcode.get(err, err)}: {what}" if what else errno.errorcode.get(err, str(err)))


def err(e: int, what: str = "") -> OSErrorKernel:
    return OSErrorKernel(e, what)


class RwSem(SyncObject):
    """``struct rw_semaphore`` (kernel/locking/rwsem.c), as ``mmap_lock`` uses it.

    Readers share it; a writer excludes everyone.  Writer preference (a waiting writer blocks new
    readers) is not modelled.  For the checker, taking it for read is a READ of the semaphore
    (readers commute) and every other operation a WRITE; none is an ACQUIRE, because the
    checker orders ACQUIREs of one object as an exclusive lock's, which read-held sections are
    not.
    """

    __slots__ = ("readers", "writer")

    def __init__(self, name: str = "rwsem") -> None:
        super().__init__(name)
        self.readers: tuple = ()
        self.writer: str | None = None

    def _zd_state(self) -> Any:
        return (self.readers, self.writer)

    def down_read(self, label: str = "mmap_read_lock") -> None:
        self.world.point(self, READ, label, lambda: self.writer is None)
        self.readers = tuple(sorted(self.readers + (self.world.thread_name(),)))

    def up_read(self, label: str = "mmap_read_unlock") -> None:
        self.world.point(self, WRITE, label)
        me = self.world.thread_name()
        lst = list(self.readers)
        if me not in lst:
            raise AssertionError(f"{label}: {self.name} not read-held by {me}")
        lst.remove(me)
        self.readers = tuple(lst)

    def down_write(self, label: str = "mmap_write_lock") -> None:
        self.world.point(self, WRITE, label, lambda: self.writer is None and not self.readers)
        self.writer = self.world.thread_name()

    def up_write(self, label: str = "mmap_write_unlock") -> None:
        self.world.point(self, WRITE, label)
        self.writer = None

    def held(self) -> bool:
        return self.writer is not None or bool(self.readers)


@dataclass(frozen=True, eq=False)
class Pte:
    """One non-none page table entry.  ``write``: pte_write() / a writable swap entry."""

    kind: str
    page: Any
    write: bool = False
    dirty: bool = False
    #: ``pte_devmap()`` (v4.5-v6.16): a DAX pfn mapping (special: no page reference, no mapcount)
    devmap: bool = False
    #: order of the PMD/PUD mapping this entry is part of (0: a PTE).  The model keeps one entry
    #: per 4K page of a huge mapping; the head page's entry carries the mapping's folio
    #: reference and entire mapcount, the others none (zap drops the head's only).
    huge: int = 0
    #: ``pte_uffd_wp()`` / ``pmd_swp_uffd_wp()``: userfaultfd write-protect marker (v5.7+)
    uffd_wp: bool = False

    def _zd_key(self) -> tuple:
        return (self.kind, self.page.pfn, self.write, self.dirty, self.devmap, self.huge, self.uffd_wp)

    def same(self, other: "Pte | None") -> bool:
        """``pte_same()``."""
        return other is not None and self._zd_key() == other._zd_key()

    def __repr__(self) -> str:
        return f"<pte {self.kind} pfn={self.page.pfn:#x}{' W' if self.write else ''}{' devmap' if self.devmap else ''}>"


class PageTable:
    """One PTE page and its split PTL (``pte_lockptr``)."""

    def __init__(self, mm: "mm_struct", index: int) -> None:
        self.mm = mm
        self.index = index
        self.ptl = Lock(f"mm{mm.id}.ptl[{index:#x}]")
        self.entries: dict[int, Var] = {}

    def pte(self, addr: int) -> Var:
        i = (addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)
        v = self.entries.get(i)
        if v is None:
            v = self.entries[i] = Var(None, f"mm{self.mm.id}.pte[{addr:#x}]")
        return v


class anon_vma:
    """``struct anon_vma``: the rmap root of anonymous pages.  Forked VMAs share their parent's
    anon_vma here (the kernel links a child anon_vma into the parent's chain; a walk from the
    page visits the same VMAs)."""

    anon = True   # PageAnon(): the mapping's PAGE_MAPPING_ANON bit

    def __init__(self) -> None:
        self.id = next_id("anon_vma")
        self.mms = Var((), f"anon_vma{self.id}.mms")   # the mm_structs whose VMAs use it

    def _zd_key(self) -> tuple:
        return ("anon_vma", self.id)

    def __repr__(self) -> str:
        return f"<anon_vma {self.id}>"


@dataclass(frozen=True, eq=False)
class vm_area_struct:
    vm_mm: "mm_struct"
    vm_start: int
    vm_end: int
    vm_flags: int
    vm_pgoff: int = 0
    vm_file: Any = None          # struct file (shmem inode) for shared anon / tmpfs / the dmirror fd
    anon_vma: Any = None
    vm_ops: str | None = None    # "shmem", "dmirror" or None (anonymous)

    def _zd_key(self) -> tuple:
        f = self.vm_file._zd_key() if self.vm_file is not None and hasattr(self.vm_file, "_zd_key") else None
        return ("vma", self.vm_mm.id, self.vm_start, self.vm_end, self.vm_flags, self.vm_pgoff, f,
                self.anon_vma.id if self.anon_vma is not None else None)

    def replace(self, **kw) -> "vm_area_struct":
        d = dict(vm_mm=self.vm_mm, vm_start=self.vm_start, vm_end=self.vm_end, vm_flags=self.vm_flags,
                 vm_pgoff=self.vm_pgoff, vm_file=self.vm_file, anon_vma=self.anon_vma, vm_ops=self.vm_ops)
        d.update(kw)
        return vm_area_struct(**d)

    def __repr__(self) -> str:
        prot = "".join(c if self.vm_flags & f else "-" for c, f in (("r", VM_READ), ("w", VM_WRITE)))
        prot += "s" if self.vm_flags & VM_SHARED else "p"
        return f"<vma {self.vm_start:#x}-{self.vm_end:#x} {prot}{' ' + self.vm_ops if self.vm_ops else ''}>"


def vma_is_anonymous(vma: vm_area_struct) -> bool:
    """``vma_is_anonymous()``: no vm_ops -- private anonymous memory only (shared anonymous
    memory is shmem)."""
    return vma.vm_ops is None


def is_cow_mapping(flags: int) -> bool:
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE


def linear_page_index(vma: vm_area_struct, addr: int) -> int:
    return ((addr - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff


class mm_struct:
    """``struct mm_struct``: the VMAs, page tables, mmap_lock, users count and the notifier
    subscriptions (include/linux/mmu_notifier.h ``mmu_notifier_subscriptions``)."""

    def __init__(self, k) -> None:
        self.id = next_id("mm")
        self.k = k
        tag = f"mm{self.id}"
        self.mmap_lock = RwSem(f"{tag}.mmap_lock")
        self.vmas = Var((), f"{tag}.vmas")
        self.pgtables: dict[int, PageTable] = {}
        self.page_table_lock = Lock(f"{tag}.page_table_lock")
        self.mm_users = Atomic(1, f"{tag}.mm_users")
        self.mm_count = Atomic(1, f"{tag}.mm_count")
        # mmu_notifier_subscriptions (mm/mmu_notifier.c): interval subscriptions, the invalidate
        # sequence (odd while an invalidation runs) and the number of active invalidations
        self.notifier_lock = Lock(f"{tag}.notifier_subscriptions->lock")
        self.notifier_subscriptions = Var((), f"{tag}.notifier_subscriptions")
        self.invalidate_seq = Var(2, f"{tag}.invalidate_seq")
        self.active_invalidate_ranges = Var(0, f"{tag}.active_invalidate_ranges")
        self.notifier_wq = WaitQueue(f"{tag}.notifier_wq")
        # gup-fast walks with local IRQs off; a TLB-flush IPI after a zap waits for them, so once
        # the flush returns no lockless walker still holds a speculative reference on a zapped
        # PTE's page (held for read by gup_fast, taken for write by the DAX unmap's flush)
        self.gup_fast_irqs_off = RwSem(f"{tag}.gup_fast_irqs_off")
        self.mmap_base = 0x7f0000000000
        self.dead = False

    def _zd_key(self) -> tuple:
        return ("mm", self.id)

    def __repr__(self) -> str:
        return f"<mm {self.id}>"

    # -- page-table helpers (pte_offset_map / pte_alloc) --------------------------------------
    def pgtable(self, addr: int, alloc: bool = False) -> PageTable | None:
        """``pte_offset_map`` (alloc=False) or ``pte_alloc`` + offset (alloc=True)."""
        i = addr >> PMD_SHIFT
        pt = self.pgtables.get(i)
        if pt is None and alloc:
            pt = self.pgtables[i] = PageTable(self, i)
        return pt

    def pte(self, addr: int, alloc: bool = False) -> tuple[PageTable | None, Var | None]:
        pt = self.pgtable(addr, alloc)
        return (pt, pt.pte(addr)) if pt is not None else (None, None)

    def peek_pte(self, addr: int):
        pt = self.pgtables.get(addr >> PMD_SHIFT)
        if pt is None:
            return None
        v = pt.entries.get((addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1))
        return v.peek() if v is not None else None


def find_vma(mm: mm_struct, addr: int, label: str = "find_vma") -> vm_area_struct | None:
    """``find_vma()``: the first VMA ending above ``addr``."""
    for vma in mm.vmas.get(label):
        if addr < vma.vm_end:
            return vma
    return None


def walk_inputs(mm: mm_struct, start: int, end: int) -> list:
    """What a page-table walk of [start, end) and the faults it makes depend on: the VMAs, each
    existing PTE, and the lock bit and count of the page each PTE refers to.  A retry loop
    (``zonedev.sync.RetryLoop``) around such a walk goes round again only once one changed."""
    out: list = [mm.vmas]
    for addr in range(start & PAGE_MASK, end, PAGE_SIZE):
        pt = mm.pgtables.get(addr >> PMD_SHIFT)
        v = pt.entries.get((addr >> PAGE_SHIFT) & (PTRS_PER_PTE - 1)) if pt is not None else None
        if v is None:
            continue
        out.append(v)
        pte = v.peek()
        page = getattr(pte, "page", None)
        if page is not None:
            out.append(page.flags)
            out.append(page._refcount)
    return out


def vma_lookup(mm: mm_struct, addr: int) -> vm_area_struct | None:
    """``vma_lookup()`` (v5.14+): the VMA containing ``addr``."""
    vma = find_vma(mm, addr, "vma_lookup")
    return vma if vma is not None and vma.vm_start <= addr else None


def _set_vmas(mm: mm_struct, vmas: list, label: str) -> None:
    mm.vmas.set(tuple(sorted(vmas, key=lambda v: v.vm_start)), label)


def _join_anon_vma(av: anon_vma | None, mm: mm_struct) -> None:
    if av is not None:
        cur = av.mms.get("anon_vma_chain_link")
        if mm not in cur:
            av.mms.set(cur + (mm,), "anon_vma_chain_link")


def mm_alloc(k) -> mm_struct:
    """``mm_alloc()`` (kernel/fork.c).  Kernel: kernel/fork.c, v4.5+."""
    return mm_struct(k)


def get_unmapped_area(k, mm: mm_struct, length: int, align: int = PAGE_SIZE) -> int:
    """Bottom-up first fit above ``mm->mmap_base`` (the model's arch_get_unmapped_area).
    Kernel: mm/mmap.c, v4.5+."""
    addr = mm.mmap_base
    for vma in mm.vmas.peek():
        if vma.vm_end <= addr:
            continue
        if vma.vm_start >= addr + length:
            break
        addr = (vma.vm_end + align - 1) & ~(align - 1)
    return addr


def do_mmap(k, mm: mm_struct, addr: int, length: int, prot: int, flags: int, file=None,
            pgoff: int = 0) -> int:
    """``do_mmap()`` (mm/mmap.c), called with mmap_lock held for write.  ``file`` is a shmem
    file (``shmem_file_setup``) or the dmirror device file; anonymous shared memory gets a new
    shmem file (``shmem_zero_setup``).

    Kernel: mm/mmap.c, v4.5+."""
    from .shmem import shmem_zero_setup
    if length <= 0:
        raise err(errno.EINVAL, "mmap length")
    length = (length + PAGE_SIZE - 1) & PAGE_MASK
    if flags & MAP_FIXED:
        if addr & ~PAGE_MASK:
            raise err(errno.EINVAL, "MAP_FIXED address not aligned")
        k.do_munmap(mm, addr, length)
    else:
        addr = get_unmapped_area(k, mm, length)
    vm_flags = VM_MAYREAD | VM_MAYWRITE
    if prot & PROT_READ:
        vm_flags |= VM_READ
    if prot & PROT_WRITE:
        vm_flags |= VM_WRITE
    if prot & PROT_EXEC:
        vm_flags |= VM_EXEC
    vm_ops = None
    av = None
    if flags & MAP_SHARED:
        vm_flags |= VM_SHARED | VM_MAYSHARE
        if file is None:
            file = shmem_zero_setup(k, length)
            pgoff = 0
    if file is not None:
        vm_ops = getattr(file, "vm_ops", "shmem")
        vm_flags |= getattr(file, "mmap_vm_flags", 0)   # what the driver's ->mmap sets (VM_MIXEDMAP)
    if not (flags & MAP_SHARED):
        av = anon_vma()      # anon_vma_prepare(), done eagerly: unobservable here
    vma = vm_area_struct(mm, addr, addr + length, vm_flags, pgoff if file is not None else addr >> PAGE_SHIFT,
                         file, av, vm_ops)
    _join_anon_vma(av, mm)
    _set_vmas(mm, list(mm.vmas.get("do_mmap")) + [vma], "do_mmap")
    if file is not None and hasattr(file, "mmap"):
        file.mmap(k, vma)     # call_mmap(): the driver's ->mmap (dmirror_fops_mmap)
    return addr


def _split(vmas, start: int, end: int):
    """Split the VMAs overlapping [start, end) at start and end; return (outside, inside)."""
    outside, inside = [], []
    for v in vmas:
        if v.vm_end <= start or v.vm_start >= end:
            outside.append(v)
            continue
        if v.vm_start < start:
            outside.append(v.replace(vm_end=start))
        if v.vm_end > end:
            outside.append(v.replace(vm_start=end, vm_pgoff=v.vm_pgoff + ((end - v.vm_start) >> PAGE_SHIFT)))
        s, e = max(v.vm_start, start), min(v.vm_end, end)
        inside.append(v.replace(vm_start=s, vm_end=e, vm_pgoff=v.vm_pgoff + ((s - v.vm_start) >> PAGE_SHIFT)))
    return outside, inside


def do_munmap(k, mm: mm_struct, start: int, length: int) -> int:
    """``do_munmap()`` (mm/mmap.c), mmap_lock held for write: split, ``unmap_region`` (zap the
    PTEs, dropping the pages' references and mapcounts), remove the VMAs.

    Kernel: mm/mmap.c, v4.5+."""
    if start & ~PAGE_MASK or start >= TASK_SIZE or length > TASK_SIZE - start:
        raise err(errno.EINVAL, "munmap")
    length = (length + PAGE_SIZE - 1) & PAGE_MASK
    if length == 0:
        raise err(errno.EINVAL, "munmap length")
    end = start + length
    outside, inside = _split(mm.vmas.get("do_munmap"), start, end)
    for vma in inside:
        k.split_huge_pmd_range(vma, start, end)           # vma_adjust_trans_huge / zap_pmd_range
    for vma in inside:
        k.unmap_vma_range(vma, vma.vm_start, vma.vm_end)
        if hasattr(vma.vm_file, "unlink_vma"):       # unlink_file_vma: leave the file's i_mmap
            vma.vm_file.unlink_vma(k, mm, vma.vm_start, vma.vm_end)
    _set_vmas(mm, outside, "do_munmap")
    return 0


def do_mprotect(k, mm: mm_struct, start: int, length: int, prot: int) -> int:
    """``do_mprotect_pkey()`` / ``mprotect_fixup()`` / ``change_protection()`` (mm/mprotect.c).

    Removing write permission write-protects present PTEs and turns writable device-private and
    device-exclusive entries into readable ones (change_pte_range); the range is invalidated with
    MMU_NOTIFY_PROTECTION_VMA first.  Adding permissions changes no PTE: the next write fault
    makes the PTE writable (do_wp_page reuse), as on kernels without the v6.0
    ``can_change_pte_writable`` shortcut.
    """
    from .mmu_notifier import MMU_NOTIFY_PROTECTION_VMA, mmu_notifier_range
    if start & ~PAGE_MASK:
        raise err(errno.EINVAL, "mprotect")
    length = (length + PAGE_SIZE - 1) & PAGE_MASK
    end = start + length
    vmas = mm.vmas.get("mprotect")
    # -ENOMEM if the range has a hole
    addr = start
    for v in vmas:
        if v.vm_end <= addr or v.vm_start >= end:
            continue
        if v.vm_start > addr:
            raise err(errno.ENOMEM, "mprotect hole")
        addr = v.vm_end
    if addr < end:
        raise err(errno.ENOMEM, "mprotect hole")
    outside, inside = _split(vmas, start, end)
    new = []
    for vma in inside:
        flags = vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC)
        flags |= (VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0) | \
                 (VM_EXEC if prot & PROT_EXEC else 0)
        k.split_huge_pmd_range(vma, start, end)
        if (vma.vm_flags & VM_WRITE) and not (flags & VM_WRITE) or \
                (vma.vm_flags & VM_READ) and not (flags & VM_READ):
            rng = mmu_notifier_range(MMU_NOTIFY_PROTECTION_VMA, mm, vma.vm_start, vma.vm_end, vma=vma)
            k.mmu_notifier_invalidate_range_start(rng)
            if not flags & VM_WRITE:
                k.change_pte_range_wrprotect(vma, vma.vm_start, vma.vm_end)
            k.mmu_notifier_invalidate_range_end(rng)
        new.append(vma.replace(vm_flags=flags))
    _set_vmas(mm, outside + new, "mprotect_fixup")
    return 0


def change_pte_range_wrprotect(k, vma: vm_area_struct, start: int, end: int) -> None:
    """``change_pte_range()`` with the write bit removed (mm/mprotect.c).  Kernel: mm/mprotect.c, v4.5+."""
    mm = vma.vm_mm
    for addr in range(start, end, PAGE_SIZE):
        pt = mm.pgtable(addr)
        if pt is None:
            continue
        pt.ptl.lock("pte_offset_map_lock")
        v = pt.pte(addr)
        pte = v.get("ptep_get")
        if pte is not None and pte.write:       # change_huge_pmd / change_non_present_huge_pmd alike
            v.set(k.change_pte_wrprotect(pte), "ptep_modify_prot_commit")
        pt.ptl.unlock("pte_unmap_unlock")


def change_pte_wrprotect(k, pte: Pte) -> Pte:
    """The write-protected form of an entry (``pte_wrprotect`` / ``change_softleaf_pte`` with
    ``make_readable_*_entry``); a PMD entry keeps its order (``change_huge_pmd``); the uffd-wp
    marker is carried.  Device-private PMDs: ``c_368076f52ebe`` (F24).
    Kernel: mm/mprotect.c, mm/huge_memory.c, v6.19 (PTEs: v4.5+)."""
    return Pte(pte.kind, pte.page, False, pte.dirty, huge=pte.huge, uffd_wp=pte.uffd_wp)


def do_madvise(k, mm: mm_struct, start: int, length: int, advice: int) -> int:
    """``madvise()`` for MADV_HUGEPAGE (``hugepage_madvise``: VM_HUGEPAGE on the range's VMAs)
    and MADV_FREE (``madvise_free_single_vma``: splits PMD mappings the range covers in part;
    lazily freed pages are only dropped by reclaim, which the model does not have, and
    non-present entries -- device-private ones included -- are skipped, as the kernel does).
    Kernel: mm/madvise.c, v4.5+ (MADV_FREE v4.5)."""
    from .huge_memory import MADV_HUGEPAGE, VM_HUGEPAGE
    if start & ~PAGE_MASK:
        raise err(errno.EINVAL, "madvise")
    length = (length + PAGE_SIZE - 1) & PAGE_MASK
    end = start + length
    mm.mmap_lock.down_write("madvise")
    try:
        outside, inside = _split(mm.vmas.get("madvise"), start, end)
        if not inside:
            raise err(errno.ENOMEM, "madvise: no vma")
        if advice == MADV_HUGEPAGE:
            inside = [v.replace(vm_flags=v.vm_flags | VM_HUGEPAGE) for v in inside]
            _set_vmas(mm, outside + inside, "hugepage_madvise")
        elif advice == MADV_FREE:
            for v in inside:
                k.split_huge_pmd_range(v, start, end)
        else:
            raise err(errno.EINVAL, "madvise advice not modelled")
    finally:
        mm.mmap_lock.up_write("madvise")
    return 0


def do_mremap(k, mm: mm_struct, old_addr: int, old_len: int, new_len: int, flags: int,
              new_addr: int = 0) -> int:
    """``mremap()`` (mm/mremap.c) for one whole VMA range: ``move_vma`` + ``move_ptes`` (the
    page keeps its ``index``; the new VMA's ``vm_pgoff`` keeps the rmap address computation
    valid).  MREMAP_MAYMOVE|MREMAP_FIXED with optional MREMAP_DONTUNMAP; growing in place and
    shrinking are not modelled.

    Kernel: mm/mremap.c, v4.5+."""
    from .mmu_notifier import MMU_NOTIFY_UNMAP, mmu_notifier_range
    if old_addr & ~PAGE_MASK or not flags & MREMAP_MAYMOVE:
        raise err(errno.EINVAL, "mremap")
    old_len = (old_len + PAGE_SIZE - 1) & PAGE_MASK
    new_len = (new_len + PAGE_SIZE - 1) & PAGE_MASK
    vma = vma_lookup(mm, old_addr)
    if vma is None or old_addr + old_len > vma.vm_end:
        raise err(errno.EFAULT, "mremap: no vma")
    if new_len != old_len:
        raise err(errno.EINVAL, "mremap: resizing not modelled")
    if flags & MREMAP_FIXED:
        if new_addr & ~PAGE_MASK:
            raise err(errno.EINVAL, "mremap")
        k.do_munmap(mm, new_addr, new_len)
    else:
        new_addr = get_unmapped_area(k, mm, new_len)
    outside, inside = _split(mm.vmas.get("move_vma"), old_addr, old_addr + old_len)
    (src,) = inside
    dst = src.replace(vm_start=new_addr, vm_end=new_addr + new_len)
    # move_page_tables: a PMD moves whole (move_huge_pmd; v6.19 368076f52ebe: device-private
    # PMDs too) only to an equally aligned destination; otherwise it is split first
    k.split_huge_pmd_range(src, old_addr, old_addr + old_len)
    if (new_addr - old_addr) & (k.hpage_pmd_size() - 1):
        for off in range(0, old_len, k.hpage_pmd_size()):
            k.split_huge_pmd_address(src, old_addr + off)
    rng = mmu_notifier_range(MMU_NOTIFY_UNMAP, mm, old_addr, old_addr + old_len, vma=src)
    k.mmu_notifier_invalidate_range_start(rng)
    for off in range(0, old_len, PAGE_SIZE):
        spt = mm.pgtable(old_addr + off)
        if spt is None:
            continue
        dpt = mm.pgtable(new_addr + off, alloc=True)
        spt.ptl.lock("move_ptes")
        if dpt is not spt:
            dpt.ptl.lock("move_ptes")
        sv = spt.pte(old_addr + off)
        pte = sv.get("ptep_get_and_clear")
        if pte is not None:
            sv.set(None, "ptep_get_and_clear")
            dpt.pte(new_addr + off).set(pte, "set_pte_at")
        if dpt is not spt:
            dpt.ptl.unlock("move_ptes")
        spt.ptl.unlock("move_ptes")
    k.mmu_notifier_invalidate_range_end(rng)
    if flags & MREMAP_DONTUNMAP:
        outside.append(src)      # the old range stays mapped, now empty
    _set_vmas(mm, outside + [dst], "move_vma")
    return new_addr


def exit_mmap(k, mm: mm_struct) -> None:
    """``exit_mmap()`` (mm/mmap.c): unmap every VMA (zap drops every page reference).
    Kernel: mm/mmap.c, v4.5+."""
    mm.mmap_lock.down_write("exit_mmap")
    for vma in mm.vmas.get("exit_mmap"):
        k.unmap_vma_range(vma, vma.vm_start, vma.vm_end)
    _set_vmas(mm, [], "exit_mmap")
    mm.mmap_lock.up_write("exit_mmap")
    mm.dead = True


def mmget_not_zero(k, mm: mm_struct) -> bool:
    """``mmget_not_zero()`` (include/linux/sched/mm.h).  Kernel: include/linux/sched/mm.h, v4.11+."""
    return mm.mm_users.add_unless(1, 0, "mmget_not_zero")


def mmget(k, mm: mm_struct) -> None:
    """``mmget()``: take an ``mm_users`` reference. Kernel: include/linux/sched/mm.h, v4.11+
    (mmgrab/mmget split)."""
    mm.mm_users.add_return(1, "mmget")


def mmput(k, mm: mm_struct) -> None:
    """``mmput()`` (kernel/fork.c): the last user tears the address space down.
    Kernel: kernel/fork.c, v4.5+."""
    if mm.mm_users.sub_return(1, "mmput") == 0:
        k.exit_mmap(mm)


FUNCTIONS = (mm_alloc, get_unmapped_area, do_mmap, do_munmap, do_mprotect, change_pte_range_wrprotect,
             change_pte_wrprotect, do_madvise, do_mremap, exit_mmap, mmget_not_zero, mmget, mmput)
