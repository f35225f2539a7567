"""fs/dax.c and the filesystems' break-layouts wait (fs/xfs/xfs_file.c, fs/ext4/inode.c).

* DAX page-cache entries (``dax_entry``): an xarray value holding a pfn and flags, or a zero-page
  entry (a hole mapped read-only to the zero page, ``DAX_ZERO_PAGE``), or an empty (locked
  placeholder) entry; ``order`` > 0 is a PMD entry (``DAX_PMD``, ``dax_entry_order``), a
  multi-index entry covering ``1 << order`` indices from its aligned first one.  ``dax_to_folio(entry)`` is ``page_folio(pfn_to_page(dax_to_pfn(entry)))``.
* ``dax_associate_entry``/``dax_disassociate_entry``: an fsdax page joins/leaves a file's
  mapping (``page->mapping``, ``page->index``).  Before v6.15 this takes no page reference (the
  PTE is a devmap pfn mapping) and a zero/empty entry has no pfns to walk
  (``for_each_mapped_pfn`` over ``dax_entry_size() == 0``); from v6.15 (c_38607c62b3) each PTE
  mapping of the page takes a reference (``vmf_insert_page_mkwrite``) and the association works
  on ``dax_to_folio(entry)``.
* ``dax_busy_page(page)``: v4.18-v6.14 ``page_ref_count(page) > 1``; v6.15
  ``folio_ref_count(folio) - folio_mapcount(folio) > 0`` (``kernel_2025_2026.md`` C3).
* ``dax_layout_busy_page_range(mapping, start, end)`` (range form from v5.10; v4.18 scanned the
  whole mapping): before v6.15 ``return NULL`` when ``!mapping_mapped(mapping)``, else
  ``unmap_mapping_pages()`` then the first busy page of the range; v6.15 drops the
  ``mapping_mapped`` early-out and always unmaps first.
* ``dax_layout_busy_page(pages)``: the same busy test over a list of pages (for drivers and
  tests that hold pages without a file).
* ``dax_wait_page_idle(page)``: ``___wait_var_event(&page->_refcount, idle)`` (v6.15:
  ``wait_var_event(page, dax_page_is_idle(page))``).  Its wake-up comes from the put that makes
  the page idle (``wake_up_var``); a put path that forgets it (F12, v5.18 ``gup_put_folio``)
  leaves the waiter asleep for good: the checker reports the hang, the REPL raises
  ``WouldBlockForever``.
* ``dax_break_layouts(pages)``: loop until no busy page remains (xfs_break_dax_layouts).

Installed by c_5fac7408d828 (v4.18).
"""

from __future__ import annotations

from dataclasses import dataclass

DAX_ENTRY_PAGE = "page"
DAX_ZERO_PAGE = "zero"
DAX_EMPTY = "empty"


@dataclass(frozen=True)
class dax_entry:
    """A DAX xarray value: ``kind`` is ``page`` (a pmem block's pfn), ``zero`` (the zero page,
    mapped for a read of a hole) or ``empty`` (a locked placeholder while a fault allocates)."""

    kind: str
    pfn: int = 0
    order: int = 0

    def _zd_key(self) -> tuple:
        return ("dax_entry", self.kind, self.pfn, self.order)

    def __repr__(self) -> str:
        pmd = " pmd" if self.order else ""
        return f"<dax {self.kind}{pmd}{'' if self.kind == DAX_EMPTY else f' pfn={self.pfn:#x}'}>"


def dax_entry_order(entry) -> int:
    """``dax_entry_order()``: ``PMD_ORDER`` for a ``DAX_PMD`` entry, else 0."""
    return entry.order


def dax_is_zero_entry(entry) -> bool:
    """``dax_is_zero_entry()``: a hole mapped to the zero page."""
    return entry.kind == DAX_ZERO_PAGE


def dax_is_empty_entry(entry) -> bool:
    """``dax_is_empty_entry()``: a locked placeholder, no pfn yet."""
    return entry.kind == DAX_EMPTY


