"""56ef39899643 "mm/memremap: add driver callback support for folio splitting" (Balbir Singh,
device-private THP series, v6.19; id UNCONFIRMED: the mm-tree copies carry 9f310159b062,
7bd2f222d0a0, 00789f07139a, a4c0d53d0bb7, 6c2624f50a27, 7dbb924e1d4b, 59c0d279a3b6 too).

Read: the posting's include/linux/memremap.h hunk (``dev_pagemap_ops.folio_split(head, tail)``:
"Used for private (un-addressable) device memory only.  This callback is used when a folio is
split into a smaller folio", and ``zone_device_private_split_cb``) and the drm_pagemap user
(``drm_pagemap_folio_split`` in linux-mm/linux-mm drivers/gpu/drm/drm_pagemap.c).

``zone_device_private_split_cb(original_folio, new_folio)``: for a device-private folio, the
driver's ``folio_split`` if it has one (the driver sets the new folio's ``pgmap`` and its own
``zone_device_data`` reference -- drm_pagemap takes a zdd reference per new folio), else the core
copies ``pgmap`` and ``mapping`` to the new folio; it is called once per new folio and once more
with ``NULL`` when the split is done.

``__split_unmapped_folio(folio, new_order)`` is the model of the split of an *unmapped*
device-private folio (``folio_split_unmapped``, what ``migrate_vma_split_unmapped_folio`` calls
once its PMD is gone): every ``1 << new_order`` pages become a folio of their own, locked like
the original, each holding one reference (the one the migration holds on every piece; the kernel
freezes the original count and unfreezes each new folio -- not modelled step by step), each
announced to the driver.
"""

from ..linux.include.mm_types import PG_locked, PG_zd_free
from ._patch import Patch

PATCH = Patch(
    commit="56ef39899643", title="mm/memremap: add driver callback support for folio splitting",
    version="v6.19", confidence="UNCONFIRMED",
    replaces="dev_pagemap_ops had no folio_split: a device-private folio could not be split",
)


@PATCH.define
def zone_device_private_split_cb(k, original_folio, new_folio) -> None:
    """``zone_device_private_split_cb()`` (include/linux/memremap.h, v6.19).  Before the driver's
    ``folio_split`` runs, the model checks the lifetime rule every driver callback shares
    (``zd_check_pgmap_held``, mm/memremap.c: the pgmap must not have been torn down -- its
    reference exited -- since ``memunmap_pages`` returning lets the driver free it); as for
    ``migrate_to_ram`` the check adds no scheduling point of its own."""
    if not k.is_device_private_page(original_folio):
        return
    pgmap = original_folio.pgmap
    k.zd_check_pgmap_held(pgmap, "folio_split", original_folio.pfn)
    if pgmap.ops.folio_split is None:
        if new_folio is not None:
            new_folio.pgmap = pgmap
            k.set_page_field(new_folio, "mapping", original_folio.mapping.get("folio->mapping"),
                             "zone_device_private_split_cb")
        return
    pgmap.ops.folio_split(original_folio, new_folio)


@PATCH.define
def __split_unmapped_folio(k, folio, new_order: int = 0) -> int:
    """Split an unmapped, locked device-private folio into folios of ``new_order``.
    Kernel: mm/huge_memory.c, as 56ef39899643 (v6.19) has it."""
    func = "__split_unmapped_folio"
    order = folio.order
    if new_order >= order:
        return -22
    step = 1 << new_order
    locked = folio.flags.peek(PG_locked)
    for pfn in range(folio.pfn + step, folio.pfn + (1 << order), step):
        new = k.memmap[pfn]
        for p in range(pfn, pfn + step):
            k.memmap[p].head = new
        new.order = 0
        if new_order:
            k.prep_compound_page(new, new_order, func)
        if locked:
            new.flags.bits |= 1 << PG_locked
        new.flags.bits &= ~(1 << PG_zd_free)        # model bookkeeping: the piece is in use
        k.set_page_count(new, 1, func)
        k.zone_device_private_split_cb(folio, new)
    folio.order = new_order
    k.world.event(func, folio.pfn, "order", order, new_order)
    k.zone_device_private_split_cb(folio, None)
    return 0
