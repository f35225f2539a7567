"""2fa147bdbf67 "mm, dev_pagemap: Do not clear ->mapping on final put" (v4.19).

Part of Dan Williams' "mm: Teach memory_failure() about ZONE_DEVICE pages" [kernel_eras §4.2, M5:
CONFIRMED].  fsdax pages must keep ``->mapping`` (memory_failure needs it), so the generic
free path stops clearing it; HMM's own ``hmm_devmem_free()`` (the ``page_free`` HMM installs)
clears it for HMM pages instead -- "Move some, but not all HMM specifics to hmm_devmem_free()"
(Dan, seed 001).  The model clears ``mapping`` for PRIVATE/PUBLIC pages just before their
``page_free``, charged to ``hmm_devmem_free``.
"""

from ._patch import Patch

PATCH = Patch(
    commit="2fa147bdbf67", title="mm, dev_pagemap: Do not clear ->mapping on final put",
    version="v4.19", confidence="CONFIRMED", seed="001_19201cc6408e5961.txt",
    replaces="__put_devmap_managed_page cleared page->mapping for every managed type, fsdax included",
)


@PATCH.define
def __put_devmap_managed_page(k, page) -> None:
    """``__put_devmap_managed_page()``: at 1 call ``page_free``, clearing ``page->mapping`` only for
    device private and public pages (fsdax keeps its file association); at 0 ``__put_page``.
    Kernel: kernel/memremap.c, as 2fa147bdbf67 "mm, dev_pagemap: Do not clear ->mapping on final put"
    (v4.19) has it."""
    func = "__put_devmap_managed_page"
    count = k.page_ref_dec_return(page, func)
    if count == 1:
        k.__ClearPageActive(page, func)
        k.__ClearPageWaiters(page, func)
        k.mem_cgroup_uncharge(page, func)
        if k.is_device_private_page(page) or k.is_device_public_page(page):
            k.set_page_field(page, "mapping", None, "hmm_devmem_free")
        k.call_page_free(page, func)
    elif count == 0:
        k.__put_page(page)
