"""b7b3c01b1915 "mm/memremap_pages: support multiple ranges per invocation" (v5.10, Dan
Williams).

[kernel_eras §6.4, M16 Fixes: tag: CONFIRMED id]  ``struct dev_pagemap`` ends in ``ranges[]``
with ``nr_range``; ``memremap_pages`` runs ``pagemap_range()`` per range and ``memunmap_pages``
``pageunmap_range()`` per range.  The restructured teardown put ``percpu_ref_exit`` before the
xarray removal of the ranges: the window 1e57ffb6e3fd (v6.0, "Fixes: b7b3c01b1915") closes
(F11; in the model the exit-before-unmap order is that of v5.17's memunmap_pages).
"""

from ._patch import Patch

PATCH = Patch(
    commit="b7b3c01b1915", title="mm/memremap_pages: support multiple ranges per invocation",
    version="v5.10", confidence="CONFIRMED",
    replaces="one physical range per dev_pagemap",
)
PATCH.set(multiple_ranges=True)
