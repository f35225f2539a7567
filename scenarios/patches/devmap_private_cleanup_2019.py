"""Dan Williams' proposal in the review of "mm: devmap: refactor 1-based refcounting for
ZONE_DEVICE pages" (13 Nov 2019, seed ``001_19201cc6408e5961.txt``), on v5.3 -- the tree the
thread discussed (mm/memremap.c ``__put_devmap_managed_page`` of v5.3-v5.5).

"I think __ClearPageActive, __ClearPageWaiters, and mem_cgroup_uncharge, belong behind a
device-private conditional": at refcount 1 a device-private page gets the clean-up (clear Active
and Waiters, memcg uncharge, ``->mapping = NULL``) and its ``page_free``; any other managed page
(fsdax) gets ``wake_up_var(&page->_refcount)`` open-coded, and pmem drops its ``page_free``
(so ``memremap_pages`` asks for ``page_free`` only on device-private maps).  Merged in v5.6 as
"mm: Cleanup __put_devmap_managed_page() vs ->page_free()" (429589d647e2 in the series).

What the matrix shows (``zonedev matrix scenarios/seeds.py --kernel v5.3 --patch THIS``):

* ``dax_free_path`` on v5.3: ``dax_page_uncharged`` -> ``safe`` -- the v5.6 answer three
  releases early.  The fsdax truncate is still woken (the open-coded wake-up replaces pmem's
  ``page_free``).
* ``page_free_vs_memunmap`` on v5.3: unchanged, ``page_free_while_referenced`` and
  ``use_after_free`` (page_free still running when memunmap_pages returns); every other
  device-private cell too (``page_free_at_one`` safe): the private free sequence is the same,
  only gated.
"""

import zonedev
from zonedev.linux.include.memremap import MEMORY_DEVICE_PRIVATE

PATCH = zonedev.Patch(
    commit="devmap-private-cleanup-2019",
    title="mm: Cleanup __put_devmap_managed_page() vs ->page_free()",
    version="v5.3", seed="001_19201cc6408e5961.txt", confidence="CONFIRMED",
    replaces="the free path at refcount 1 ran the device-private clean-up (Active, Waiters, memcg "
             "uncharge) on fsdax pages too, and woke fsdax waiters through pmem's page_free",
)


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """Only a device-private map must bring ``page_free`` (and ``migrate_to_ram``)."""
    ops = pgmap.ops
    if pgmap.type == MEMORY_DEVICE_PRIVATE and (ops.page_free is None or ops.migrate_to_ram is None):
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
        raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """mm/memremap.c v5.3 with the device-private conditional."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        if k.is_device_private_page(page):
            # Clear Active bit in case of parallel mark_page_accessed
            k.__ClearPageActive(page, func)
            k.__ClearPageWaiters(page, func)
            k.mem_cgroup_uncharge(page, func)
            k.set_page_field(page, "mapping", None, func)
            k.call_page_free(page, func)
        else:
            k.wake_up_var_refcount(page, func)
    elif count == 0:
        k.__put_page(page)
