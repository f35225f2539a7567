"""d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18, Matthew Wilcox; folio conversion of GUP).

[kernel_eras §7 (Muchun's fix names it in Fixes:), M19: CONFIRMED]  ``unpin_user_page`` ->
``gup_put_folio(folio, 1, FOLL_PIN)``: subtract the pincount (large folio) or multiply by
``GUP_PIN_COUNTING_BIAS``, then ``folio_put_refs``.  ``try_grab_folio``/``try_grab_page`` take
pins the same way (a large folio is any order > 0 now).  The devmap-managed unpin
(``__unpin_devmap_managed_user_page``) is gone with it, so an fsdax unpin that makes the page
idle (-> 1) sends **no wake-up**: a ``dax_layout_busy_page`` waiter sleeps forever (F12; fixed by
Muchun Song's f4f451a16dd1).  The model reports ``fsdax_waiter_never_woken`` at that put.
"""

from ..linux.include.mm import FOLL_GET, FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ..linux.include.memremap import MEMORY_DEVICE_FS_DAX
from ._patch import Patch

PATCH = Patch(
    commit="d8ddc099c6b3", title="mm/gup: Add gup_put_folio()",
    version="v5.18", confidence="CONFIRMED",
    replaces="unpin_user_page() with its devmap-managed special case (__unpin_devmap_managed_user_page)",
)
PATCH.remove("__unpin_devmap_managed_user_page")
PATCH.set(pincount_min_order=1)


@PATCH.define
def try_grab_folio(k, page, refs: int = 1, flags: int = FOLL_GET):
    """Take ``refs`` references on the folio of ``page``; the folio, or None.
    Kernel: mm/gup.c, as d8ddc099c6b3 (v5.18) has it."""
    folio = page.head
    if flags & FOLL_GET:
        if not k.folio_ref_try_add_rcu(folio, refs):
            return None
        return folio
    if flags & FOLL_PIN:
        if not k.folio_ref_try_add_rcu(folio, refs):
            return None
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, refs, "try_grab_folio")
        else:
            k.page_ref_add(folio, refs * (GUP_PIN_COUNTING_BIAS - 1), "try_grab_folio")
        return folio
    return None


@PATCH.define
def folio_ref_try_add_rcu(k, folio, count: int) -> bool:
    """``folio_ref_try_add_rcu()`` as d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18) left it
    (include/linux/page_ref.h)."""
    return k.page_ref_add_unless(folio, count, 0, "folio_ref_try_add_rcu")


@PATCH.define
def try_grab_page(k, page, flags: int = FOLL_GET) -> bool:
    """``try_grab_page()`` on the folio: refused with a WARN at count 0; FOLL_GET takes one
    reference, FOLL_PIN one plus the pincount on a large folio or GUP_PIN_COUNTING_BIAS on a
    small one.  Kernel: mm/gup.c, as d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18) has it."""
    folio = page.head
    if folio._refcount.peek() <= 0:
        k.world.violate("get_on_free_page", "WARN_ON_ONCE(folio_ref_count(folio) <= 0)", folio.pfn, "try_grab_page")
        return False
    if flags & FOLL_GET:
        k.folio_ref_inc(folio, "try_grab_page")
    elif flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.folio_ref_add(folio, 1, "try_grab_page")
            k.pincount_add(folio, 1, "try_grab_page")
        else:
            k.folio_ref_add(folio, GUP_PIN_COUNTING_BIAS, "try_grab_page")
    return True


@PATCH.define
def hpage_pincount_available(k, page) -> bool:
    """``hpage_pincount_available()`` as d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18) left it
    (include/linux/mm.h)."""
    return page.head.order >= 1 and page.head._pincount is not None


@PATCH.define
def gup_put_folio(k, folio, refs: int, flags: int) -> None:
    """``gup_put_folio()``: undo a grab (the pincount or the bias) and drop the references; the
    fsdax page that becomes idle here gets no wake-up (F12, fixed by f4f451a16dd1).  Kernel:
    mm/gup.c, as d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18) has it."""
    if flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, -refs, "gup_put_folio")
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    new = k.page_ref_sub_return(folio, refs, "folio_put_refs")
    if new == 0:
        k.__folio_put(folio)
    elif new == 1 and folio.zone == "Device" and folio.pgmap.type == MEMORY_DEVICE_FS_DAX:
        k.fsdax_idle_without_wakeup(folio, "gup_put_folio")


@PATCH.define
def unpin_user_page(k, page) -> None:
    """``unpin_user_page()`` as d8ddc099c6b3 "mm/gup: Add gup_put_folio()" (v5.18) left it
    (mm/gup.c)."""
    k.gup_put_folio(page.head, 1, FOLL_PIN)