def dax_to_folio(k, entry):
    """``dax_to_folio()`` (v6.15+): ``page_folio(pfn_to_page(dax_to_pfn(entry)))`` -- reads the
    struct page of whatever pfn the entry holds, a real page or not (F19: an empty entry's pfn
    is 0, a zero entry's the zero page's).

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    page = k.memmap.get(entry.pfn)
    if page is None:
        k.world.violate("dax_to_folio_bad_pfn",
                        "BUG: unable to handle page fault: dax_to_folio() on an entry whose pfn has no struct page",
                        entry.pfn, "dax_to_folio")
        return None
    return page.head


def _entry_pages(k, page_or_entry) -> list:
    """``for_each_mapped_pfn(entry, pfn)`` (v4.18-v6.14): every page of the entry -- one for a
    PTE entry, ``1 << order`` for a PMD entry, none for zero and empty entries
    (``dax_entry_size() == 0``).  A page is passed as it is."""
    if isinstance(page_or_entry, dax_entry):
        if page_or_entry.kind != DAX_ENTRY_PAGE:
            return []
        return [k.memmap[page_or_entry.pfn + i] for i in range(1 << page_or_entry.order)]
    return [page_or_entry]


def dax_associate_entry(k, page, mapping, index: int = 0, shared: bool = False) -> None:
    """fs/dax.c v4.18-v6.14: set ``page->mapping``/``->index`` (``index + i``) for each pfn of
    the entry (``WARN_ON_ONCE(page->mapping)``: a page belongs to one file; reflink sharing
    from v5.19 is modelled from v6.15 only, ``folio->share``: ``shared`` is ignored here).
    ``page`` is a page or a ``dax_entry``."""
    func = "dax_associate_entry"
    for i, page in enumerate(_entry_pages(k, page)):
        k.set_page_field(page, "mapping", mapping, func)
        k.set_page_field(page, "index", index + i, func)


def dax_disassociate_entry(k, page, trunc: bool = True) -> None:
    """fs/dax.c v4.18-v6.14, for each pfn of the entry: ``WARN_ON_ONCE(trunc &&
    page_ref_count(page) > 1)`` -- a block leaving the file while somebody (DMA) still holds its
    page -- then clear ``->mapping``/``->index``.  ``page`` is a page or a ``dax_entry``."""
    func = "dax_disassociate_entry"
    idle = k.fact("fsdax_idle_refcount", 1)
    for page in _entry_pages(k, page):
        if trunc and page._refcount.peek() > idle:
            k.world.violate("dax_disassociate_busy_page", "WARN_ON_ONCE(trunc && page_ref_count(page) > 1)",
                            page.pfn, func)
        k.set_page_field(page, "mapping", None, func)
        k.set_page_field(page, "index", 0, func)


def dax_page_is_idle(k, page) -> bool:
    """``dax_page_is_idle()`` (named so from v6.15; the waiters' open-coded test before): the
    refcount is at the era's idle value.

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    return k.page_ref_count(page, "dax_page_is_idle") <= k.fact("fsdax_idle_refcount", 1)


def dax_busy_page(k, page) -> bool:
    """v4.18-v6.14: ``page_ref_count(page) > 1`` -- any reference beyond the idle one (DAX PTEs
    hold none, so this is GUP).  The idle value is the era's fact, so a what-if patch that makes
    fsdax 0-based (the 2021 proposal) changes it here too.

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    return k.page_ref_count(page.head, "dax_busy_page") > k.fact("fsdax_idle_refcount", 1)


def dax_layout_busy_page(k, pages):
    """The first page of ``pages`` that is still busy (``dax_busy_page``), or None.
    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    for page in pages:
        page = page.head
        if k.dax_busy_page(page):
            return page
    return None


def dax_layout_busy_page_range(k, mapping, start: int = 0, end: int = -1):
    """fs/dax.c v4.18-v6.14 (range form v5.10+): nothing to do unless the file is mapped
    (``mapping_mapped``); otherwise unmap the range -- so a racing gup-fast either sees the
    PTE gone and takes the slow path under the PTL, or its elevated count is seen below -- and
    return the first busy page of the range."""
    if not k.mapping_mapped(mapping):
        return None
    return k.dax_layout_scan_busy(mapping, start, end)


def dax_layout_scan_busy(k, mapping, start: int, end: int):
    """``unmap_mapping_pages()`` on [start, end] then the entry walk for a busy page.
    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    last = end if end >= 0 else (1 << 62)
    k.unmap_mapping_pages(mapping, start, last - start + 1)
    for index, entry in mapping.entries_in(start, last, "xas_for_each"):
        for page in _entry_pages(k, entry):          # v6.15: the folio (every page's head)
            if k.dax_busy_page(page):
                return page.head
    return None


def dax_wait_page_idle(k, page, drop=None, retake=None) -> None:
    """``___wait_var_event(&page->_refcount, page_ref_count(page) == idle, TASK_INTERRUPTIBLE,
    0, 0, cb)``: ``drop``/``retake`` are the filesystem callback's unlock and relock of
    MMAPLOCK around ``schedule()`` (xfs_wait_dax_page; ext4_wait_dax_page).

    Kernel: fs/dax.c, v4.18+ (5fac7408d828)."""
    idle = k.fact("fsdax_idle_refcount", 1)
    ref = page._refcount
    k.world.event("dax_wait_page_idle", page.pfn, "waiting", None, f"refcount == {idle}")
    if drop is not None:
        drop()
    k.page_waitqueue(page).wait_event(lambda: ref.value <= idle, (ref,), "___wait_var_event")
    if retake is not None:
        retake()


def dax_break_layouts(k, pages) -> None:
    """xfs_break_dax_layouts / ext4_break_layouts: wait until every page is idle.
    Kernel: fs/xfs/xfs_file.c, v4.18+ (5fac7408d828)."""
    while True:
        page = k.dax_layout_busy_page(pages)
        if page is None:
            return
        k.dax_wait_page_idle(page)


def fsdax_idle_without_wakeup(k, page, func: str) -> None:
    """A put made an fsdax page idle on a path that sends no wake-up (F12).
    Kernel: mm/memremap.c, v4.18-v5.18 (the paths f4f451a16dd1 fixed)."""
    k.world.violate("fsdax_waiter_never_woken",
                    "missing wake_up_var(&page->_refcount): a dax_layout_busy_page() waiter sleeps forever",
                    page.pfn, func)


FUNCTIONS = (dax_to_folio, dax_associate_entry, dax_disassociate_entry, dax_page_is_idle, dax_busy_page,
             dax_layout_busy_page, dax_layout_busy_page_range, dax_layout_scan_busy, dax_wait_page_idle,
             dax_break_layouts, fsdax_idle_without_wakeup)
