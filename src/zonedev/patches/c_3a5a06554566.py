"""3a5a06554566 "mm/zone_device: rename page_free callback to folio_free" (Balbir Singh; posted as
"[v7 02/16] mm/zone_device: Rename page_free callback to folio_free", 1 Oct 2025; v6.19) and the
``folio_split`` callback of the same series ("mm/memremap: add driver callback support for folio
splitting").

[kernel_eras §10, M28: CONFIRMED diff]

Audit: CORRECTED id "mm-zone_device-folio_free" -> 3a5a06554566, CONFIRMED: Matthew Brost's fix
"Fixes: 3a5a06554566 ("mm/zone_device: rename page_free callback to folio_free")" (nouveau/dri-devel,
posted by Francois Dugast, 11 Jan 2026).  kernel.org post-receive revlists show mm-unstable/mm-new
copies under other ids (8eed04729224, dd7a1e69104e, ...); 3a5a06554566 is the one in ardb/linux of
6 Dec 2025, rebased on the v6.19 merge window.  Version MOVED newest -> v6.19 (issue 9): the
series is 16 patches applied together, its first patch d245f9b4ab80 is v6.19, and the 12b2285bf3d1
fix to both was written to apply "on both the 6.19 branches and drm-tip" (Francois Dugast, v6).

* ``dev_pagemap_ops.page_free(page)`` becomes ``folio_free(folio)``; ``folio_split(head, tail)``
  is added (private only; called when a device-private large folio is split).
* ``get_dev_pagemap(pfn)``: one argument (rcu, ``xa_load``, ``percpu_ref_tryget_live_rcu``).

``zone_device_page_init`` gains its pgmap argument and per-page reinitialisation in the fix
12b2285bf3d1 (F17), not here.
"""

from ._patch import Patch

PATCH = Patch(
    commit="3a5a06554566", title="mm/zone_device: rename page_free callback to folio_free",
    version="v6.19", confidence="CONFIRMED",
    replaces="dev_pagemap_ops.page_free(page); no folio_split callback",
)
PATCH.set(pgmap_ops=("folio_free", "migrate_to_ram", "memory_failure", "folio_split"), folio_free=True)


@PATCH.define
def get_dev_pagemap(k, pfn: int, pgmap=None):
    """Newest: ``get_dev_pagemap(pfn)`` -- rcu, ``xa_load``, ``percpu_ref_tryget_live_rcu``.
    (A cached ``pgmap`` argument is still accepted by the model and ignored.)

    Kernel: mm/memremap.c, as 3a5a06554566 (v6.19) has it."""
    return k.get_dev_pagemap_rcu(pfn, "percpu_ref_tryget_live_rcu")
