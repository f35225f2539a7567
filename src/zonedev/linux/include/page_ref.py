"""The page_ref operations (include/linux/page_ref.h, v4.6+; the folio_ref_* forms from v5.16).

Every function is one atomic access to ``page->_refcount`` (one scheduling point), appends an
event ``func: pfn _refcount old -> new`` and checks what ``CONFIG_DEBUG_VM`` would check:

* any access to a ``struct page`` whose memmap has been removed (``memunmap_pages`` /
  ``arch_remove_memory`` done) or that sits in the buddy allocator: ``use_after_free``;
* a decrement of a page whose count is already 0: ``put_on_free_page``
  (``VM_BUG_ON_PAGE(page_ref_count(page) == 0, page)`` in ``put_page_testzero``);
* a decrement that takes the count below 0 from above: ``refcount_underflow``.

``func`` names the kernel function the event is charged to (``put_page`` rather than
``page_ref_dec_and_test``) so a trace reads like the kernel call chain; it defaults to the
page_ref function's own name.  The model keeps running after a violation, as the kernel would
(with CONFIG_DEBUG_VM off the decrement just happens).

Era-independent: installed by the base patch (v4.5 had the same operations open-coded as
``atomic_inc(&page->_count)``; page_ref.h arrived in v4.6).
"""

from __future__ import annotations

from .mm_types import PG_buddy, PG_memmap_gone, PG_zd_free

_GONE = 1 << PG_buddy | 1 << PG_memmap_gone
_ZD_FREE = ~(1 << PG_zd_free)

WORDS_UAF = "BUG: KASAN: use-after-free (struct page accessed after its memmap was removed or the page was freed)"
WORDS_PUT_FREE = "VM_BUG_ON_PAGE(page_ref_count(page) == 0, page)"
WORDS_UNDERFLOW = "VM_BUG_ON_PAGE(page_ref_count(page) < refs, page): page refcount underflow"


def check_page_alive(k, page, func: str) -> bool:
    """Report ``use_after_free`` for an access to a removed or buddy-free page; True if alive.

    Called right *after* the access's scheduling point, so the check and the access are one
    atomic step: another thread cannot remove the memmap between them.

    Kernel: mm/debug.c, v4.5+ (what KASAN and CONFIG_DEBUG_VM report)."""
    if not page.flags.bits & _GONE:
        return True
    k.world.violate("use_after_free", WORDS_UAF, page.pfn,
                    f"{func} on a page {'in the buddy allocator' if page.memmap_live else 'whose memmap was removed'}")
    return False


def _inc(k, page, n: int, func: str) -> int:
    new = page._refcount.add_return(n, func)
    check_page_alive(k, page, func)
    page.flags.bits &= _ZD_FREE          # model bookkeeping: somebody took the page
    k.world.event(func, page.pfn, "_refcount", new - n, new)
    return new


def _dec(k, page, n: int, func: str) -> int:
    new = page._refcount.sub_return(n, func)
    check_page_alive(k, page, func)
    old = new + n
    k.world.event(func, page.pfn, "_refcount", old, new)
    if new < 0:
        if old <= 0:
            k.world.violate("put_on_free_page", WORDS_PUT_FREE, page.pfn, f"{func}: {old} -> {new}")
        else:
            k.world.violate("refcount_underflow", WORDS_UNDERFLOW, page.pfn, f"{func}: {old} -> {new}")
    return new


def page_ref_count(k, page, func: str = "page_ref_count") -> int:
    """The page's ``_refcount`` (``atomic_read``). Kernel: include/linux/page_ref.h, v4.6+ (v4.5
    made the same atomic accesses to page->_count in include/linux/mm.h)."""
    count = page._refcount.read(func)
    check_page_alive(k, page, func)
    return count


def page_count(k, page, func: str = "page_count") -> int:
    """``page_count()``: the head page's count.  Kernel: include/linux/mm.h, v4.5+."""
    return k.page_ref_count(page.head, func)


def set_page_count(k, page, v: int, func: str = "set_page_count") -> None:
    """Set ``_refcount`` (``atomic_set``): page init and reuse only. Kernel:
    include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to page->_count in
    include/linux/mm.h)."""
    old = page._refcount.set(v, func)
    check_page_alive(k, page, func)
    k.world.event(func, page.pfn, "_refcount", old, v)


