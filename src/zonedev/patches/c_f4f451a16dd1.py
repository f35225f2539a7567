"""f4f451a16dd1 "mm: fix missing wake-up event for FSDAX pages" (Muchun Song; Fixes:
d8ddc099c6b3; Cc: stable; v5.19).

[kernel_eras §7, M19: CONFIRMED content.  A Linus-tree shortlog of the v5.19 cycle lists it
under Muchun Song, so it is in v5.19 (before v6.0); the 12-character id is CONFIRMED below --
mm-tree/next copies carry other ids (93267ebd29e0, 6838cbae2eb3, b780a0988e4c, ...)]  ``gup_put_folio``
(and the failure path of ``try_grab_folio``) call ``put_devmap_managed_page_refs(page, refs)``
first, so an fsdax unpin that makes the page idle wakes the break-layouts waiter again.  The
decrement becomes ``page_ref_sub_return(refs)`` with the same test for 1.

Audit: CONFIRMED id <-> title <-> version: the stable backport says "commit
f4f451a16dd1f478fdb966bcbb612c1e4ce6b962 upstream" (Muchun Song), and the kernel.org post-receive
notification for stable/linux master of 28 Jul 2022 lists that full id with this title (via
mm-hotfixes-stable-2022-07-26, before the v5.19 tag of 31 Jul): v5.19.  The other ids above are the
pre-merge mm/next copies.
"""

from ..linux.include.mm import FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ._patch import Patch

PATCH = Patch(
    commit="f4f451a16dd1", title="mm: fix missing wake-up event for FSDAX pages",
    version="v5.19", confidence="CONFIRMED", fixes="d8ddc099c6b3",
    replaces="gup_put_folio dropped fsdax pins with folio_put_refs: no 2->1 wake-up (F12)",
)


@PATCH.define
def put_devmap_managed_page_refs(k, page, refs: int) -> bool:
    if not k.page_is_devmap_managed(page):
        return False
    if k.page_ref_sub_return(page, refs, "put_devmap_managed_page_refs") == 1:
        k.wake_up_var_refcount(page, "put_devmap_managed_page_refs")
    return True


@PATCH.define
def put_devmap_managed_page(k, page) -> bool:
    return k.put_devmap_managed_page_refs(page, 1)


@PATCH.define
def gup_put_folio(k, folio, refs: int, flags: int) -> None:
    if flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, -refs, "gup_put_folio")
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    if not k.put_devmap_managed_page_refs(folio, refs):
        k.folio_put_refs(folio, refs)
