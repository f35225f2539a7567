"""5cbf9942c963 "mm: generalize the pgmap based page_free infrastructure" (v5.18, Christoph
Hellwig; same series as 27674ef6c73f, after it).

[kernel_eras §7, M13: CONFIRMED id and content]  ``free_zone_device_page`` no longer insists on
device-private pages: any pgmap whose ops have a ``page_free`` is freed through it (the WARN is
now "no ops or no page_free").  This is what later lets MEMORY_DEVICE_COHERENT (v6.0) share the
device-private free path.
"""

from ._patch import Patch

PATCH = Patch(
    commit="5cbf9942c963", title="mm: generalize the pgmap based page_free infrastructure",
    version="v5.18", confidence="CONFIRMED",
    replaces="free_zone_device_page WARNed for every page that was not device-private",
)


@PATCH.define
def free_zone_device_page(k, page) -> None:
    """``free_zone_device_page()``: WARN and stop if the pgmap has no ``page_free``; else clear the
    page and call it, then set the count back to 1 for the next allocation.  Kernel:
    mm/memremap.c, as 5cbf9942c963 "mm: generalize the pgmap based page_free infrastructure"
    (v5.18) has it."""
    func = "free_zone_device_page"
    pgmap = page.pgmap
    if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
        k.world.violate("free_without_page_free",
                        "WARN_ON_ONCE(!page->pgmap->ops || !page->pgmap->ops->page_free)", page.pfn, func)
        return
    k.__ClearPageWaiters(page, func)
    k.mem_cgroup_uncharge(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)
    # Reset the page count to 1 to prepare for handing out the page again.
    k.set_page_count(page, 1, func)