def page_ref_add(k, page, nr: int, func: str = "page_ref_add") -> None:
    """Add ``nr`` references (``atomic_add``). Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made
    the same atomic accesses to page->_count in include/linux/mm.h)."""
    _inc(k, page, nr, func)


def page_ref_sub(k, page, nr: int, func: str = "page_ref_sub") -> None:
    """Drop ``nr`` references (``atomic_sub``), no test for zero. Kernel: include/linux/page_ref.h,
    v4.6+ (v4.5 made the same atomic accesses to page->_count in include/linux/mm.h)."""
    _dec(k, page, nr, func)


def page_ref_inc(k, page, func: str = "page_ref_inc") -> None:
    """Take one reference (``atomic_inc``). Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the
    same atomic accesses to page->_count in include/linux/mm.h)."""
    _inc(k, page, 1, func)


def page_ref_dec(k, page, func: str = "page_ref_dec") -> None:
    """Drop one reference (``atomic_dec``), no test for zero. Kernel: include/linux/page_ref.h,
    v4.6+ (v4.5 made the same atomic accesses to page->_count in include/linux/mm.h)."""
    _dec(k, page, 1, func)


def page_ref_add_return(k, page, nr: int, func: str = "page_ref_add_return") -> int:
    """Add ``nr`` and return the new count. Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the
    same atomic accesses to page->_count in include/linux/mm.h)."""
    return _inc(k, page, nr, func)


def page_ref_inc_return(k, page, func: str = "page_ref_inc_return") -> int:
    """Take one reference and return the new count. Kernel: include/linux/page_ref.h, v4.6+ (v4.5
    made the same atomic accesses to page->_count in include/linux/mm.h)."""
    return _inc(k, page, 1, func)


def page_ref_sub_return(k, page, nr: int, func: str = "page_ref_sub_return") -> int:
    """Drop ``nr`` and return the new count. Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the
    same atomic accesses to page->_count in include/linux/mm.h)."""
    return _dec(k, page, nr, func)


def page_ref_dec_return(k, page, func: str = "page_ref_dec_return") -> int:
    """Drop one reference and return the new count. Kernel: include/linux/page_ref.h, v4.6+ (v4.5
    made the same atomic accesses to page->_count in include/linux/mm.h)."""
    return _dec(k, page, 1, func)


def page_ref_sub_and_test(k, page, nr: int, func: str = "page_ref_sub_and_test") -> bool:
    """Drop ``nr``; true when the count reached 0. Kernel: include/linux/page_ref.h, v4.6+ (v4.5
    made the same atomic accesses to page->_count in include/linux/mm.h)."""
    return _dec(k, page, nr, func) == 0


def page_ref_dec_and_test(k, page, func: str = "page_ref_dec_and_test") -> bool:
    """Drop one reference; true when the count reached 0 (the caller frees). Kernel:
    include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to page->_count in
    include/linux/mm.h)."""
    return _dec(k, page, 1, func) == 0


def page_ref_add_unless(k, page, nr: int, u: int, func: str = "page_ref_add_unless") -> bool:
    """Add ``nr`` unless the count is ``u`` (``get_page_unless_zero`` is ``u == 0``).
    Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to
    page->_count in include/linux/mm.h)."""
    ref = page._refcount
    added = ref.add_unless(nr, u, func)
    check_page_alive(k, page, func)
    if not added:
        return False
    new = ref.value
    page.flags.bits &= _ZD_FREE
    k.world.event(func, page.pfn, "_refcount", new - nr, new)
    return True


def page_ref_freeze(k, page, count: int, func: str = "page_ref_freeze") -> bool:
    """``atomic_cmpxchg(&page->_refcount, count, 0) == count``.
    Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to
    page->_count in include/linux/mm.h)."""
    found = page._refcount.cmpxchg(count, 0, func)
    check_page_alive(k, page, func)
    if found == count:
        k.world.event(func, page.pfn, "_refcount", count, 0)
        return True
    return False


