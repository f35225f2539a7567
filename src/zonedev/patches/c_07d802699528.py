"""07d802699528 "mm: devmap: refactor 1-based refcounting for ZONE_DEVICE pages" (v5.6, John
Hubbard / Ira Weiny; suggested by Jerome Glisse).

Seed thread: 001_19201cc6408e5961.txt.  [kernel_eras §6.1, M11: CONFIRMED; v5.6 INFERRED]

* ``page_is_devmap_managed(page)``: read-only (key on, ZONE_DEVICE, PRIVATE or FS_DAX).
* ``put_devmap_managed_page(page)``: decrement; at **1** -> ``free_devmap_managed_page``; at
  **0** -> ``__put_page`` ("only triggered by the dev_pagemap shutdown path").
* ``free_devmap_managed_page(page)``: unconditional free: the wake-up for non-private pages, the
  private free sequence otherwise.
* ``put_page`` and ``release_pages`` test ``page_is_devmap_managed()`` first.
"""

from ._patch import Patch

PATCH = Patch(
    commit="07d802699528", title="mm: devmap: refactor 1-based refcounting for ZONE_DEVICE pages",
    version="v5.6", confidence="CONFIRMED", seed="001_19201cc6408e5961.txt",
    replaces="put_devmap_managed_page() both tested the page and put it; __put_devmap_managed_page() "
             "did the decrement and the free",
)
PATCH.remove("__put_devmap_managed_page")


@PATCH.define
def put_devmap_managed_page(k, page) -> bool:
    """``put_devmap_managed_page()``: for a devmap-managed page drop the reference; at 1 (these
    counts are 1-based) ``free_devmap_managed_page``, at 0 ``__put_page``; false for other pages.
    Kernel: include/linux/mm.h, as 07d802699528 "mm: devmap: refactor 1-based refcounting for
    ZONE_DEVICE pages" (v5.6) has it."""
    if not k.page_is_devmap_managed(page):
        return False
    count = k.page_ref_dec_return(page, "put_devmap_managed_page")
    # devmap page refcounts are 1-based: at 1 the page is free and nobody holds it
    if count == 1:
        k.free_devmap_managed_page(page)
    elif count == 0:
        k.__put_page(page)
    return True


@PATCH.define
def free_devmap_managed_page(k, page) -> None:
    """``free_devmap_managed_page()``: an idle fsdax page wakes its waiter; a device-private page is
    cleared and given back to its driver (``page_free``).  Kernel: mm/memremap.c, as 07d802699528
    "mm: devmap: refactor 1-based refcounting for ZONE_DEVICE pages" (v5.6) has it."""
    func = "free_devmap_managed_page"
    if not k.is_device_private_page(page):
        k.wake_up_var_refcount(page, func)
        return
    k.__ClearPageActive(page, func)
    k.__ClearPageWaiters(page, func)
    k.mem_cgroup_uncharge(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: a devmap-managed page goes through ``put_devmap_managed_page``; any other
    page is freed at 0.  Kernel: include/linux/mm.h, as 07d802699528 "mm: devmap: refactor
    1-based refcounting for ZONE_DEVICE pages" (v5.6) has it."""
    page = page.head
    if k.page_is_devmap_managed(page):
        k.put_devmap_managed_page(page)
        return
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def release_pages(k, pages) -> None:
    """``release_pages()``: devmap-managed pages through ``put_devmap_managed_page``, the rest freed
    at 0.  Kernel: mm/swap.c, as 07d802699528 "mm: devmap: refactor 1-based refcounting for
    ZONE_DEVICE pages" (v5.6) has it."""
    for page in pages:
        page = page.head
        if k.is_zone_device_page(page) and k.page_is_devmap_managed(page):
            k.put_devmap_managed_page(page)
            continue
        if k.put_page_testzero(page, "release_pages"):
            k.__put_page(page)
