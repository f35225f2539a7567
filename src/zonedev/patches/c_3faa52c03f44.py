"""3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7, John Hubbard), with 47e29d32afba
"mm/gup: page->hpage_pinned_refcount: exact pin counts for huge pages" folded in.

[kernel_eras §6.2, M12: CONFIRMED ids from Fixes: tags; v5.7 INFERRED; GUP_PIN_COUNTING_BIAS =
1 << 10 CONFIRMED in include/linux/mm.h]

* ``try_grab_page(page, FOLL_PIN)``: a small page gets ``GUP_PIN_COUNTING_BIAS`` (1024) added
  to ``_refcount``; a compound page of order > 1 gets 1 plus 1 in ``hpage_pinned_refcount``
  (the model's ``_pincount``).  FOLL_GET is ``try_get_page``.
* ``unpin_user_page(page)``: first ``__unpin_devmap_managed_user_page`` -- for a
  devmap-managed page subtract the bias (or 1 and the pincount) and apply the 1-based rule (at
  1 -> ``free_devmap_managed_page``; at 0 -> ``__put_page``); otherwise subtract and
  ``__put_page`` at 0.
* ``page_maybe_dma_pinned(page)``: pincount > 0, or refcount >= the bias.
"""

from ..linux.include.mm import FOLL_GET, FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ._patch import Patch

PATCH = Patch(
    commit="3faa52c03f44", title="mm/gup: track FOLL_PIN pages",
    version="v5.7", confidence="CONFIRMED",
    replaces="a FOLL_PIN pin was one plain page reference",
)
PATCH.set(GUP_PIN_COUNTING_BIAS=GUP_PIN_COUNTING_BIAS, pincount_min_order=2)


@PATCH.define
def hpage_pincount_available(k, page) -> bool:
    """``hpage_pincount_available()`` as 3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7) left it
    (include/linux/mm.h)."""
    return page.head.order >= k.fact("pincount_min_order") and page.head._pincount is not None


@PATCH.define
def pincount_add(k, page, n: int, func: str) -> None:
    """``atomic_add(n, compound_pincount_ptr(page))``: the pin count of a compound head; below 0 is
    a WARN.  Kernel: mm/gup.c, as 3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7) has it."""
    head = page.head
    new = head._pincount.add_return(n, func)
    k.world.event(func, head.pfn, "_pincount", new - n, new)
    if new < 0:
        k.world.violate("pincount_underflow", "WARN_ON_ONCE(atomic_read(&folio->_pincount) < 0)", head.pfn, func)


@PATCH.define
def try_grab_page(k, page, flags: int = FOLL_GET) -> bool:
    """``try_grab_page()``: FOLL_GET is ``try_get_page``; FOLL_PIN adds GUP_PIN_COUNTING_BIAS (1024)
    to a small page's refcount, or 1 plus the compound pincount on a huge page; a page at count 0
    is refused with a WARN.  Kernel: mm/gup.c, as 3faa52c03f44 "mm/gup: track FOLL_PIN pages"
    (v5.7) has it."""
    if flags & FOLL_GET:
        return k.try_get_page(page)
    if flags & FOLL_PIN:
        page = page.head
        if page._refcount.peek() <= 0:
            k.world.violate("get_on_free_page", "WARN_ON_ONCE(page_ref_count(page) <= 0)", page.pfn, "try_grab_page")
            return False
        if k.hpage_pincount_available(page):
            k.pincount_add(page, 1, "try_grab_page")
            k.page_ref_add(page, 1, "try_grab_page")
        else:
            k.page_ref_add(page, GUP_PIN_COUNTING_BIAS, "try_grab_page")
    return True


@PATCH.define
def __unpin_devmap_managed_user_page(k, page) -> bool:
    """``__unpin_devmap_managed_user_page()``: undo a pin of a devmap-managed page (the bias or the
    pincount), then the devmap-managed free at 1 and ``__put_page`` at 0.  Kernel: mm/gup.c, as
    3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7) has it."""
    func = "__unpin_devmap_managed_user_page"
    if not k.page_is_devmap_managed(page):
        return False
    refs = 1
    if k.hpage_pincount_available(page):
        k.pincount_add(page, -1, func)
    else:
        refs = GUP_PIN_COUNTING_BIAS
    count = k.page_ref_sub_return(page, refs, func)
    if count == 1:
        k.free_devmap_managed_page(page)
    elif count == 0:
        k.__put_page(page)
    return True


@PATCH.define
def unpin_user_page(k, page) -> None:
    """``unpin_user_page()`` as 3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7) left it
    (mm/gup.c)."""
    page = page.head
    if k.__unpin_devmap_managed_user_page(page):
        return
    refs = 1
    if k.hpage_pincount_available(page):
        k.pincount_add(page, -1, "unpin_user_page")
    else:
        refs = GUP_PIN_COUNTING_BIAS
    if k.page_ref_sub_and_test(page, refs, "unpin_user_page"):
        k.__put_page(page)


@PATCH.define
def page_maybe_dma_pinned(k, page) -> bool:
    """``page_maybe_dma_pinned()`` as 3faa52c03f44 "mm/gup: track FOLL_PIN pages" (v5.7) left it
    (include/linux/mm.h)."""
    page = page.head
    if k.hpage_pincount_available(page):
        return page._pincount.read("page_maybe_dma_pinned") > 0
    return k.page_ref_count(page, "page_maybe_dma_pinned") >= GUP_PIN_COUNTING_BIAS
