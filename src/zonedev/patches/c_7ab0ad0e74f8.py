"""7ab0ad0e74f8 "mm/hmm: fix ZONE_DEVICE anon page mapping reuse" (v5.3-rc, Ralph Campbell).

[kernel_eras §5, M7, S4: CONFIRMED]  A freed device-private page kept a stale anon
``->mapping``; on reuse ``migrate_vma_insert_page`` -> ``page_add_new_anon_rmap`` saw PageAnon
and silently skipped the rmap (F4).  Fix: ``__put_devmap_managed_page`` clears ``mapping`` on
free, for device-private pages only (fsdax needs it kept).
"""

from ._patch import Patch

PATCH = Patch(
    commit="7ab0ad0e74f8", title="mm/hmm: fix ZONE_DEVICE anon page mapping reuse",
    version="v5.3", confidence="CONFIRMED", fixes="b7a523109fb5", seed="001_19201cc6408e5961.txt",
    replaces="a freed device-private page kept its stale anon ->mapping",
)


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """``__put_devmap_managed_page()``: at 1 clear the flags, clear ``page->mapping`` of a
    device-private page (the core now does it for the drivers), ``page_free``; at 0
    ``__put_page``.  Kernel: mm/memremap.c, as 7ab0ad0e74f8 "mm/hmm: fix ZONE_DEVICE anon page
    mapping reuse" (v5.3) has it."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        k.__ClearPageActive(page, func)
        k.__ClearPageWaiters(page, func)
        k.mem_cgroup_uncharge(page, func)
        if k.is_device_private_page(page):
            k.set_page_field(page, "mapping", None, func)
        k.call_page_free(page, func)
    elif count == 0:
        k.__put_page(page)
