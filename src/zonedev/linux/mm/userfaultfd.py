"""userfaultfd write-protect, as far as F24 needs it (fs/userfaultfd.c, mm/userfaultfd.c,
mm/mprotect.c; v5.7+).

* ``userfaultfd_register_wp``: UFFDIO_REGISTER with UFFDIO_REGISTER_MODE_WP -- VM_UFFD_WP on the
  range's VMAs (``userfaultfd_register`` -> ``vma_modify_flags_uffd``).
* ``mwriteprotect_range``: UFFDIO_WRITEPROTECT -- ``change_protection(MM_CP_UFFD_WP)`` over the
  range: every entry, present or not (a device-private one, a PMD), gets the uffd-wp marker and
  loses write permission (``change_pte_range`` / ``change_softleaf_pte`` / ``change_huge_pmd`` /
  ``change_non_present_huge_pmd``).
The fault side (``handle_userfault``) is not modelled: what F24 is about is the marker in the
page table, which a later write must find.
"""

from __future__ import annotations

import errno

from .mmap import PAGE_MASK, PAGE_SIZE, Pte, _set_vmas, _split, err

VM_UFFD_WP = 0x00001000


def userfaultfd_register_wp(k, mm, start: int, length: int) -> int:
    """UFFDIO_REGISTER(MODE_WP): VM_UFFD_WP on the VMAs of [start, start + length).
    Kernel: fs/userfaultfd.c, v5.7+."""
    if start & ~PAGE_MASK or length <= 0:
        raise err(errno.EINVAL, "UFFDIO_REGISTER")
    mm.mmap_lock.down_write("userfaultfd_register")
    try:
        outside, inside = _split(mm.vmas.get("userfaultfd_register"), start, start + length)
        if not inside:
            raise err(errno.EINVAL, "UFFDIO_REGISTER: no vma")
        for v in inside:
            k.split_huge_pmd_range(v, start, start + length)
        _set_vmas(mm, outside + [v.replace(vm_flags=v.vm_flags | VM_UFFD_WP) for v in inside],
                  "vma_modify_flags_uffd")
    finally:
        mm.mmap_lock.up_write("userfaultfd_register")
    return 0


def mwriteprotect_range(k, mm, start: int, length: int) -> int:
    """UFFDIO_WRITEPROTECT(MODE_WP): ``change_protection(..., MM_CP_UFFD_WP)`` -- the uffd-wp
    marker on every entry of the range (PMDs whole), write permission removed.
    Kernel: mm/userfaultfd.c, v5.7+ (device-private PMDs: v6.19)."""
    mm.mmap_lock.down_read("mwriteprotect_range")
    try:
        for addr in range(start & PAGE_MASK, start + length, PAGE_SIZE):
            vma = next((v for v in mm.vmas.get("find_vma") if v.vm_start <= addr < v.vm_end), None)
            if vma is None or not vma.vm_flags & VM_UFFD_WP:
                raise err(errno.ENOENT, "UFFDIO_WRITEPROTECT: range not registered for WP")
            pt = mm.pgtable(addr)
            if pt is None:
                continue
            pt.ptl.lock("pte_offset_map_lock")
            v = pt.pte(addr)
            e = v.get("ptep_get")
            if e is not None:
                v.set(Pte(e.kind, e.page, False, e.dirty, e.devmap, e.huge, uffd_wp=True), "pte_mkuffd_wp")
            pt.ptl.unlock("pte_unmap_unlock")
    finally:
        mm.mmap_lock.up_read("mwriteprotect_range")
    return 0


FUNCTIONS = (userfaultfd_register_wp, mwriteprotect_range)
