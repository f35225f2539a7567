"""``struct page`` / ``struct folio`` (include/linux/mm_types.h, include/linux/page-flags.h).

Fields that other CPUs change are sync objects, so every access is a point the checker can
interleave at: ``_refcount``, ``_mapcount``, ``flags``, ``mapping``, ``index``,
``zone_device_data``, and on a large folio's head ``_pincount``.  Fields fixed when the memmap is
initialised (``pfn``, ``zone``, ``pgmap``, the compound head and order) are plain attributes.

A folio is its head page: ``page_folio(page)`` returns the head, and folio functions take it.
"""

from __future__ import annotations

from ...sync import Atomic, Flags, Var

# page-flag bit numbers (include/linux/page-flags.h; only the flags the model uses)
PG_locked = 0
PG_referenced = 1
PG_uptodate = 2
PG_dirty = 3
PG_lru = 4
PG_head = 5
PG_waiters = 6
PG_active = 7
PG_anon_exclusive = 8   # PG_mappedtodisk's bit, reused for anon pages (v5.19+)
PG_writeback = 9
# PageBuddy is a page_type in the kernel, not a flag; a bit here keeps it in the checker's state.
PG_buddy = 10
# Model-only bookkeeping bits (no kernel counterpart; never a scheduling point of their own).
#: the page sits unused in its driver's free list / idle (set by the free path, cleared by
#: allocation: a refcount increment or lock_page).  Detects ``page_free`` twice.
PG_zd_free = 11
#: memunmap's teardown put has already dropped this page's base reference (1-based eras), so a
#: refcount of 1 is somebody's real reference.  Detects ``page_free`` on a referenced page.
PG_zd_nobase = 12
# model bookkeeping: the memmap under this page was removed (arch_remove_memory); any access is a
# use after free.  Kept in ``flags`` so it is part of a sync object's state: the checker's
# dependence tracking and state hashing see it like any other page field.
PG_memmap_gone = 13
#: model bookkeeping: the free path called ``mem_cgroup_uncharge`` on this page.  The kernel's
#: uncharge returns at once for a page that was never charged (mm/memcontrol.c: ``if
#: (!page->mem_cgroup) return`` in v4.x, ``!page_memcg(page)`` / ``!folio_memcg(folio)`` later),
#: as every fsdax page is; the bit
#: records only that the device-private clean-up ran on it (kernel_eras F6, seed 001).
PG_zd_uncharged = 14

PAGE_FLAG_NAMES = {
    PG_locked: "locked", PG_referenced: "referenced", PG_uptodate: "uptodate", PG_dirty: "dirty",
    PG_lru: "lru", PG_head: "head", PG_waiters: "waiters", PG_active: "active",
    PG_anon_exclusive: "anon_exclusive", PG_writeback: "writeback", PG_buddy: "buddy",
    PG_zd_free: "zd_free", PG_zd_nobase: "zd_nobase", PG_memmap_gone: "memmap_gone",
    PG_zd_uncharged: "zd_uncharged",
}

ZONE_NORMAL = "Normal"
ZONE_DEVICE = "Device"


class Page:
    """One ``struct page``.  ``pfn`` identifies it (its ``_zd_key`` for the checker)."""

    __slots__ = ("pfn", "zone", "pgmap", "head", "order", "_refcount", "_mapcount", "flags",
                 "mapping", "index", "zone_device_data", "_pincount", "memcg_data", "data")

    def __init__(self, pfn: int, zone: str = ZONE_NORMAL, refcount: int = 0) -> None:
        self.pfn = pfn
        self.zone = zone
        self.pgmap = None                 # struct dev_pagemap *, set by memmap_init_zone_device
        self.head: Page = self            # compound_head(); self for a small page or a head
        self.order = 0                    # folio_order() on the head
        tag = f"page {pfn:#x}"
        self._refcount = Atomic(refcount, f"{tag}._refcount")
        self._mapcount = Atomic(-1, f"{tag}._mapcount")
        self.flags = Flags(0, f"{tag}.flags")
        self.mapping = Var(None, f"{tag}.mapping")
        self.index = Var(0, f"{tag}.index")
        self.zone_device_data = Var(None, f"{tag}.zone_device_data")
        self._pincount: Atomic | None = None   # folio->_pincount, large folios only (v5.7+)
        #: ``memcg_data``; on page[1] of a large folio also ``folio->_nr_pages`` (v6.15+,
        #: 4996fc547f5b).  Made when first written (``folio_set_order``); None reads as 0.
        self.memcg_data: Var | None = None
        self.data = Var(None, f"{tag}.data")   # the page's contents, for models that move data

    @property
    def memmap_live(self) -> bool:
        """False once the memmap under the page is removed (``memunmap_pages``)."""
        return not self.flags.bits >> PG_memmap_gone & 1

    @memmap_live.setter
    def memmap_live(self, live: bool) -> None:
        if live:
            self.flags.bits &= ~(1 << PG_memmap_gone)
        else:
            self.flags.bits |= 1 << PG_memmap_gone

    def _zd_key(self) -> tuple:
        return ("page", self.pfn)

    def __repr__(self) -> str:
        pgmap = f" pgmap={self.pgmap.name}" if self.pgmap is not None else ""
        return (f"<page {self.pfn:#x} {self.zone} refcount={self._refcount.peek()} "
                f"mapcount={self._mapcount.peek() + 1}{pgmap}>")


def page_folio(page: Page) -> Page:
    return page.head


def is_zone_device_page(page: Page) -> bool:
    return page.zone == ZONE_DEVICE
