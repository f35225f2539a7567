"""df6ad69838fc "mm/device-public-memory: device memory cache coherent with CPU" (v4.14, HMM).

Adds ``MEMORY_DEVICE_PUBLIC`` (removed again in v5.3 by 25b2995a35b6) and routes public pages
in ``release_pages()`` to the private/public put ("Device public page can not be huge page")
[kernel_eras §3, M26 diff context: CONFIRMED; commit id CONFIRMED below].  An fsdax page (v4.18+) released here
makes its 2->1 transition without the wake-up: F5, fixed by c5d6c45e90c4 (v5.3).  Public pages are
CPU-addressable, free at refcount 1 like private ones, and (in this model) are added with
``hmm_devmem_add`` like private ones.

Audit: CONFIRMED id <-> title: Fixes: df6ad69838fc ("mm/device-public-memory: device memory cache
coherent with CPU") in Reza Arbab's, Christoph Hellwig's and Miaohe Lin's fixes; v4.14 INFERRED (HMM
series).
"""

from ..linux.include.memremap import MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC
from ._patch import Patch

PATCH = Patch(
    commit="df6ad69838fc", title="mm/device-public-memory: device memory cache coherent with CPU",
    version="v4.14", confidence="CONFIRMED",
    replaces="device memory the CPU can address had no ZONE_DEVICE type",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC),
    type_names={"generic": MEMORY_DEVICE_HOST, "private": MEMORY_DEVICE_PRIVATE, "public": MEMORY_DEVICE_PUBLIC},
    free_refcount={MEMORY_DEVICE_HOST: 1, MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_PUBLIC: 1},
)


@PATCH.define
def release_pages(k, pages) -> None:
    """mm/swap.c: public pages go through the devmap put; the rest through put_page_testzero.
    Kernel: mm/swap.c, as df6ad69838fc (v4.14) has it."""
    for page in pages:
        page = page.head
        if k.is_device_public_page(page):
            k.release_pages_devmap_put(page)
            continue
        new = k.page_ref_dec_return(page, "release_pages")
        if new == 0:
            k.__put_page(page)
        elif new == 1 and k.is_fsdax_page(page):
            # F5: an fsdax page made idle in a batch release sends no wake-up
            k.fsdax_idle_without_wakeup(page, "release_pages")


@PATCH.define
def release_pages_devmap_put(k, page) -> None:
    """The ``release_pages`` branch for a device public page: the same put as ``put_page``'s.
    Kernel: mm/swap.c, as df6ad69838fc "mm/device-public-memory: device memory cache coherent
    with CPU" (v4.14) has it."""
    k.put_zone_device_private_or_public_page(page)
