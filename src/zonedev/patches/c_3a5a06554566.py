"""3a5a06554566 "mm/zone_device: rename page_free callback to folio_free" (Balbir Singh; posted as
"[v7 02/16] mm/zone_device: Rename page_free callback to folio_free", 1 Oct 2025) and the newest
``mm/memremap.c`` of the linux-mm tree (S7 @163177a569ab, S8 @5885d9aa9013).

[kernel_eras §10, M28: CONFIRMED diff; the reference knows no upstream id and the model used to
name this patch "mm-zone_device-folio_free" (module mm_zone_device_folio_free)]

Audit: CORRECTED id "mm-zone_device-folio_free" -> 3a5a06554566, CONFIRMED: Matthew Brost's fix
"Fixes: 3a5a06554566 ("mm/zone_device: rename page_free callback to folio_free")" (nouveau/dri-devel,
posted by Francois Dugast, 11 Jan 2026).  kernel.org post-receive revlists show mm-unstable/mm-new
copies under other ids (8eed04729224, dd7a1e69104e, ...); 3a5a06554566 is the one in ardb/linux of
6 Dec 2025, rebased on the v6.19 merge window, so upstream from v6.19 (INFERRED).  The model keeps
the patch in "newest", which also carries later mm-tree state.

* ``dev_pagemap_ops.page_free(page)`` becomes ``folio_free(folio)``; ``folio_split(head, tail)``
  is added (private only; called when a device-private large folio is split).
* ``zone_device_page_init(page, pgmap, order)``: for each of the ``1 << order`` pages clear stale
  compound state, ``mapping = NULL``, set ``pgmap``, ``share = 0``, and warn if the refcount is
  nonzero (``VM_WARN_ON_FOLIO(folio_ref_count(new_folio))``, checked against S7); then ``WARN_ON_ONCE(!percpu_ref_tryget_many(ref, 1 << order))``, refcount 1,
  ``lock_page``, ``prep_compound_page`` if ``order > 0``.  Note ``tryget_many`` (not
  ``tryget_live``): it succeeds on a killed ref that still has users, so allocation after
  ``memunmap_pages`` started is caught only once the ref has drained [S7].
* ``free_zone_device_folio`` drops ``nr_pages`` pgmap references (``percpu_ref_put_many``).
"""

from ..linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="3a5a06554566", title="mm/zone_device: rename page_free callback to folio_free",
    version="newest", confidence="CONFIRMED",
    replaces="dev_pagemap_ops.page_free(page); zone_device_page_init(page) for order-0 pages only",
)
PATCH.set(pgmap_ops=("folio_free", "migrate_to_ram", "memory_failure", "folio_split"), folio_free=True)


@PATCH.define
def zone_device_page_init(k, page, pgmap=None, order: int = 0) -> None:
    func = "zone_device_page_init"
    pgmap = pgmap or page.pgmap
    nr = 1 << order
    for pfn in range(page.pfn, page.pfn + nr):
        p = k.memmap[pfn]
        if p._refcount.peek() != 0:
            k.world.violate("init_of_busy_page", "VM_WARN_ON_FOLIO(folio_ref_count(new_folio), new_folio)",
                            p.pfn, func)
        p.head = p
        p.order = 0
        p.pgmap = pgmap
        k.set_page_field(p, "mapping", None, func)
    if not pgmap.ref.tryget_many(nr, "percpu_ref_tryget_many"):
        k.world.violate("alloc_after_kill", "WARN_ON_ONCE(!percpu_ref_tryget_many(&pgmap->ref, 1 << order))",
                        page.pfn, func)
    k.set_page_count(page, 1, func)
    k.lock_page(page, func)
    if order:
        k.prep_compound_page(page, order, func)


@PATCH.define
def free_zone_device_put_pgmap(k, folio) -> None:
    folio.pgmap.ref.put_many(1 << folio.order, "percpu_ref_put_many")


@PATCH.define
def get_dev_pagemap(k, pfn: int, pgmap=None):
    """Newest: ``get_dev_pagemap(pfn)`` -- rcu, ``xa_load``, ``percpu_ref_tryget_live_rcu``.
    (A cached ``pgmap`` argument is still accepted by the model and ignored.)"""
    return k.get_dev_pagemap_rcu(pfn, "percpu_ref_tryget_live_rcu")
