"""429589d647e2 "mm: Cleanup __put_devmap_managed_page() vs ->page_free()" (v5.6, Dan Williams;
carried as patch 03 of John Hubbard's FOLL_PIN prerequisite series).

Seed thread: 001_19201cc6408e5961.txt (Dan: "certainly unnecessary and might be broken ... to
call mem_cgroup_uncharge() on a DAX page").  [kernel_eras §6.1, M11: CONFIRMED text; id
UNCONFIRMED]

* ``memremap_pages`` requires ``page_free`` only for MEMORY_DEVICE_PRIVATE; pmem drops its
  ``page_free``.
* At refcount 1: device-private pages get the HMM-specific steps (clear Active and Waiters,
  memcg uncharge, ``mapping = NULL``) and ``page_free``; other managed pages (FS_DAX) get an
  open-coded ``wake_up_var(&page->_refcount)``.  F6 fixed.

Audit: id not found in the indexed sources (searched: find_string "429589d647e2"/"429589d647e", the
quoted-title Fixes: form, code/pages search by title).  Title CONFIRMED by the postings ([PATCH] Nov
2019; [PATCH v7 04/24], v9 03/25, v11 03/25 of John Hubbard's series, Dec 2019); still in v11 on 16
Dec 2019, so after v5.5-rc1: v5.6 INFERRED.
"""

from ..linux.include.memremap import MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="429589d647e2", title="mm: Cleanup __put_devmap_managed_page() vs ->page_free()",
    version="v5.6", confidence="UNCONFIRMED", seed="001_19201cc6408e5961.txt",
    replaces="the HMM-specific free steps (Active/Waiters, memcg uncharge) ran on fsdax pages too, "
             "and fsdax needed a page_free that only woke waiters",
)


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """The type checks of ``memremap_pages``: a device-private pgmap needs ``page_free`` and
    ``migrate_to_ram`` (WARN and -EINVAL).  Kernel: mm/memremap.c, as 429589d647e2 "mm: Cleanup
    __put_devmap_managed_page() vs ->page_free()" (v5.6) has it."""
    ops = pgmap.ops
    if pgmap.type == MEMORY_DEVICE_PRIVATE and ((ops.page_free or ops.folio_free) is None or ops.migrate_to_ram is None):
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
        raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """``__put_devmap_managed_page()``: at 1 a device-private page is freed to its driver
    (``page_free``); an fsdax page's waiter is woken (``wake_up_var``); at 0 ``__put_page``.
    Kernel: mm/memremap.c, as 429589d647e2 "mm: Cleanup __put_devmap_managed_page() vs
    ->page_free()" (v5.6) has it."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        if k.is_device_private_page(page):
            k.__ClearPageActive(page, func)
            k.__ClearPageWaiters(page, func)
            k.mem_cgroup_uncharge(page, func)
            k.set_page_field(page, "mapping", None, func)
            k.call_page_free(page, func)
        else:
            k.wake_up_var_refcount(page, func)
    elif count == 0:
        k.__put_page(page)
