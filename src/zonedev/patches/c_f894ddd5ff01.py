"""f894ddd5ff01 "memremap: add an owner field to struct dev_pagemap" (v5.7, Christoph Hellwig).

[kernel_eras §6.3, M23: CONFIRMED (git describe v5.6-rc3-14)]  An opaque ``owner`` pointer;
``hmm_range_fault`` and ``migrate_vma`` accept only device-private pages whose pgmap owner is
the caller's.  ``memremap_pages`` refuses a MEMORY_DEVICE_PRIVATE pgmap without an owner
(``WARN(1, "Missing owner\\n")``).
"""

from ..linux.include.memremap import MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="f894ddd5ff01", title="memremap: add an owner field to struct dev_pagemap",
    version="v5.7", confidence="CONFIRMED",
    replaces="hmm_range_fault/migrate_vma could not tell one driver's device-private pages from another's",
)


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """The type checks of ``memremap_pages``: a device-private pgmap needs ``page_free``,
    ``migrate_to_ram`` and an ``owner``.  Kernel: mm/memremap.c, as f894ddd5ff01 "memremap: add
    an owner field to struct dev_pagemap" (v5.7) has it."""
    ops = pgmap.ops
    if pgmap.type == MEMORY_DEVICE_PRIVATE:
        if (ops.page_free or ops.folio_free) is None or ops.migrate_to_ram is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")
        if pgmap.owner is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing owner\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs an owner")
