"""6f4dd8de4835 "mm: remove superfluous __ClearPageActive()" (Yu Zhao, Aug 2020, v5.10; 2/3 of
"mm: clean up some lru related pieces").  kernel_2025_2026.md §1 C7.

Read: the posting (v2, 18 Aug 2020) and the mm merge list of the v5.10 cycle that carries the id.
The device-private free path (``free_devmap_managed_page``, mm/memremap.c) stops clearing
PG_active: "Clear Active bit in case of parallel mark_page_accessed" is gone because a page
reaching its free path is off the LRU and cannot be marked active any more.  From v5.10 the
sequence is Waiters, memcg uncharge, ``mapping = NULL``, ``page_free``.
"""

from ._patch import Patch

PATCH = Patch(
    commit="6f4dd8de4835", title="mm: remove superfluous __ClearPageActive()",
    version="v5.10", confidence="CONFIRMED",
    replaces="free_devmap_managed_page() cleared PG_active before page_free",
)


@PATCH.define
def free_devmap_managed_page(k, page) -> None:
    """``free_devmap_managed_page()`` (mm/memremap.c v5.10-v5.17): fsdax pages get the idle
    wake-up; device-private pages are handed back to the driver."""
    func = "free_devmap_managed_page"
    if not k.is_device_private_page(page):
        k.wake_up_var_refcount(page, func)
        return
    k.__ClearPageWaiters(page, func)
    k.mem_cgroup_uncharge(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)
