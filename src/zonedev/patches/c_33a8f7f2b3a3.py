"""33a8f7f2b3a3 "pagemap,pmem: introduce ->memory_failure()" (v6.0, Shiyang Ruan).

[kernel_eras §11, M24: CONFIRMED id]  ``dev_pagemap_ops.memory_failure(pgmap, pfn, nr_pages,
mf_flags)``: pmem forwards a poisoned range to the filesystem (``dax_holder_notify_failure``).
``memory_failure`` of a ZONE_DEVICE pfn tries it first (the later fix F14 checks ``ops`` itself
before ``ops->memory_failure``; modelled as fixed).
"""

from ._patch import Patch

PATCH = Patch(
    commit="33a8f7f2b3a3", title="pagemap,pmem: introduce ->memory_failure()",
    version="v6.0", confidence="CONFIRMED",
    replaces="memory_failure on fsdax pages walked page->mapping itself (no pgmap callback)",
)
PATCH.set(pgmap_ops=("page_free", "migrate_to_ram", "memory_failure"))


@PATCH.define
def memory_failure_dev_pagemap(k, pfn: int, flags: int = 0) -> int:
    """``memory_failure_dev_pagemap``: hold the pgmap, call ``ops->memory_failure`` if any.
    Kernel: mm/memory-failure.c, as 33a8f7f2b3a3 (v6.0) has it."""
    pgmap = k.get_dev_pagemap(pfn)
    if pgmap is None:
        return -6   # -ENXIO
    rc = -95        # -EOPNOTSUPP
    if pgmap.ops is not None and pgmap.ops.memory_failure is not None:
        k.world.event("memory_failure_dev_pagemap", pfn, "callback", None, "memory_failure")
        rc = pgmap.ops.memory_failure(pgmap, pfn, 1, flags) or 0
    k.put_dev_pagemap(pgmap)
    return rc
