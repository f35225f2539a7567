"""71389703839e "mm, zone_device: Replace {get, put}_zone_device_page() with a single reference
to fix pmem crash" (v4.12, via the x86/mm pull; Suggested-by Kirill Shutemov).

Seed thread: 000_06f966850a821b88.txt (Jerome Glisse: HMM still needs its hook in put_page()).
[kernel_eras §2, M1: CONFIRMED; mm/swap.c and kernel/memremap.c of v4.12]

* ``get_page``/``put_page`` no longer touch the pgmap ref (``{get,put}_zone_device_page`` go).
* ``devm_memremap_pages()`` takes one pgmap reference per pfn as it initialises the pages.
* A ZONE_DEVICE page whose count reaches 0 goes to ``__put_page()``, which drops that page's
  pgmap reference (``put_dev_pagemap``) and returns: the page never reaches the allocator.
* ``devm_memremap_pages_release()`` puts every pfn once (idle pages 1 -> 0 -> pgmap ref
  dropped), warns if the ref is live, then ``arch_remove_memory``.  The driver must kill before
  and wait *after* release, so the memmap can go while a page is referenced (F2, fixed in v5.2
  by 50f44ee7248a).
"""

from ._patch import Patch

PATCH = Patch(
    commit="71389703839e",
    title="mm, zone_device: Replace {get, put}_zone_device_page() with a single reference to fix pmem crash",
    version="v4.12", confidence="CONFIRMED", seed="000_06f966850a821b88.txt",
    replaces="get_page/put_page took and dropped a pgmap reference per page reference (a shadow "
             "counter that GUP-fast did not maintain: F1)",
)
PATCH.remove("get_zone_device_page", "put_zone_device_page")


@PATCH.define
def get_page(k, page) -> None:
    """``get_page()``: one more page reference; no pgmap reference any more (the pages hold one each
    from devm_memremap_pages); a count that was not positive is a VM_BUG_ON.  Kernel:
    include/linux/mm.h, as 71389703839e "mm, zone_device: Replace {get, put}_zone_device_page()
    with a single reference to fix pmem crash" (v4.12) has it."""
    page = page.head
    if k.page_ref_inc_return(page, "get_page") <= 1:
        k.world.violate("get_on_free_page", "VM_BUG_ON_PAGE(page_ref_count(page) <= 0, page)", page.pfn, "get_page")


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: drop a reference; ``__put_page`` at 0.  Kernel: include/linux/mm.h, as
    71389703839e "mm, zone_device: Replace {get, put}_zone_device_page() with a single reference
    to fix pmem crash" (v4.12) has it."""
    page = page.head
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def __put_page(k, page) -> None:
    """mm/swap.c v4.12: ``if (is_zone_device_page(page)) { put_dev_pagemap(page->pgmap); return; }``"""
    if k.is_zone_device_page(page):
        k.put_dev_pagemap(page.pgmap)
        return
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """``devm_memremap_pages()`` as 71389703839e "mm, zone_device: Replace {get,
    put}_zone_device_page() with a single reference to fix pmem crash" (v4.12) left it
    (mm/memremap.c)."""
    if pgmap.ref is None:
        raise ValueError("devm_memremap_pages: this era needs the driver's percpu_ref (pgmap.ref)")
    k.pgmap_register(pgmap, "devm_memremap_pages")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "devm_memremap_pages")
        for _ in range(nr):
            pgmap.ref.get("devm_memremap_pages")     # one pgmap reference per page
    return pgmap


@PATCH.define
def devm_memremap_pages_put_pfns(k, pgmap, func: str) -> None:
    """``for_each_device_pfn(pfn, pgmap) put_page(pfn_to_page(pfn))``: drop every page's base
    reference (the teardown put).

    Kernel: kernel/memremap.c, as 71389703839e (v4.12) has it."""
    k.world.event(func, None, pgmap.name + ".teardown", None, "put_page each pfn")
    for page in list(k.pgmap_heads_of(pgmap)):
        k.zd_mark_base_dropped(page)
        k.put_page(page)


@PATCH.define
def pgmap_heads_of(k, pgmap):
    """Model helper, no kernel function: the head page of each device pfn of ``pgmap``, what
    ``for_each_device_pfn`` visits.  Kernel: kernel/memremap.c, as 71389703839e "mm, zone_device:
    Replace {get, put}_zone_device_page() with a single reference to fix pmem crash" (v4.12) has
    it."""
    from ..linux.mm.memremap import pgmap_heads
    return pgmap_heads(k, pgmap)


@PATCH.define
def devm_memremap_pages_release(k, pgmap) -> None:
    """kernel/memremap.c v4.12: put each pfn, warn if live, ``arch_remove_memory``."""
    k.devm_memremap_pages_put_pfns(pgmap, "devm_memremap_pages_release")
    k.pgmap_check_killed(pgmap, "devm_memremap_pages_release")
    k.remove_pages(pgmap, "arch_remove_memory")
    k.pgmap_unregister(pgmap, "devm_memremap_pages_release")
