"""5c2c2587b132 "mm, dax, pmem: introduce {get|put}_dev_pagemap() for dax-gup" (v4.5).

kernel/memremap.c, include/linux/memremap.h, include/linux/mm.h of v4.5 [kernel_eras §1, M30,
M31: CONFIRMED title/id; version INFERRED].

* ``get_dev_pagemap(pfn, pgmap)``: with a cached ``pgmap`` that covers ``pfn``, a blind
  ``percpu_ref_get`` (the caller already holds a live reference); otherwise look the pfn up in
  ``pgmap_radix`` and ``percpu_ref_tryget_live`` (fails once the ref is killed).
* ``put_dev_pagemap(pgmap)``: ``percpu_ref_put(pgmap->ref)``.
* Every page reference is shadowed by a pgmap reference: ``get_page()`` on a ZONE_DEVICE page
  calls ``get_zone_device_page()`` (``percpu_ref_get``) and ``put_page()`` calls
  ``put_zone_device_page()`` (``put_dev_pagemap``).  At rest pages hold no pgmap reference.

Replaced by 71389703839e (v4.12), whose commit explains why: the generic GUP-fast took page
references without the matching pgmap reference (F1, ``page_cache_get_speculative``).
"""

from ..linux.mm.memremap import pgmap_covers
from ._patch import Patch

PATCH = Patch(
    commit="5c2c2587b132", title="mm, dax, pmem: introduce {get|put}_dev_pagemap() for dax-gup",
    version="v4.5", confidence="CONFIRMED",
    replaces="page references on ZONE_DEVICE pages did not pin the device mapping",
)


@PATCH.define
def get_dev_pagemap(k, pfn: int, pgmap=None):
    """``get_dev_pagemap(pfn, pgmap)``: reuse ``pgmap`` with a plain reference when it covers
    ``pfn``, else look the pfn up and take a live reference (``percpu_ref_tryget_live``); NULL
    once the pgmap is dying.  Kernel: kernel/memremap.c, as 5c2c2587b132 "mm, dax, pmem: introduce
    {get|put}_dev_pagemap() for dax-gup" (v4.5) has it."""
    if pgmap is not None and pgmap_covers(pgmap, pfn):
        pgmap.ref.get("get_dev_pagemap")
        return pgmap
    return k.get_dev_pagemap_rcu(pfn, "percpu_ref_tryget_live")


@PATCH.define
def put_dev_pagemap(k, pgmap) -> None:
    """``put_dev_pagemap()``: drop a pgmap reference (NULL is allowed).  Kernel:
    include/linux/memremap.h, as 5c2c2587b132 "mm, dax, pmem: introduce {get|put}_dev_pagemap()
    for dax-gup" (v4.5) has it."""
    if pgmap is not None:
        pgmap.ref.put("put_dev_pagemap")


@PATCH.define
def get_zone_device_page(k, page) -> None:
    """``get_zone_device_page()``: every page reference of a ZONE_DEVICE page also holds a pgmap
    reference.  Kernel: kernel/memremap.c, as 5c2c2587b132 "mm, dax, pmem: introduce
    {get|put}_dev_pagemap() for dax-gup" (v4.5) has it."""
    page.pgmap.ref.get("get_zone_device_page")


@PATCH.define
def put_zone_device_page(k, page) -> None:
    """``put_zone_device_page()``: drop the pgmap reference that page reference held.  Kernel:
    include/linux/mm.h, as 5c2c2587b132 "mm, dax, pmem: introduce {get|put}_dev_pagemap() for
    dax-gup" (v4.5) has it."""
    k.put_dev_pagemap(page.pgmap)


@PATCH.define
def get_page(k, page) -> None:
    """``get_page()`` v4.5: raise the count, then a pgmap reference for a ZONE_DEVICE page.
    Kernel: kernel/memremap.c, as 5c2c2587b132 (v4.5) has it."""
    page = page.head
    if k.page_ref_inc_return(page, "get_page") <= 1:
        k.world.violate("get_on_free_page", "VM_BUG_ON_PAGE(page_ref_count(page) <= 0, page)", page.pfn, "get_page")
    if k.is_zone_device_page(page):
        k.get_zone_device_page(page)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()`` v4.5: drop the count (``__put_page`` at 0, a bug for these pages), then
    drop the shadowing pgmap reference.

    Kernel: include/linux/mm.h, as 5c2c2587b132 (v4.5) has it."""
    page = page.head
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)
    if k.is_zone_device_page(page):
        k.put_zone_device_page(page)
