"""include/linux/mm.h, include/linux/pagemap.h, include/linux/page-flags.h: era-independent parts.

Constants (``FOLL_*``, ``GUP_PIN_COUNTING_BIAS``) and the helpers every era shares: page-flag
bitops with events, ``lock_page``/``unlock_page``, ``compound_head``/``page_folio``, the
zone-device type predicates, ``page_mapcount``.  The era-dependent ``get_page``/``put_page``
live in the patch modules that changed them.
"""

from __future__ import annotations

from .memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA,
                       MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC)
from .mm_types import (PAGE_FLAG_NAMES, PG_active, PG_anon_exclusive, PG_locked, PG_waiters,
                       PG_zd_free, PG_zd_uncharged, ZONE_DEVICE)

# gup flags (include/linux/mm.h of v5.7-v6.2; later kernels moved them to an enum in mm_types.h
# with other values -- the model only compares them with each other)
FOLL_WRITE = 0x01
FOLL_TOUCH = 0x02
FOLL_GET = 0x04
FOLL_DUMP = 0x08
FOLL_FORCE = 0x10
FOLL_NOWAIT = 0x20
FOLL_NOFAULT = 0x80
FOLL_HWPOISON = 0x100
FOLL_MIGRATION = 0x400
FOLL_TRIED = 0x800
FOLL_REMOTE = 0x2000
FOLL_ANON = 0x8000
FOLL_LONGTERM = 0x10000
FOLL_SPLIT_PMD = 0x20000
FOLL_PIN = 0x40000
FOLL_FAST_ONLY = 0x80000
FOLL_PCI_P2PDMA = 0x100000      # v6.2+

#: include/linux/mm.h (v5.7+, 3faa52c03f44): a FOLL_PIN on a small page adds this to _refcount
GUP_PIN_COUNTING_BIAS = 1 << 10

_ZD_FREE = ~(1 << PG_zd_free)


# --- page flags -------------------------------------------------------------------------------

def SetPageFlag(k, page, nr: int, func: str) -> None:
    """``__SetPageX`` / ``SetPageX``: set a flag bit and log it.
    Kernel: include/linux/page-flags.h, v4.5+."""
    flags = page.flags
    old = flags.test_and_set_bit(nr, func)
    if not old:
        k.world.event(func, page.pfn, "flags." + PAGE_FLAG_NAMES[nr], False, True)


def ClearPageFlag(k, page, nr: int, func: str) -> None:
    """``__ClearPageX`` / ``ClearPageX``: clear a flag bit and log it. Kernel:
    include/linux/page-flags.h, v4.5+."""
    old = page.flags.test_and_clear_bit(nr, func)
    if old:
        k.world.event(func, page.pfn, "flags." + PAGE_FLAG_NAMES[nr], True, False)


def PageFlag(k, page, nr: int, func: str = "test_bit") -> bool:
    """``PageX()``: test a flag bit. Kernel: include/linux/page-flags.h, v4.5+."""
    return page.flags.test_bit(nr, func)


def PageLocked(k, page) -> bool:
    """``PageLocked()``: is PG_locked set? Kernel: include/linux/page-flags.h, v4.5+."""
    return page.head.flags.test_bit(PG_locked, "PageLocked")


def __ClearPageActive(k, page, func: str = "__ClearPageActive") -> None:
    """``__ClearPageActive()``: clear PG_active (the free path's non-atomic clear). Kernel:
    include/linux/page-flags.h, v4.5+."""
    k.ClearPageFlag(page, PG_active, func)


def __ClearPageWaiters(k, page, func: str = "__ClearPageWaiters") -> None:
    """``__ClearPageWaiters()``: clear PG_waiters (the free path's non-atomic clear). Kernel:
    include/linux/page-flags.h, v4.10+."""
    k.ClearPageFlag(page, PG_waiters, func)


def __ClearPageAnonExclusive(k, page, func: str = "__ClearPageAnonExclusive") -> None:
    """``__ClearPageAnonExclusive()``: clear PG_anon_exclusive (zone-device free path). Kernel:
    include/linux/page-flags.h, v5.19+."""
    k.ClearPageFlag(page, PG_anon_exclusive, func)


