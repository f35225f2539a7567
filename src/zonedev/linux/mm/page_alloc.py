"""mm/page_alloc.c: ordinary (ZONE_NORMAL) pages and a small buddy allocator.

The model's memmap is ``k.memmap`` (pfn -> Page).  Ordinary pages are made on first allocation
(pfns from ``NORMAL_BASE_PFN`` up) and go back to a free list when their refcount reaches 0; a
freed page is marked ``PG_buddy`` and any page_ref access to it is ``use_after_free``.  The free
list and the next fresh pfn are one ``Var`` under ``zone->lock``, so the checker sees allocation
as shared state.  Allocation is deterministic: LIFO reuse of the most recently freed block of the
same order, else fresh pfns.

Era-independent (every kernel v4.5+ frees a page whose refcount reaches 0 to the buddy
allocator through ``__put_page``/``__folio_put`` -> ``free_unref_page``/``__free_pages``).
"""

from __future__ import annotations

from ...sync import Atomic, Lock, Rcu, Var
from ..include.mm_types import PG_buddy, PG_head, ZONE_NORMAL, Page

NORMAL_BASE_PFN = 0x1000
_BUDDY = 1 << PG_buddy


def mem_init(k) -> None:
    """Boot: the memmap, the buddy allocator's state and the pgmap lookup (``pgmap_array``).
    Kernel: mm/page_alloc.c, v4.5+ (boot: free_area_init, memmap)."""
    k.memmap = {}
    k.zone_lock = Lock("zone->lock")
    k.buddy = Var((NORMAL_BASE_PFN, ()), "buddy free lists")   # (next fresh pfn, ((pfn, order), ...))
    k.pgmap_array = Var((), "pgmap_array")                      # the pgmap xarray / radix tree
    k.devmap_managed_key = Var(0, "devmap_managed_key")         # static key count (v4.18-v6.14)
    k.rcu = Rcu("rcu")                                          # readers and grace periods


def pfn_to_page(k, pfn: int):
    """``pfn_to_page()``: the struct page of a pfn (the model's memmap). Kernel:
    include/asm-generic/memory_model.h, v4.5+."""
    page = k.memmap.get(pfn)
    if page is None:
        raise KeyError(f"pfn {pfn:#x} has no struct page in this model")
    return page


def prep_compound_page(k, head, order: int, func: str = "prep_compound_page") -> None:
    """Make ``head`` the head of an order-``order`` compound page of the pfns after it.
    Kernel: mm/page_alloc.c, v4.5+."""
    head.order = order
    if order:
        head.flags.bits |= 1 << PG_head
        if head._pincount is None:       # folio->_pincount (hpage_pinned_refcount in v5.7)
            head._pincount = Atomic(0, f"page {head.pfn:#x}._pincount")
        for pfn in range(head.pfn + 1, head.pfn + (1 << order)):
            tail = k.memmap[pfn]
            tail.head = head
            tail.order = 0


def alloc_pages(k, order: int = 0, gfp: int = 0, func: str = "alloc_pages"):
    """``alloc_pages(gfp, order)``: a page (or compound head) with refcount 1.
    Kernel: include/linux/gfp.h, v4.5+."""
    with k.zone_lock:
        fresh, free = k.buddy.get("rmqueue")
        for i in range(len(free) - 1, -1, -1):
            if free[i][1] == order:
                pfn = free[i][0]
                k.buddy.set((fresh, free[:i] + free[i + 1:]), "rmqueue")
                break
        else:
            pfn = fresh
            k.buddy.set((fresh + (1 << order), free), "rmqueue")
            for p in range(pfn, pfn + (1 << order)):
                k.memmap[p] = Page(p, ZONE_NORMAL, 0)
    head = k.memmap[pfn]
    for p in range(pfn, pfn + (1 << order)):
        page = k.memmap[p]
        page.flags.bits &= ~_BUDDY
        page.head = page
        page.order = 0
    k.prep_compound_page(head, order)
    k.set_page_count(head, 1, func)
    return head


def alloc_page(k, gfp: int = 0, func: str = "alloc_page"):
    """``alloc_page()``: one order-0 page at refcount 1. Kernel: include/linux/gfp.h, v4.5+."""
    return k.alloc_pages(0, gfp, func)


def folio_alloc(k, gfp: int = 0, order: int = 0, func: str = "folio_alloc"):
    """``folio_alloc()``: a folio of ``order`` at refcount 1. Kernel: include/linux/gfp.h, v5.16+."""
    return k.alloc_pages(order, gfp, func)


def free_pages_prepare(k, page, order: int, func: str) -> bool:
    """The "Bad page state" checks (``free_page_is_bad``/``free_pages_check``).
    Kernel: mm/page_alloc.c, v4.5+."""
    ok = True
    if page._mapcount.peek() != -1:
        k.world.violate("bad_page_state", "BUG: Bad page state: nonzero mapcount", page.pfn, func)
        ok = False
    if page.zone != ZONE_NORMAL:
        k.world.violate("device_page_to_allocator",
                        "BUG: Bad page state: ZONE_DEVICE page freed to the page allocator", page.pfn, func)
        ok = False
    return ok


def free_the_page(k, page, order: int = 0, func: str = "free_the_page") -> None:
    """Give a page whose refcount is 0 back to the buddy allocator (``free_unref_page`` for
    order 0, ``__free_pages_ok`` otherwise).

    Kernel: mm/page_alloc.c, v4.5+."""
    k.free_pages_prepare(page, order, func)
    if page.zone != ZONE_NORMAL:
        return          # the model refuses to put device memory in the buddy lists
    for p in range(page.pfn, page.pfn + (1 << order)):
        sub = k.memmap[p]
        sub.flags.bits = _BUDDY        # all flags cleared, PageBuddy set
        sub.mapping.value = None
    with k.zone_lock:
        fresh, free = k.buddy.get(func)
        k.buddy.set((fresh, free + ((page.pfn, order),)), func)
    k.world.event(func, page.pfn, "buddy", False, True)


def free_unref_page(k, page, order: int = 0, func: str = "free_unref_page") -> None:
    """``free_unref_page()``: a page whose count reached 0 back to the allocator. Kernel:
    mm/page_alloc.c, v4.15+ (free_hot_cold_page before)."""
    k.free_the_page(page, order, func)


def __free_pages(k, page, order: int = 0, func: str = "__free_pages") -> None:
    """``__free_pages()``: drop a reference; free the block when it was the last.
    Kernel: mm/page_alloc.c, v4.5+."""
    if k.page_ref_dec_and_test(page, func):
        k.free_the_page(page, order, func)


def __free_page(k, page) -> None:
    """``__free_page()``: ``__free_pages(page, 0)``. Kernel: include/linux/gfp.h, v4.5+."""
    k.__free_pages(page, 0, "__free_page")


def page_is_buddy_free(k, page) -> bool:
    """Model query: is the page in the buddy allocator's free lists?
    Kernel: mm/page_alloc.c, v4.5+ (model query: PageBuddy)."""
    return bool(page.flags.bits & _BUDDY)


FUNCTIONS = (mem_init, pfn_to_page, prep_compound_page, alloc_pages, alloc_page, folio_alloc,
             free_pages_prepare, free_the_page, free_unref_page, __free_pages, __free_page,
             page_is_buddy_free)
