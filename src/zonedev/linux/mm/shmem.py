"""A tmpfs-like file (mm/shmem.c): a page cache, ``shmem_fault``, pread/pwrite, truncate.

Used for MAP_SHARED|MAP_ANONYMOUS memory (``shmem_zero_setup``) and for the selftests'
O_TMPFILE files in /tmp (``file_read``/``file_write``).  The page cache holds one reference
per cached page; a mapping takes one more and a mapcount (``page_add_file_rmap``).  Swap and
huge pages are not modelled.
"""

from __future__ import annotations

from ...sync import Var
from .mmap import PAGE_SHIFT, PAGE_SIZE


class shmem_file:
    """``struct file`` + ``shmem_inode_info`` + its ``address_space``."""

    vm_ops = "shmem"
    anon = False
    def __init__(self, k, size: int = 0, name: str = "shmem") -> None:
        from .mmap import next_id
        self.id = next_id("file")
        self.name = f"{name}{self.id}"
        self.i_size = Var(size, f"{self.name}.i_size")
        self.i_pages: dict[int, Var] = {}      # the page cache (xarray), one Var per index

    def _zd_key(self) -> tuple:
        return ("file", self.id)

    def slot(self, index: int) -> Var:
        v = self.i_pages.get(index)
        if v is None:
            v = self.i_pages[index] = Var(None, f"{self.name}.i_pages[{index}]")
        return v


def shmem_file_setup(k, size: int = 0, name: str = "shmem") -> shmem_file:
    """``shmem_file_setup()``: a new tmpfs file of ``size`` bytes. Kernel: mm/shmem.c, v4.5+."""
    return shmem_file(k, size, name)


def shmem_zero_setup(k, size: int) -> shmem_file:
    """``shmem_zero_setup()``: the file behind a MAP_SHARED|MAP_ANONYMOUS mapping.
    Kernel: mm/shmem.c, v4.5+."""
    return shmem_file(k, size, "dev/zero")


def shmem_get_page(k, file: shmem_file, index: int):
    """``shmem_get_folio(SGP_CACHE)``: find or allocate the page at ``index``; returns it with a
    reference for the caller (the page cache keeps its own).

    Kernel: mm/shmem.c, v4.5+."""
    slot = file.slot(index)
    page = slot.get("filemap_get_entry")
    if page is None:
        page = k.alloc_page()                       # refcount 1: the page cache's reference
        k.set_page_field(page, "mapping", file, "shmem_add_to_page_cache")
        k.set_page_field(page, "index", index, "shmem_add_to_page_cache")
        slot.set(page, "shmem_add_to_page_cache")
    k.get_page(page)
    return page


def shmem_fault(k, vmf):
    """``shmem_fault()``: ``vmf.page`` = the page cache page, with a reference.  Kernel: mm/shmem.c, v4.5+."""
    vma = vmf.vma
    index = ((vmf.address - vma.vm_start) >> PAGE_SHIFT) + vma.vm_pgoff
    vmf.page = k.shmem_get_page(vma.vm_file, index)
    return 0


def shmem_pwrite(k, file: shmem_file, values: list, offset_ints: int, ints_per_page: int) -> int:
    """pwrite(2) of ints at int offset ``offset_ints`` through the page cache.  Kernel: mm/shmem.c, v4.5+."""
    i = 0
    while i < len(values):
        index, off = divmod(offset_ints + i, ints_per_page)
        page = k.shmem_get_page(file, index)
        n = min(len(values) - i, ints_per_page - off)
        data = list(page.data.get("copy_page_from_iter") or (0,) * ints_per_page)
        data[off:off + n] = values[i:i + n]
        page.data.set(tuple(data), "copy_page_from_iter")
        k.put_page(page)
        i += n
    return len(values) * 4


def shmem_pread(k, file: shmem_file, n: int, offset_ints: int, ints_per_page: int) -> list:
    """pread(2) of ``n`` ints through the page cache (holes read as zeros).  Kernel: mm/shmem.c, v4.5+."""
    out = []
    i = 0
    while i < n:
        index, off = divmod(offset_ints + i, ints_per_page)
        page = file.slot(index).get("filemap_get_pages")
        m = min(n - i, ints_per_page - off)
        data = page.data.get("copy_page_to_iter") if page is not None else None
        out.extend(data[off:off + m] if data else [0] * m)
        i += m
    return out


def shmem_evict_inode(k, file: shmem_file) -> None:
    """Last close of an unlinked file: drop the page cache's references (truncate_inode_pages).
    Kernel: mm/shmem.c, v4.5+."""
    for index in sorted(file.i_pages):
        slot = file.i_pages[index]
        page = slot.get("truncate_inode_pages")
        if page is not None:
            slot.set(None, "truncate_inode_pages")
            k.put_page(page)


FUNCTIONS = (shmem_file_setup, shmem_zero_setup, shmem_get_page, shmem_fault, shmem_pwrite,
             shmem_pread, shmem_evict_inode)