def lock_page(k, page, func: str = "lock_page") -> None:
    """``lock_page()`` (include/linux/pagemap.h): sleep until PG_locked is clear, then set it.
    Kernel: include/linux/pagemap.h, v4.5+."""
    page = page.head
    page.flags.wait_and_set_bit(PG_locked, func)
    k.check_page_alive(page, func)
    page.flags.bits &= _ZD_FREE          # model bookkeeping: a locked page is taken
    k.world.event(func, page.pfn, "flags.locked", False, True)


def trylock_page(k, page, func: str = "trylock_page") -> bool:
    """``trylock_page()``: set PG_locked if it was clear; true on success, never sleeps. Kernel:
    include/linux/pagemap.h, v4.5+."""
    page = page.head
    was_locked = page.flags.test_and_set_bit(PG_locked, func)
    k.check_page_alive(page, func)
    if was_locked:
        return False
    page.flags.bits &= _ZD_FREE
    k.world.event(func, page.pfn, "flags.locked", False, True)
    return True


def unlock_page(k, page, func: str = "unlock_page") -> None:
    """``unlock_page()``: clear PG_locked and wake the page's waiters. Kernel: mm/filemap.c, v4.5+."""
    page = page.head
    was_locked = page.flags.test_and_clear_bit(PG_locked, func)
    k.check_page_alive(page, func)
    if not was_locked:
        k.world.violate("unlock_of_unlocked_page", "VM_BUG_ON_PAGE(!PageLocked(page), page)", page.pfn, func)
        return
    k.world.event(func, page.pfn, "flags.locked", True, False)


folio_lock = lock_page
folio_unlock = unlock_page
folio_trylock = trylock_page


# --- plain fields -----------------------------------------------------------------------------

def set_page_field(k, page, field: str, value, func: str) -> None:
    """Write ``page->field`` (``mapping``, ``index``, ``zone_device_data``) and log it.
    Kernel: include/linux/mm_types.h, v4.5+."""
    old = getattr(page, field).set(value, func)
    if old is not value:
        k.world.event(func, page.pfn, field, _show(old), _show(value))


def _show(v):
    if v is None or isinstance(v, (int, str, bool)):
        return v
    return getattr(v, "name", None) or type(v).__name__


# --- compound pages and zone-device predicates ---------------------------------------------------

def compound_head(k, page):
    """``compound_head()``: the head page of a compound page, else the page itself. Kernel:
    include/linux/page-flags.h, v4.5+."""
    return page.head


def page_folio(k, page):
    """``page_folio()``: the folio (head page) a page belongs to. Kernel:
    include/linux/page-flags.h, v5.16+ (compound_head before)."""
    return page.head


def compound_order(k, page) -> int:
    """``compound_order()``: the order of a compound page (0 for a small page). Kernel:
    include/linux/mm.h, v4.5+."""
    return page.head.order


def folio_nr_pages(k, folio) -> int:
    """``folio_nr_pages()``: pages in the folio (``1 << order``). Kernel: include/linux/mm.h,
    v5.16+."""
    return 1 << folio.order


def is_zone_device_page(k, page) -> bool:
    """``is_zone_device_page()``: the page belongs to ZONE_DEVICE. Kernel: include/linux/mm.h,
    v4.5+."""
    return page.zone == ZONE_DEVICE


def folio_is_zone_device(k, folio) -> bool:
    """``folio_is_zone_device()``: the folio belongs to ZONE_DEVICE. Kernel: include/linux/mm.h,
    v5.16+."""
    return folio.zone == ZONE_DEVICE


def _type(page):
    pgmap = page.pgmap
    return pgmap.type if pgmap is not None and page.zone == ZONE_DEVICE else None


def is_device_private_page(k, page) -> bool:
    """``is_device_private_page()``: a ZONE_DEVICE page of a MEMORY_DEVICE_PRIVATE pgmap. Kernel:
    include/linux/mm.h, v4.14+ (5042db43cc26)."""
    return _type(page) == MEMORY_DEVICE_PRIVATE


