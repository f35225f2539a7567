"""A user patch for test_bisect: the unpin path as it was before 4509b42c3896 (v5.11), kept until
gup_put_folio exists -- ``__unpin_devmap_managed_user_page``'s 1-based rule calls
``free_devmap_managed_page``, which 27674ef6c73f deleted, so the v5.18 prefixes before
d8ddc099c6b3 cannot run it (what ``zonedev bisect`` must skip and name)."""

from zonedev import Patch
from zonedev.linux.include.mm import FOLL_PIN, GUP_PIN_COUNTING_BIAS

PATCH = Patch(commit="0ld0unpin000", title="test: pre-v5.11 unpin_user_page", version="v5.7")


@PATCH.define
def unpin_user_page(k, page) -> None:
    page = page.head
    if k.has("gup_put_folio"):
        k.gup_put_folio(page, 1, FOLL_PIN)
        return
    if k.page_is_devmap_managed(page):
        if k.page_ref_sub_return(page, GUP_PIN_COUNTING_BIAS, "__unpin_devmap_managed_user_page") == 1:
            k.free_devmap_managed_page(page)
        return
    if k.page_ref_sub_and_test(page, GUP_PIN_COUNTING_BIAS, "unpin_user_page"):
        k.__put_page(page)
