"""e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS" (v4.18).

[kernel_eras §4.1, M4, S3 (kernel/memremap.c at 0207df4fa1a8): CONFIRMED]

* Adds ``MEMORY_DEVICE_FS_DAX`` and removes the ``MEMORY_DEVICE_HOST`` enumerator: device-dax
  and p2pdma pgmaps keep type 0.  The model still calls type 0 ``MEMORY_DEVICE_HOST`` (it is
  what the CLI's ``generic`` means until DEVDAX appears in v5.3).
* HMM's ``device_private_key`` becomes ``devmap_managed_key``, switched by
  ``dev_pagemap_get_ops()``/``dev_pagemap_put_ops()`` (pmem takes it for an fsdax pgmap; the
  model does that inside ``devm_memremap_pages``, where v5.3 moved it).
* ``put_page()`` -> ``put_devmap_managed_page()`` (inline; key on, ZONE_DEVICE, type PRIVATE,
  PUBLIC or FS_DAX) -> ``__put_devmap_managed_page()``: decrement; at **1**: clear Active and
  Waiters, ``mapping = NULL``, memcg uncharge, ``page_free(page, data)``; at **0**:
  ``__put_page`` -> ``put_dev_pagemap``.  Which types counted as managed in v4.18 is INFERRED.
* FS_DAX's ``page_free`` is a wake-up: pmem's ``setup_pagemap_fsdax`` sets
  ``pgmap->page_free = generic_dax_pagefree`` (``wake_up_var(&page->_refcount)``), read in the
  posting of this patch (v11, "Move generic_dax_pagefree() into the pmem driver"); the pre-image
  of v5.3's ops rework calls it ``fsdax_pagefree`` (rename point UNCONFIRMED), v5.3 names it
  ``pmem_pagemap_page_free`` (fact ``fsdax_page_free``; kernel_2025_2026 §1 C7).  The
  filesystem waits for idle (refcount 1) pages before truncate (``linux/fs/dax.py``, c_5fac7408d828).
* The free path at 1 still clears ``page->mapping`` for every managed type, so an fsdax page that
  a GUP user releases forgets the file it belongs to while it is still in it -- what 2fa147bdbf67
  (v4.19, Dan Williams' memory_failure-for-dax series) fixed: "Do not clear ->mapping on final
  put"; memory_failure() and dax_lock_page() find the file through it.  The model reports that
  put as ``dax_mapping_lost`` (no WARN in v4.18 itself: the damage is silent).
"""

from ..linux.include.memremap import (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_HOST,
                                      MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC)
from ._patch import Patch

PATCH = Patch(
    commit="e76384884344", title="mm: introduce MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS",
    version="v4.18", confidence="CONFIRMED",
    replaces="put_zone_device_private_or_public_page() for HMM pages only; fsdax pages got no idle notification",
)
PATCH.remove("put_zone_device_private_or_public_page")
PATCH.set(
    memory_types=(MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_FS_DAX),
    type_names={"generic": MEMORY_DEVICE_HOST, "private": MEMORY_DEVICE_PRIVATE,
                "public": MEMORY_DEVICE_PUBLIC, "fsdax": MEMORY_DEVICE_FS_DAX},
    free_refcount={MEMORY_DEVICE_HOST: 1, MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_PUBLIC: 1,
                   MEMORY_DEVICE_FS_DAX: 1},
    devmap_managed_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_FS_DAX),
    fsdax_idle_refcount=1,
    fsdax_page_free="generic_dax_pagefree",
)


@PATCH.define
def dev_pagemap_get_ops(k) -> None:
    """``dev_pagemap_get_ops()``: switch the devmap_managed_key static branch on (a counted enable).
    Kernel: kernel/memremap.c, as e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and
    CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    old = k.devmap_managed_key.get("dev_pagemap_get_ops")
    k.devmap_managed_key.set(old + 1, "dev_pagemap_get_ops")
    k.world.event("dev_pagemap_get_ops", None, "devmap_managed_key", old, old + 1)


@PATCH.define
def dev_pagemap_put_ops(k) -> None:
    """``dev_pagemap_put_ops()``: drop one enable of the devmap_managed_key static branch.  Kernel:
    kernel/memremap.c, as e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and
    CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    old = k.devmap_managed_key.get("dev_pagemap_put_ops")
    k.devmap_managed_key.set(old - 1, "dev_pagemap_put_ops")
    k.world.event("dev_pagemap_put_ops", None, "devmap_managed_key", old, old - 1)