def page_ref_unfreeze(k, page, count: int, func: str = "page_ref_unfreeze") -> None:
    """``atomic_set_release(&page->_refcount, count)`` on a frozen (0) page.
    Kernel: include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to
    page->_count in include/linux/mm.h)."""
    old = page._refcount.set(count, func)
    check_page_alive(k, page, func)
    k.world.event(func, page.pfn, "_refcount", old, count)
    if old != 0:
        k.world.violate("refcount_unfreeze_not_frozen", "VM_BUG_ON_PAGE(page_count(page) != 0, page)",
                        page.pfn, f"{func}: count was {old}")


def get_page_unless_zero(k, page, func: str = "get_page_unless_zero") -> bool:
    """Take a reference unless the count is 0 (a page being freed stays free). Kernel:
    include/linux/page_ref.h, v4.6+ (v4.5 made the same atomic accesses to page->_count in
    include/linux/mm.h)."""
    return k.page_ref_add_unless(page, 1, 0, func)


# folio forms (include/linux/page_ref.h, v5.16+): a folio is its head page in the model
def folio_ref_count(k, folio, func: str = "folio_ref_count") -> int:
    """The folio's ``_refcount`` (its head page's). Kernel: include/linux/page_ref.h, v5.16+."""
    return k.page_ref_count(folio, func)


def folio_ref_add(k, folio, nr: int, func: str = "folio_ref_add") -> None:
    """Add ``nr`` references to the folio. Kernel: include/linux/page_ref.h, v5.16+."""
    k.page_ref_add(folio, nr, func)


def folio_ref_sub(k, folio, nr: int, func: str = "folio_ref_sub") -> None:
    """Drop ``nr`` references from the folio, no test for zero. Kernel: include/linux/page_ref.h,
    v5.16+."""
    k.page_ref_sub(folio, nr, func)


def folio_ref_inc(k, folio, func: str = "folio_ref_inc") -> None:
    """Take one reference on the folio. Kernel: include/linux/page_ref.h, v5.16+."""
    k.page_ref_inc(folio, func)


def folio_ref_dec_and_test(k, folio, func: str = "folio_ref_dec_and_test") -> bool:
    """Drop one folio reference; true at 0. Kernel: include/linux/page_ref.h, v5.16+."""
    return k.page_ref_dec_and_test(folio, func)


def folio_ref_sub_and_test(k, folio, nr: int, func: str = "folio_ref_sub_and_test") -> bool:
    """Drop ``nr`` folio references; true at 0. Kernel: include/linux/page_ref.h, v5.16+."""
    return k.page_ref_sub_and_test(folio, nr, func)


def folio_ref_sub_return(k, folio, nr: int, func: str = "folio_ref_sub_return") -> int:
    """Drop ``nr`` folio references and return the new count. Kernel: include/linux/page_ref.h,
    v5.16+."""
    return k.page_ref_sub_return(folio, nr, func)


def folio_set_count(k, folio, v: int, func: str = "folio_set_count") -> None:
    """Set the folio's count (init and reuse only). Kernel: include/linux/page_ref.h, v5.16+."""
    k.set_page_count(folio, v, func)


def folio_ref_freeze(k, folio, count: int, func: str = "folio_ref_freeze") -> bool:
    """``folio_ref_freeze``: swap the expected count for 0 (cmpxchg); true if it was the expected
    one. Kernel: include/linux/page_ref.h, v5.16+."""
    return k.page_ref_freeze(folio, count, func)


def folio_ref_unfreeze(k, folio, count: int, func: str = "folio_ref_unfreeze") -> None:
    """``folio_ref_unfreeze``: give a frozen (0) folio the count ``count`` back. Kernel:
    include/linux/page_ref.h, v5.16+."""
    k.page_ref_unfreeze(folio, count, func)


FUNCTIONS = (
    page_ref_count, page_count, set_page_count, page_ref_add, page_ref_sub, page_ref_inc,
    page_ref_dec, page_ref_add_return, page_ref_inc_return, page_ref_sub_return,
    page_ref_dec_return, page_ref_sub_and_test, page_ref_dec_and_test, page_ref_add_unless,
    page_ref_freeze, page_ref_unfreeze, get_page_unless_zero, folio_ref_count, folio_ref_add,
    folio_ref_sub, folio_ref_inc, folio_ref_dec_and_test, folio_ref_sub_and_test,
    folio_ref_sub_return, folio_set_count, folio_ref_freeze, folio_ref_unfreeze,
)
