"""d245f9b4ab80 "mm/zone_device: support large zone device private folios" (Balbir Singh, 1/16
of the device-private THP series; v6.19, INFERRED from the v6.19 merge window and its Fixes:
users).  kernel_2025_2026.md §2 v6.19, §1 C4.

Read: linux-mm/linux-mm mm/memremap.c @163177a569ab (``free_zone_device_folio``,
``zone_device_page_init``) and the v6 posting of its fix 12b2285bf3d1 (the pre-image of
``zone_device_page_init`` and ``zone_device_folio_init`` as this commit left them).

* ``zone_device_page_init(page, order)``: ``percpu_ref_tryget_many(ref, 1 << order)``,
  ``set_page_count(page, 1)``, ``lock_page``, and ``prep_compound_page(page, order)`` for
  ``order > 0``.  The pages are taken as they are: a page that was a tail of an earlier large
  folio keeps its compound head (the model's ``page.head``; in the kernel ``compound_head`` shares
  a word with ``pgmap``) and its flags -- failure F17, fixed by 12b2285bf3d1.
* ``zone_device_folio_init(folio, order)``: the same, then ``folio_set_large_rmappable`` for a
  large folio.
* ``free_zone_device_folio``: for an anonymous folio ``mod_mthp_stat(order, MTHP_STAT_NR_ANON,
  -1)`` and ``__ClearPageAnonExclusive`` on **every** page of the folio (C4; the model cleared the
  head only); the driver's free callback gets the whole folio; ``percpu_ref_put_many(&pgmap->ref,
  nr)`` drops one pgmap reference per page (the local ``pgmap``, not ``folio->pgmap``: the
  April 2026 follow-up "may be reallocated by a driver with a different order").
"""

from ._patch import Patch

PATCH = Patch(
    commit="d245f9b4ab80", title="mm/zone_device: support large zone device private folios",
    version="v6.19", confidence="INFERRED",
    replaces="device-private pages were order 0 only: zone_device_page_init(page), one pgmap reference per "
             "free, AnonExclusive cleared on the head page",
)
PATCH.set(zone_device_large_folios=True)


@PATCH.define
def zone_device_page_init(k, page, order: int = 0) -> None:
    """``zone_device_page_init(page, order)`` (mm/memremap.c, d245f9b4ab80 .. 12b2285bf3d1):
    no per-page reinitialisation (F17)."""
    func = "zone_device_page_init"
    nr = 1 << order
    pgmap = page.pgmap
    if page._refcount.peek() != 0:
        k.world.violate("init_of_busy_page", "VM_WARN_ON_FOLIO(folio_ref_count(folio), folio)", page.pfn, func)
    if not pgmap.ref.tryget_many(nr, "percpu_ref_tryget_many"):
        k.world.violate("alloc_after_kill", "WARN_ON_ONCE(!percpu_ref_tryget_many(&pgmap->ref, 1 << order))",
                        page.pfn, func)
    k.set_page_count(page, 1, func)
    k.lock_page(page, func)
    if order:
        k.prep_compound_page(page, order, func)


@PATCH.define
def zone_device_folio_init(k, folio, order: int = 0) -> None:
    """``zone_device_folio_init(folio, order)`` (include/linux/memremap.h): page init, then
    ``folio_set_large_rmappable`` for a large folio.

    Kernel: mm/memremap.c, as d245f9b4ab80 (v6.19) has it."""
    k.zone_device_page_init(folio, order)
    if order:
        k.world.event("zone_device_folio_init", folio.pfn, "large_rmappable", False, True)


@PATCH.define
def free_zone_device_folio_anon(k, folio, func: str) -> None:
    """``mod_mthp_stat(folio_order(folio), MTHP_STAT_NR_ANON, -1)`` and
    ``__ClearPageAnonExclusive(folio_page(folio, i))`` for every page of the folio.

    Kernel: mm/memremap.c, as d245f9b4ab80 (v6.19) has it."""
    k.world.event(func, folio.pfn, "mthp_stat_nr_anon", None, -1)
    for pfn in range(folio.pfn, folio.pfn + (1 << folio.order)):
        k.__ClearPageAnonExclusive(k.memmap[pfn], func)


@PATCH.define
def free_zone_device_put_pgmap(k, folio) -> None:
    """``percpu_ref_put_many(&pgmap->ref, nr)``: one pgmap reference per page of the folio.
    Kernel: mm/memremap.c, as d245f9b4ab80 (v6.19) has it."""
    folio.pgmap.ref.put_many(1 << folio.order, "percpu_ref_put_many")
