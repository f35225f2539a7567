"""71389703839e "mm, zone_device: Replace {get, put}_zone_device_page() with a single reference
to fix pmem crash" (Dan Williams, suggested by Kirill Shutemov; v2 posted April 2017, seed
``000_06f966850a821b88.txt``), applied early: on v4.5.

What it does (as merged in v4.12; kernel/memremap.c, mm/swap.c, include/linux/mm.h):

* ``get_page``/``put_page`` stop taking and dropping a pgmap reference per page reference
  (``get_zone_device_page``/``put_zone_device_page`` go);
* ``devm_memremap_pages`` takes one pgmap reference per page as it initialises the memmap;
* a ZONE_DEVICE page whose count reaches 0 drops that reference in ``__put_page`` and never
  reaches the page allocator;
* ``devm_memremap_pages_release`` puts every pfn once (idle pages 1 -> 0), then warns if the
  ref is live and removes the memmap -- so "any waits for the percpu_ref to drop to zero [must]
  occur *after* devm_memremap_page_release()".

v4.5 plus this patch is the series' v4.12 (nothing else in the series lands in between), so
the matrix row of the patched v4.5 equals the unpatched v4.12:

* ``pgmap_ref_per_page`` on v4.5: ``[hang, percpu_ref_underflow, percpu_ref_use_after_exit,
  use_after_free]`` -> ``use_after_free``.  GUP-fast's speculative reference no longer has a
  pgmap reference to get wrong (F1 gone: the pmem crash it fixed); the device-dax driver still
  waits after the release removed the memmap (F2 stays, until 50f44ee7248a in v5.2).
* ``page_free_at_one`` on v4.5: unchanged, ``page_free_never_called``; ``page_free_vs_memunmap``
  on v4.5: unchanged, ``[page_free_never_called, use_after_free]`` -- still no free callback
  (Jerome: "i definitly need to hook my-self in the general put_page() function").
"""

import zonedev

PATCH = zonedev.Patch(
    commit="71389703839e-on-v4.5",
    title="mm, zone_device: Replace {get, put}_zone_device_page() with a single reference to fix pmem crash",
    version="v4.5", seed="000_06f966850a821b88.txt", confidence="CONFIRMED",
    replaces="every page reference took a pgmap reference (get_zone_device_page); GUP-fast's "
             "speculative references did not, and put_page dropped one anyway (F1)",
)
PATCH.remove("get_zone_device_page", "put_zone_device_page")


@PATCH.define
def get_page(k, page) -> None:
    """include/linux/mm.h v4.12: the page reference only."""
    page = page.head
    if k.page_ref_inc_return(page, "get_page") <= 1:
        k.world.violate("get_on_free_page", "VM_BUG_ON_PAGE(page_ref_count(page) <= 0, page)", page.pfn, "get_page")


@PATCH.define
def put_page(k, page) -> None:
    page = page.head
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def __put_page(k, page) -> None:
    """mm/swap.c v4.12: a ZONE_DEVICE page at 0 drops its pgmap reference and stays with the device."""
    if k.is_zone_device_page(page):
        k.put_dev_pagemap(page.pgmap)
        return
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """kernel/memremap.c v4.12: one pgmap reference per page, taken as the memmap is made."""
    k.pgmap_register(pgmap, "devm_memremap_pages")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "devm_memremap_pages")
        for _ in range(nr):
            pgmap.ref.get("devm_memremap_pages")
    return pgmap


@PATCH.define
def devm_memremap_pages_release(k, pgmap) -> None:
    """kernel/memremap.c v4.12: put every pfn, warn if still live, ``arch_remove_memory``."""
    k.world.event("devm_memremap_pages_release", None, pgmap.name + ".teardown", None, "put_page each pfn")
    for page in pgmap.pages:
        k.zd_mark_base_dropped(page)
        k.put_page(page)
    k.pgmap_check_killed(pgmap, "devm_memremap_pages_release")
    k.remove_pages(pgmap, "arch_remove_memory")
    k.pgmap_unregister(pgmap, "devm_memremap_pages_release")