@PATCH.define
def hmm_devmem_add(k, pgmap):
    """``hmm_devmem_add()``: HMM's own percpu_ref and pgmap registration, the memmap of each range,
    and an enable of devmap_managed_key that nothing ever drops (F16).  Kernel: mm/hmm.c, as
    e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    k.pgmap_percpu_ref(pgmap, "hmm_devmem_ref_release")
    k.pgmap_register(pgmap, "hmm_devmem_add")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "hmm_devmem_pages_create")
    k.dev_pagemap_get_ops()             # never put: F16
    return pgmap


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """``devm_memremap_pages()``: needs the driver's percpu_ref; fsdax enables devmap_managed_key;
    register the pgmap, make the memmap and take one pgmap reference per page.  Kernel:
    kernel/memremap.c, as e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and
    CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    if pgmap.ref is None:
        raise ValueError("devm_memremap_pages: this era needs the driver's percpu_ref (pgmap.ref)")
    if pgmap.type == MEMORY_DEVICE_FS_DAX:
        k.dev_pagemap_get_ops()
    k.pgmap_register(pgmap, "devm_memremap_pages")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "devm_memremap_pages")
        for _ in range(nr):
            pgmap.ref.get("devm_memremap_pages")
    return pgmap


@PATCH.define
def page_is_devmap_managed(k, page) -> bool:
    """The inline test (named ``page_is_devmap_managed`` from v5.6; part of
    ``put_devmap_managed_page`` before): key on, ZONE_DEVICE, a managed type.

    Kernel: include/linux/mm.h, as e76384884344 (v4.18) has it."""
    if not k.devmap_managed_key.get("static_branch_unlikely"):
        return False
    if not k.is_zone_device_page(page):
        return False
    return page.pgmap.type in k.fact("devmap_managed_types")


@PATCH.define
def put_devmap_managed_page(k, page) -> bool:
    """``put_devmap_managed_page()``: false for a page the devmap-managed put does not own; else put
    it there.  Kernel: include/linux/mm.h, as e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX
    and CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    if not k.page_is_devmap_managed(page):
        return False
    k.__put_devmap_managed_page(page)
    return True


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """``__put_devmap_managed_page()``: drop a reference; at 1 the page is idle: clear flags and
    ``page->mapping`` (an fsdax page still in its file loses it: fixed by 2fa147bdbf67) and call
    ``page_free``; at 0 ``__put_page``.  Kernel: kernel/memremap.c, as e76384884344 "mm: introduce
    MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS" (v4.18) has it."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        k.__ClearPageActive(page, func)
        k.__ClearPageWaiters(page, func)
        if k.is_fsdax_page(page) and page.mapping.peek() is not None:
            k.world.violate("dax_mapping_lost", "page->mapping = NULL on the final put of an fsdax page still in "
                            "its file: the dax page forgets its mapping association at the end of a pin "
                            "(fixed by 2fa147bdbf67)", page.pfn, func)
        k.set_page_field(page, "mapping", None, func)
        k.mem_cgroup_uncharge(page, func)
        k.call_page_free(page, func)
    elif count == 0:
        k.__put_page(page)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: a devmap-managed page (private, public, fsdax) goes through
    ``put_devmap_managed_page`` (the driver's ``page_free`` when the count drops to 1); any
    other page is freed at 0.  Kernel: include/linux/mm.h, as e76384884344 "mm: introduce
    MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS" (v4.18) left it."""
    page = page.head
    if k.put_devmap_managed_page(page):
        return
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def release_pages_devmap_put(k, page) -> None:
    """The ``release_pages`` branch for a devmap-managed page: ``put_devmap_managed_page``.  Kernel:
    mm/swap.c, as e76384884344 "mm: introduce MEMORY_DEVICE_FS_DAX and CONFIG_DEV_PAGEMAP_OPS"
    (v4.18) has it."""
    k.put_devmap_managed_page(page)
