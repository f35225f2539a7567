"""b7a523109fb5 "mm: don't clear ->mapping in hmm_devmem_free" (v5.3, Christoph Hellwig).

[kernel_eras §5, M6, M5 history note (seed 001): CONFIRMED]  No upstream consumer needed the
clearing, so it went: a freed device-private page keeps a stale anon ``->mapping`` (F4), which
7ab0ad0e74f8 fixes in the same release.  Leave 7ab0ad0e74f8 out of v5.3 to get F4.
"""

from ._patch import Patch

PATCH = Patch(
    commit="b7a523109fb5", title="mm: don't clear ->mapping in hmm_devmem_free",
    version="v5.3", confidence="CONFIRMED", seed="001_19201cc6408e5961.txt",
    replaces="hmm_devmem_free cleared page->mapping of a freed HMM page",
)


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """``__put_devmap_managed_page()``: at 1 clear the flags and call ``page_free``, leaving
    ``page->mapping`` alone (hmm_devmem_free no longer clears it); at 0 ``__put_page``.  Kernel:
    mm/memremap.c, as b7a523109fb5 "mm: don't clear ->mapping in hmm_devmem_free" (v5.3) has it."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        k.__ClearPageActive(page, func)
        k.__ClearPageWaiters(page, func)
        k.mem_cgroup_uncharge(page, func)
        k.call_page_free(page, func)
    elif count == 0:
        k.__put_page(page)
