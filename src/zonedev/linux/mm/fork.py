"""``fork()``'s address-space copy (kernel/fork.c ``dup_mm`` -> ``dup_mmap``).

(Kept under ``linux/mm`` because ``zonedev.linux.kernel`` is the Kernel class module.)

The parent's mmap_lock is held for write; each VMA is duplicated into the child (private
anonymous VMAs share the parent's anon_vma here -- see ``mmap.anon_vma``), shared VMAs share
the shmem file, and ``copy_page_range`` duplicates the PTEs: references and mapcounts +1,
COW mappings write-protected on both sides.
"""

from __future__ import annotations

from .mmap import _join_anon_vma, _set_vmas


def dup_mm(k, oldmm):
    """``dup_mm()`` -> ``dup_mmap()``: the child's address space, VMA by VMA, PTEs copied with
    ``copy_page_range``. Kernel: kernel/fork.c, v4.5+."""
    mm = k.mm_alloc()
    mm.mmap_base = oldmm.mmap_base
    oldmm.mmap_lock.down_write("dup_mmap")
    mm.mmap_lock.down_write("dup_mmap")
    new = []
    for vma in oldmm.vmas.get("dup_mmap"):
        child = vma.replace(vm_mm=mm)
        _join_anon_vma(child.anon_vma, mm)
        new.append(child)
    _set_vmas(mm, new, "dup_mmap")
    for src, dst in zip(oldmm.vmas.get("dup_mmap"), new):
        k.copy_page_range(dst, src)
    mm.mmap_lock.up_write("dup_mmap")
    oldmm.mmap_lock.up_write("dup_mmap")
    return mm


FUNCTIONS = (dup_mm,)