def is_device_public_page(k, page) -> bool:
    """``is_device_public_page()``: a ZONE_DEVICE page of a MEMORY_DEVICE_PUBLIC pgmap. Kernel:
    include/linux/mm.h, v4.14-v5.2 (df6ad69838fc; removed by 25b2995a35b6)."""
    return _type(page) == MEMORY_DEVICE_PUBLIC


def is_device_coherent_page(k, page) -> bool:
    """``is_device_coherent_page()``: a ZONE_DEVICE page of a MEMORY_DEVICE_COHERENT pgmap. Kernel:
    include/linux/memremap.h, v6.0+ (f25cbb7a95a2)."""
    return _type(page) == MEMORY_DEVICE_COHERENT


def is_pci_p2pdma_page(k, page) -> bool:
    """``is_pci_p2pdma_page()``: a ZONE_DEVICE page of a MEMORY_DEVICE_PCI_P2PDMA pgmap. Kernel:
    include/linux/mm.h, v4.20+ (52916982af48)."""
    return _type(page) == MEMORY_DEVICE_PCI_P2PDMA


def is_fsdax_page(k, page) -> bool:
    """``is_fsdax_page()``: a ZONE_DEVICE page of a MEMORY_DEVICE_FS_DAX pgmap. Kernel:
    include/linux/memremap.h, v4.18+ (e76384884344 added MEMORY_DEVICE_FS_DAX)."""
    return _type(page) == MEMORY_DEVICE_FS_DAX


folio_is_device_private = is_device_private_page
folio_is_device_coherent = is_device_coherent_page
folio_is_pci_p2pdma = is_pci_p2pdma_page
folio_is_fsdax = is_fsdax_page


def page_mapcount(k, page) -> int:
    """``page_mapcount()``: the page-table mappings of a small page (``_mapcount + 1``). Kernel:
    include/linux/mm.h, v4.5+."""
    return page._mapcount.read("page_mapcount") + 1


def PageAnon(k, page) -> bool:
    """``PageAnon()``: the mapping's low bit (PAGE_MAPPING_ANON); the model stores an object
    whose ``anon`` attribute is true (an ``anon_vma``) or the string ``"anon"``.

    Kernel: include/linux/page-flags.h, v4.5+."""
    m = page.head.mapping.get("PageAnon")
    return m == "anon" or bool(getattr(m, "anon", False))


def mem_cgroup_uncharge(k, page, func: str = "mem_cgroup_uncharge") -> None:
    """``mem_cgroup_uncharge()`` (mm/memcontrol.c): memcg charges are not modelled, so for the
    model every ZONE_DEVICE page is uncharged and the kernel's early return (``!page->mem_cgroup``
    in v4.x, later ``!page_memcg(page)`` / ``!folio_memcg(folio)``) is all that runs.  The call is logged, and the model-only
    ``PG_zd_uncharged`` bit records that the free path made it (no scheduling point): scenarios
    ask with it whether device-private clean-up runs on fsdax pages (F6).

    Kernel: include/linux/mm.h, v4.5+."""
    page.flags.bits |= 1 << PG_zd_uncharged
    k.world.event(func, page.pfn, "memcg", None, None)


FUNCTIONS = (
    SetPageFlag, ClearPageFlag, PageFlag, PageLocked, __ClearPageActive, __ClearPageWaiters,
    __ClearPageAnonExclusive, lock_page, trylock_page, unlock_page, set_page_field,
    compound_head, page_folio, compound_order, folio_nr_pages, is_zone_device_page,
    folio_is_zone_device, is_device_private_page, is_device_public_page, is_device_coherent_page,
    is_pci_p2pdma_page, is_fsdax_page, page_mapcount, PageAnon, mem_cgroup_uncharge,
)
ALIASES = {
    "folio_lock": lock_page, "folio_unlock": unlock_page, "folio_trylock": trylock_page,
    "folio_is_device_private": is_device_private_page,
    "folio_is_device_coherent": is_device_coherent_page,
    "folio_is_pci_p2pdma": is_pci_p2pdma_page, "folio_is_fsdax": is_fsdax_page,
}
