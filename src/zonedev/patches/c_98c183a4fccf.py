"""98c183a4fccf "fs/dax: don't disassociate zero page entries" (v6.15, Alistair Popple; the last
patch of the merge that brought 38607c62b3; Fixes: 38607c62b3).

[kernel_2025_2026.md F19; the 40-character id and the v6.15 mm-stable shortlog (with
"fs/dax: properly refcount fs dax pages") are CONFIRMED in stored kernel.org notifications and
the 2026 follow-up postings]

* Once ``dax_associate_entry``/``dax_disassociate_entry`` worked on ``dax_to_folio(entry)``
  (38607c62b3), a hole's zero-page entry associated the **shared zero page** with the file:
  ``zero_page->mapping`` = the file, and the next hole of any file hit
  ``WARN_ON_ONCE(folio->mapping)``.  The fix returns early for zero and empty entries.
* The early return sits *after* ``folio = dax_to_folio(entry)`` (Souvik Banerjee, May 2026:
  harmless where the vmemmap covers the pfn, a paging fault on virtio-pmem with an altmap
  memmap).  The model keeps that order (``dax_to_folio`` reads the pfn's struct page); its
  memmap always covers the zero page, so that follow-up is not exercised here.
"""

from ..linux.fs.dax import dax_entry, dax_is_empty_entry, dax_is_zero_entry
from ._patch import Patch

PATCH = Patch(
    commit="98c183a4fccf", title="fs/dax: don't disassociate zero page entries",
    version="v6.15", confidence="CONFIRMED", fixes="38607c62b3",
    replaces="a zero-page DAX entry associated the shared zero page with the file (F19)",
)

def _v615(name):
    from . import c_38607c62b3
    return c_38607c62b3.PATCH.functions[name]


@PATCH.define
def dax_associate_entry(k, page, mapping, index: int = 0, shared: bool = False) -> None:
    """fs/dax.c v6.15 with the fix: ``dax_to_folio`` first, then return for zero/empty entries."""
    if isinstance(page, dax_entry):
        k.dax_to_folio(page)
        if dax_is_zero_entry(page) or dax_is_empty_entry(page):
            return
    _v615("dax_associate_entry")(k, page, mapping, index, shared)


@PATCH.define
def dax_disassociate_entry(k, page, trunc: bool = True) -> None:
    """fs/dax.c v6.15 with the fix: ``dax_to_folio`` first, then return for zero/empty entries."""
    if isinstance(page, dax_entry):
        k.dax_to_folio(page)
        if dax_is_zero_entry(page) or dax_is_empty_entry(page):
            return
    _v615("dax_disassociate_entry")(k, page, trunc)
