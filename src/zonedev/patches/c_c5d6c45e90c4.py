"""c5d6c45e90c4 "mm/swap: fix release_pages() when releasing devmap pages" (v5.3, Ira Weiny;
pulled into the dev_pagemap cleanup series).

[kernel_eras §5, M27, M10 cover: CONFIRMED; id UNCONFIRMED there, CONFIRMED below]  ``release_pages()`` called the
devmap put only for DEVICE_PUBLIC pages, so fsdax pages released in a batch never sent their
idle wake-up (F5).  Now every ZONE_DEVICE page tries ``put_devmap_managed_page()`` first; pages
it does not manage fall through to ``put_page_testzero``.

Audit: CONFIRMED id <-> title: stable backport "[PATCH 4.19 052/113] mm/swap: fix release_pages()
when releasing devmap pages" (stable@vger, 29 Jul 2019) says "Upstream commit
c5d6c45e90c49150670346967971e14576afd7f1" (Ira Weiny, SOB Jason Gunthorpe, hmm tree); v5.3 merge
window.
"""

from ._patch import Patch

PATCH = Patch(
    commit="c5d6c45e90c4", title="mm/swap: fix release_pages() when releasing devmap pages",
    version="v5.3", confidence="CONFIRMED",
    replaces="release_pages routed only DEVICE_PUBLIC pages to the devmap put (no fsdax wake-up)",
)
PATCH.remove("release_pages_devmap_put")


@PATCH.define
def release_pages(k, pages) -> None:
    """``release_pages()``: every devmap-managed page (fsdax too, not only device public as before
    the fix, which left fsdax waiters unwoken) goes through ``put_devmap_managed_page``; the rest
    are freed at 0.  Kernel: mm/swap.c, as c5d6c45e90c4 "mm/swap: fix release_pages() when
    releasing devmap pages" (v5.3) has it."""
    for page in pages:
        page = page.head
        if k.is_zone_device_page(page) and k.put_devmap_managed_page(page):
            continue
        if k.put_page_testzero(page, "release_pages"):
            k.__put_page(page)
