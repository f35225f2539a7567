"""f4f451a16dd1 "mm: fix missing wake-up event for FSDAX pages" (Muchun Song; Fixes:
d8ddc099c6b3; Cc: stable; v5.19).

[kernel_eras §7, M19: CONFIRMED content.  A Linus-tree shortlog of the v5.19 cycle lists it
under Muchun Song, so it is in v5.19 (before v6.0); the 12-character id is CONFIRMED below --
mm-tree/next copies carry other ids (93267ebd29e0, 6838cbae2eb3, b780a0988e4c, ...)]  ``gup_put_folio``
(and the failure path of ``try_grab_folio``) call ``put_devmap_managed_page_refs(page, refs)``
first, so an fsdax unpin that makes the page idle wakes the break-layouts waiter again.  The
decrement becomes ``page_ref_sub_return(refs)`` with the same test for 1.

The same commit changes the FOLL_GET/FOLL_PIN *take* side too (kernel_2025_2026 §1 C8, read in
the v5.19 mm/gup.c diff): where ``try_get_folio`` finds the folio changed under it and where
``try_grab_folio`` refuses a FOLL_LONGTERM pin of a page that is not pinnable, the references it
already took are dropped with ``put_devmap_managed_page_refs`` first (``folio_put_refs`` only
for a page that is not devmap managed), so those paths wake a waiter too.  From v6.15
(38607c62b3) ``put_devmap_managed_page_refs`` is gone and these paths are plain
``folio_put_refs`` -- the model reaches that by the ``k.has`` guard below.

Audit: CONFIRMED id <-> title <-> version: the stable backport says "commit
f4f451a16dd1f478fdb966bcbb612c1e4ce6b962 upstream" (Muchun Song), and the kernel.org post-receive
notification for stable/linux master of 28 Jul 2022 lists that full id with this title (via
mm-hotfixes-stable-2022-07-26, before the v5.19 tag of 31 Jul): v5.19.  The other ids above are the
pre-merge mm/next copies.
"""

from ..linux.include.mm import FOLL_GET, FOLL_LONGTERM, FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ._patch import Patch

PATCH = Patch(
    commit="f4f451a16dd1", title="mm: fix missing wake-up event for FSDAX pages",
    version="v5.19", confidence="CONFIRMED", fixes="d8ddc099c6b3",
    replaces="gup_put_folio dropped fsdax pins with folio_put_refs: no 2->1 wake-up (F12)",
)


@PATCH.define
def put_devmap_managed_page_refs(k, page, refs: int) -> bool:
    """``put_devmap_managed_page_refs()``: for a devmap-managed (fsdax) page drop ``refs`` and wake
    the waiter when the page is idle (1); false for other pages.  Kernel: include/linux/mm.h, as
    f4f451a16dd1 "mm: fix missing wake-up event for FSDAX pages" (v5.19) has it."""
    if not k.page_is_devmap_managed(page):
        return False
    if k.page_ref_sub_return(page, refs, "put_devmap_managed_page_refs") == 1:
        k.wake_up_var_refcount(page, "put_devmap_managed_page_refs")
    return True


@PATCH.define
def put_devmap_managed_page(k, page) -> bool:
    """``put_devmap_managed_page()``: ``put_devmap_managed_page_refs(page, 1)``.  Kernel:
    include/linux/mm.h, as f4f451a16dd1 "mm: fix missing wake-up event for FSDAX pages" (v5.19)
    has it."""
    return k.put_devmap_managed_page_refs(page, 1)


@PATCH.define
def try_get_folio(k, page, refs: int):
    """``try_get_folio()`` (mm/gup.c v5.19): add ``refs`` unless the count is 0; if the page
    left the folio meanwhile (a split), give them back -- devmap-managed first -- and retry."""
    while True:
        folio = page.head
        if not k.folio_ref_try_add_rcu(folio, refs):
            return None
        if page.head is folio:
            return folio
        k.gup_undo_refs(folio, refs)


@PATCH.define
def gup_undo_refs(k, folio, refs: int) -> None:
    """``if (!put_devmap_managed_page_refs(&folio->page, refs)) folio_put_refs(folio, refs);``
    (v5.19-v6.14); ``folio_put_refs`` alone once devmap_managed_key is gone (v6.15).

    Kernel: mm/gup.c, as f4f451a16dd1 (v5.19) has it."""
    if k.has("put_devmap_managed_page_refs") and k.put_devmap_managed_page_refs(folio, refs):
        return
    k.folio_put_refs(folio, refs)


@PATCH.define
def try_grab_folio(k, page, refs: int = 1, flags: int = FOLL_GET):
    """``try_grab_folio()`` (mm/gup.c v5.19): FOLL_GET is ``try_get_folio``; FOLL_PIN also
    refuses a FOLL_LONGTERM pin of a page that must not be long-term pinned, dropping what it
    took through ``put_devmap_managed_page_refs``."""
    if flags & FOLL_GET:
        return k.try_get_folio(page, refs)
    if not flags & FOLL_PIN:
        return None
    folio = k.try_get_folio(page, refs)
    if folio is None:
        return None
    if flags & FOLL_LONGTERM and k.has("is_longterm_pinnable_page") and not k.is_longterm_pinnable_page(page):
        k.gup_undo_refs(folio, refs)
        return None
    if folio.order >= 1 and folio._pincount is not None:
        k.pincount_add(folio, refs, "try_grab_folio")
    else:
        k.page_ref_add(folio, refs * (GUP_PIN_COUNTING_BIAS - 1), "try_grab_folio")
    return folio


@PATCH.define
def gup_put_folio(k, folio, refs: int, flags: int) -> None:
    """``gup_put_folio()``: undo a grab, then the devmap-managed put (fsdax wake-up at 1) or
    ``folio_put_refs``.  Kernel: mm/gup.c, as f4f451a16dd1 "mm: fix missing wake-up event for
    FSDAX pages" (v5.19) has it."""
    if flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, -refs, "gup_put_folio")
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    if not k.put_devmap_managed_page_refs(folio, refs):
        k.folio_put_refs(folio, refs)
