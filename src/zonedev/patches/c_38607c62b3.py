"""38607c62b3 "fs/dax: properly refcount fs dax pages" and the rest of Alistair Popple's
"fs/dax: Fix ZONE_DEVICE page reference counts" series (v6.15).

[kernel_eras §9, M20: CONFIRMED 10-character id of this patch; the sibling patches' upstream
ids are UNCONFIRMED and folded in here: "mm/mm_init: Move p2pdma page refcount initialisation
to p2pdma", "device/dax: Properly refcount device dax pages when mapping", "mm/gup: Don't allow
FOLL_LONGTERM pinning of FS DAX pages", the dax idle-page and wait-key patches]

* ``__init_zone_device_page``: FS_DAX, PRIVATE, COHERENT and PCI_P2PDMA start at **0**;
  GENERIC stays at 1 [S11].
* FS_DAX: a page is in use while mapped (each mapping takes a reference) or pinned; 0 means
  idle.  ``dax_page_is_idle`` is ``== 0`` and the wait key is the page itself
  (``wake_up_var(page)`` from the free path).
* ``devmap_managed_key`` and ``put_devmap_managed_page*`` are deleted: ``put_page`` is
  ``folio_put``; ``gup_put_folio`` is ``folio_put_refs``; ``release_pages`` frees a zone-device
  folio that reaches 0 with ``free_zone_device_folio``.
* ``free_zone_device_folio``: memcg uncharge, clear PG_anon_exclusive, clear ``->mapping``
  unless FS_DAX/GENERIC, then per type: PRIVATE/COHERENT ``page_free`` + ``put_dev_pagemap``;
  GENERIC reset to 1; FS_DAX ``wake_up_var``; PCI_P2PDMA ``page_free`` (the driver drops its
  own pgmap reference), no reset.
* P2PDMA: ``p2pmem_alloc_mmap`` sets the refcount 0 -> 1 before inserting.
* GENERIC (device-dax) mappings take a page reference (1 -> 2), the unmap drops it.
* FOLL_LONGTERM pins of fsdax pages are refused (``folio_is_longterm_pinnable``).
"""

from ..linux.include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
                                      MEMORY_DEVICE_PCI_P2PDMA, MEMORY_DEVICE_PRIVATE)
from ..linux.include.mm import FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ._patch import Patch

PATCH = Patch(
    commit="38607c62b3", title="fs/dax: properly refcount fs dax pages",
    version="v6.15", confidence="CONFIRMED",
    replaces="fsdax pages were 1-based (idle at 1, woken on 2->1 through devmap_managed_key); "
             "p2pdma pages idled at 1",
)
PATCH.remove("put_devmap_managed_page", "put_devmap_managed_page_refs", "page_is_devmap_managed",
             "dev_pagemap_get_ops", "dev_pagemap_put_ops", "free_zone_device_page")
PATCH.set(
    free_refcount={MEMORY_DEVICE_PRIVATE: 0, MEMORY_DEVICE_COHERENT: 0, MEMORY_DEVICE_FS_DAX: 0,
                   MEMORY_DEVICE_GENERIC: 1, MEMORY_DEVICE_PCI_P2PDMA: 0},
    devmap_managed_types=(),
    fsdax_idle_refcount=0,
    dax_mapping_takes_ref=True,
)

_ZERO_BASED = (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    return 0 if pgmap.type in _ZERO_BASED else 1


@PATCH.define
def devmap_managed_enable_get(k, pgmap) -> None:
    """Gone: no devmap_managed_key any more."""


@PATCH.define
def devmap_managed_enable_put(k, pgmap) -> None:
    """Gone: no devmap_managed_key any more."""


@PATCH.define
def put_page(k, page) -> None:
    k.folio_put(page.head)


@PATCH.define
def folio_put(k, folio) -> None:
    if k.page_ref_dec_and_test(folio, "folio_put"):
        k.__folio_put(folio)


@PATCH.define
def gup_put_folio(k, folio, refs: int, flags: int) -> None:
    if flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, -refs, "gup_put_folio")
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    k.folio_put_refs(folio, refs)


@PATCH.define
def free_zone_device_folio(k, folio) -> None:
    func = "free_zone_device_folio"
    pgmap = folio.pgmap
    if pgmap is None:
        k.world.violate("free_without_pgmap", "WARN_ON_ONCE(!pgmap)", folio.pfn, func)
        return
    k.mem_cgroup_uncharge(folio, func)
    if k.PageAnon(folio):
        k.__ClearPageAnonExclusive(folio, func)
    t = pgmap.type
    if t not in (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC):
        k.set_page_field(folio, "mapping", None, func)
    if t in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
            k.world.violate("free_without_page_free", "WARN_ON_ONCE(!pgmap->ops || !pgmap->ops->page_free)",
                            folio.pfn, func)
            return
        k.call_page_free(folio, func)
        k.free_zone_device_put_pgmap(folio)
    elif t == MEMORY_DEVICE_GENERIC:
        # Reset the refcount to 1 to prepare for handing out the page again.
        k.set_page_count(folio, 1, func)
    elif t == MEMORY_DEVICE_FS_DAX:
        k.zd_check_fsdax_idle(folio)
        k.wake_up_var_refcount(folio, func)
    elif t == MEMORY_DEVICE_PCI_P2PDMA:
        if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
            k.world.violate("free_without_page_free", "WARN_ON_ONCE(!pgmap->ops || !pgmap->ops->page_free)",
                            folio.pfn, func)
            return
        k.call_page_free(folio, func)


@PATCH.define
def zd_check_fsdax_idle(k, folio) -> None:
    """An idle fsdax page is not a driver-free page: keep the model's free marker clear."""


@PATCH.define
def free_zone_device_put_pgmap(k, folio) -> None:
    k.put_dev_pagemap(folio.pgmap)


@PATCH.define
def __folio_put(k, folio) -> None:
    if k.folio_is_zone_device(folio):
        k.free_zone_device_folio(folio)
        return
    k.free_the_page(folio, folio.order, "__folio_put")


@PATCH.define
def __put_page(k, page) -> None:
    k.__folio_put(page.head)


@PATCH.define
def release_pages(k, pages) -> None:
    """``release_pages`` -> ``folios_put_refs``: no devmap special case."""
    for page in pages:
        folio = page.head
        if k.folio_is_zone_device(folio):
            if k.page_ref_sub_and_test(folio, 1, "folios_put_refs"):
                k.free_zone_device_folio(folio)
            continue
        if k.put_page_testzero(folio, "release_pages"):
            k.__folio_put(folio)


@PATCH.define
def p2pmem_prepare_page(k, page) -> None:
    """v6.15: the page rests at 0; initialise the refcount for the fresh allocation."""
    if page._refcount.peek() != 0:
        k.world.violate("init_of_busy_page", "VM_WARN_ON_ONCE_PAGE(page_ref_count(page), page)", page.pfn,
                        "p2pmem_alloc_mmap")
    k.set_page_count(page, 1, "p2pmem_alloc_mmap")


@PATCH.define
def folio_is_longterm_pinnable(k, folio) -> bool:
    """Coherent: false; fsdax: false ("filesystems can only tolerate transient delays to
    truncate and hole-punch"); other ZONE_DEVICE / normal pages: true in this model."""
    if k.is_device_coherent_page(folio) or k.is_fsdax_page(folio):
        return False
    return True


@PATCH.define
def is_longterm_pinnable_page(k, page) -> bool:
    return k.folio_is_longterm_pinnable(page.head)
