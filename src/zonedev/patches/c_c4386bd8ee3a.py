"""c4386bd8ee3a "mm/memremap: add ZONE_DEVICE support for compound pages" (v5.17, Joao Martins).

[kernel_eras §6.5, M29: CONFIRMED message; id CONFIRMED below]  ``pgmap->vmemmap_shift``: the pages
of a range are set up as compound pages of that order; only the head's refcount is used and
tails sit at 0.  The per-page pgmap references count compound pages (``pfn_len >>
vmemmap_shift``), and ``for_each_device_pfn`` steps from head to head.

Audit: CONFIRMED id <-> title <-> version: full id c4386bd8ee3a921c3c799b7197dc898ade76a453 with
this title in kernel.org post-receive revlists; Fixes: c4386bd8ee3a (...) in Muchun Song's 2026 fix;
kbuild blame dates it 2022-01-14 (v5.17 merge window).
"""

from ._patch import Patch

PATCH = Patch(
    commit="c4386bd8ee3a", title="mm/memremap: add ZONE_DEVICE support for compound pages",
    version="v5.17", confidence="CONFIRMED",
    replaces="every ZONE_DEVICE page was an order-0 page with its own refcount",
)
PATCH.set(vmemmap_shift_supported=True)
