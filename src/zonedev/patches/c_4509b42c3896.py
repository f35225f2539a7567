"""4509b42c3896 "mm/gup: combine put_compound_head() and unpin_user_page()" (Jason Gunthorpe,
Dec 2020, v5.11; Fixes: 1970dc6f5226; also in 5.10.4 stable).  kernel_2025_2026.md §1 C6.

Read: the upstream diff of mm/gup.c (stable copy "[ Upstream commit
4509b42c38963f495b49aa50209c34337286ecbe ]", 28 Dec 2020).

Before (3faa52c03f44, v5.7): ``unpin_user_page`` went through
``__unpin_devmap_managed_user_page`` for a devmap-managed page (subtract the bias, then the
1-based rule itself: ``free_devmap_managed_page`` at 1, ``__put_page`` at 0).

After: ``unpin_user_page(page)`` is ``put_compound_head(compound_head(page), 1, FOLL_PIN)``:
subtract the pincount (or multiply ``refs`` by ``GUP_PIN_COUNTING_BIAS``), then
``page_ref_sub(page, refs - 1)`` ("Only the last ref needs a put_page()") and one ordinary
``put_page``, whose devmap-managed branch does the 2 -> 1 work.  ``__unpin_devmap_managed_user_page``
is deleted.  Counts and wake-ups are the same; the path (and the trace) is not.
"""

from ..linux.include.mm import FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ._patch import Patch

PATCH = Patch(
    commit="4509b42c3896", title="mm/gup: combine put_compound_head() and unpin_user_page()",
    version="v5.11", confidence="CONFIRMED",
    replaces="unpin_user_page() applied the devmap 1-based rule itself (__unpin_devmap_managed_user_page)",
)
PATCH.remove("__unpin_devmap_managed_user_page")


@PATCH.define
def put_compound_head(k, page, refs: int, flags: int) -> None:
    """``put_compound_head()`` (mm/gup.c v5.11): drop ``refs`` GUP references; all but the last
    with ``page_ref_sub``, the last with ``put_page``."""
    func = "put_compound_head"
    if flags & FOLL_PIN:
        if k.hpage_pincount_available(page):
            k.pincount_add(page, -refs, func)
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    if page._refcount.peek() < refs:
        k.world.violate("refcount_underflow", "VM_BUG_ON_PAGE(page_ref_count(page) < refs, page)", page.pfn, func)
    if refs > 1:
        k.page_ref_sub(page, refs - 1, func)
    k.put_page(page)


@PATCH.define
def unpin_user_page(k, page) -> None:
    """``unpin_user_page()`` (v5.11): ``put_compound_head(compound_head(page), 1, FOLL_PIN)``.
    Kernel: mm/gup.c, as 4509b42c3896 (v5.11) has it."""
    k.put_compound_head(page.head, 1, FOLL_PIN)
