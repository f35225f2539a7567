"""12b2285bf3d1 "mm/zone_device: reinitialize large zone device private folios" (Matthew Brost,
posted by Francois Dugast, v6 16 Jan 2026; Fixes: d245f9b4ab80; landed through mm-hotfixes
before v6.19, INFERRED from the linux-next revlist that carries it between 6.19-rc merges; other
pre-merge copies carry 2e833046d66a and 233b0a6caaf4: id UNCONFIRMED).  Failure F17.

Read: the v6 posting's mm/memremap.c, include/linux/memremap.h and lib/test_hmm.c hunks, and the
same ``zone_device_page_init`` in linux-mm/linux-mm mm/memremap.c @163177a569ab.

"Without this fix, individual pages could have invalid pgmap fields and flags (with PG_locked
being notably problematic) due to prior different order allocations, which can, and will,
result in kernel crashes."  ``zone_device_page_init(page, pgmap, order)`` now, for each of the
``1 << order`` pages: clears the order and head bits of ``flags``, ``_nr_pages`` of the page
before, ``mapping``, sets ``pgmap`` (which also clears a stale compound head), ``share = 0``, and
warns if the refcount is nonzero (``VM_WARN_ON_FOLIO(folio_ref_count(new_folio))``); then the
tryget/count/lock/``prep_compound_page`` of d245f9b4ab80.  The pgmap must come from the caller
because the page's own may have been overwritten by a compound head.
``zone_device_folio_init(folio, pgmap, order)`` takes it too.

Note ``tryget_many`` (not ``tryget_live``): it succeeds on a killed ref that still has users, so
allocation after ``memunmap_pages`` started is caught only once the ref has drained [S7].

kernel_2025_2026.md §2 describes this fix as a free-side ``free_zone_device_folio_prepare()``;
that helper is a separate posting ("mm: Add free_zone_device_folio_prepare() helper", Jan 2026,
merge UNCONFIRMED); the fix that landed, and the mm tree, reinitialise at allocation.
"""

from ._patch import Patch

PATCH = Patch(
    commit="12b2285bf3d1", title="mm/zone_device: reinitialize large zone device private folios",
    version="v6.19", confidence="UNCONFIRMED", fixes="d245f9b4ab80",
    replaces="zone_device_page_init(page, order) took pages as it found them: a former tail page kept "
             "its compound head and flags (F17)",
)

#: the low byte of page->flags (PG_locked ... PG_head, PG_waiters in the kernel's enum pageflags)
_LOW_BYTE = 0xff


@PATCH.define
def zone_device_page_init(k, page, pgmap=None, order: int = 0) -> None:
    """``zone_device_page_init(page, pgmap, order)`` (mm/memremap.c, 6.19 with 12b2285bf3d1)."""
    func = "zone_device_page_init"
    pgmap = pgmap or page.pgmap
    nr = 1 << order
    for pfn in range(page.pfn, page.pfn + nr):
        p = k.memmap[pfn]
        # "new_page->flags.f &= ~0xffUL; /* Clear possible order, page head */" -- the low byte
        # holds PG_locked as well, which is why a stale lock bit goes too
        p.flags.bits &= ~_LOW_BYTE
        p.head = p
        p.order = 0
        p.pgmap = pgmap
        k.set_page_field(p, "mapping", None, func)
        if p._refcount.peek() != 0:
            k.world.violate("init_of_busy_page", "VM_WARN_ON_FOLIO(folio_ref_count(new_folio), new_folio)",
                            p.pfn, func)
    if not pgmap.ref.tryget_many(nr, "percpu_ref_tryget_many"):
        k.world.violate("alloc_after_kill", "WARN_ON_ONCE(!percpu_ref_tryget_many(&pgmap->ref, 1 << order))",
                        page.pfn, func)
    k.set_page_count(page, 1, func)
    k.lock_page(page, func)
    if order:
        k.prep_compound_page(page, order, func)


@PATCH.define
def zone_device_folio_init(k, folio, pgmap=None, order: int = 0) -> None:
    """``zone_device_folio_init(folio, pgmap, order)``.
    Kernel: mm/memremap.c, as 12b2285bf3d1 (v6.19) has it."""
    k.zone_device_page_init(folio, pgmap, order)
    if order:
        k.world.event("zone_device_folio_init", folio.pfn, "large_rmappable", False, True)
