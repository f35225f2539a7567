"""7b2d55d2c893 "mm/ZONE_DEVICE: special case put_page() for device private pages" (v4.14, HMM).

[kernel_eras §3, M3 diff, S2 (v4.14.72 kernel/memremap.c): CONFIRMED; id UNCONFIRMED]
``put_page()``: if the static key ``device_private_key`` is on and the page is PRIVATE or
PUBLIC, call ``put_zone_device_private_or_public_page()`` and return.  That function
decrements and:

* new count **1**: the page is free: clear PG_active and PG_waiters, ``page->mapping = NULL``,
  ``mem_cgroup_uncharge`` (from "mm/memcontrol: support MEMORY_DEVICE_PRIVATE", folded here),
  then ``pgmap->page_free(page, pgmap->data)``;
* new count **0**: ``__put_page`` (which drops a pgmap ref: Era B).  For HMM pages, which hold
  no per-page pgmap ref in this era, that drop is one too many (percpu_ref underflow at kill).

Audit: id not found in the indexed sources (searched: find_string "7b2d55d2c893", the quoted-title
Fixes: form, pages search by title).  Title CONFIRMED by the HMM postings ([HMM 08/15], v2, [HMM-v25
08/19] ... v4) and the HMM merge shortlog (v4.14).
"""

from ._patch import Patch

PATCH = Patch(
    commit="7b2d55d2c893", title="mm/ZONE_DEVICE: special case put_page() for device private pages",
    version="v4.14", confidence="UNCONFIRMED",
    replaces="put_page() had no hook for a ZONE_DEVICE page becoming free at refcount 1 "
             "(what Jerome asked for in the seed thread of 71389703839e)",
    seed="000_06f966850a821b88.txt",
)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: with the devmap_managed_key on, a device private or public page goes through
    ``put_zone_device_private_or_public_page`` (free at 1); any other page is freed at 0.
    Kernel: include/linux/mm.h, as 7b2d55d2c893 "mm/ZONE_DEVICE: special case put_page() for
    device private pages" (v4.14) has it."""
    page = page.head
    if k.is_zone_device_page(page) and k.devmap_managed_key.get("static_branch_unlikely") and (
            k.is_device_private_page(page) or k.is_device_public_page(page)):
        k.put_zone_device_private_or_public_page(page)
        return
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def put_zone_device_private_or_public_page(k, page) -> None:
    """``put_zone_device_private_or_public_page()``: drop a reference; at 1 the page is idle: clear
    its flags and mapping and call the driver's ``page_free``; at 0 (a bug) ``__put_page``.
    Kernel: kernel/memremap.c, as 7b2d55d2c893 "mm/ZONE_DEVICE: special case put_page() for
    device private pages" (v4.14) has it."""
    func = "put_zone_device_private_or_public_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        k.__ClearPageActive(page, func)
        k.__ClearPageWaiters(page, func)
        k.set_page_field(page, "mapping", None, func)
        k.mem_cgroup_uncharge(page, func)
        k.call_page_free(page, func)
    elif count == 0:
        k.__put_page(page)
