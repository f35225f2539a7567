"""f25cbb7a95a2 "mm: add zone device coherent type memory support" (v6.0, Alex Sierra).

[kernel_eras §7 v6.0 additions, M17: CONFIRMED id from a Fixes: tag]  ``MEMORY_DEVICE_COHERENT``
(enum value 2): CPU-addressable device memory that can be migrated and must never be long-term
pinned.  It is freed like device-private memory (``free_zone_device_page`` -> ``page_free`` ->
reset to 1 in this era) and needs ``page_free`` and ``owner``.  Its pages are mapped by normal
PTEs, so GUP can pin them (non-long-term); ``is_longterm_pinnable_page`` is false for them.
"""

from ..linux.include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
                                      MEMORY_DEVICE_PCI_P2PDMA, MEMORY_DEVICE_PRIVATE)
from ._patch import Patch

PATCH = Patch(
    commit="f25cbb7a95a2", title="mm: add zone device coherent type memory support",
    version="v6.0", confidence="CONFIRMED", seed="003_ede6d8706e8d37f1.txt",
    replaces="CPU-coherent device memory (AMD) had no ZONE_DEVICE type since PUBLIC was removed",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
                  MEMORY_DEVICE_PCI_P2PDMA),
    type_names={"private": MEMORY_DEVICE_PRIVATE, "coherent": MEMORY_DEVICE_COHERENT,
                "fsdax": MEMORY_DEVICE_FS_DAX, "generic": MEMORY_DEVICE_GENERIC,
                "p2pdma": MEMORY_DEVICE_PCI_P2PDMA},
    free_refcount={MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_COHERENT: 1, MEMORY_DEVICE_FS_DAX: 1,
                   MEMORY_DEVICE_GENERIC: 1, MEMORY_DEVICE_PCI_P2PDMA: 1},
)


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """The type checks of ``memremap_pages``: private pgmaps need ``page_free``, ``migrate_to_ram``
    and an owner; the new coherent ones ``page_free`` and an owner.  Kernel: mm/memremap.c, as
    f25cbb7a95a2 "mm: add zone device coherent type memory support" (v6.0) has it."""
    ops = pgmap.ops
    t = pgmap.type
    free = ops.page_free or ops.folio_free
    if t == MEMORY_DEVICE_PRIVATE:
        if free is None or ops.migrate_to_ram is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")
        if pgmap.owner is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing owner\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs an owner")
    elif t == MEMORY_DEVICE_COHERENT:
        if free is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing page_free method\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_COHERENT needs page_free")
        if pgmap.owner is None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing owner\")", None, "memremap_pages")
            raise ValueError("memremap_pages: MEMORY_DEVICE_COHERENT needs an owner")


@PATCH.define
def is_longterm_pinnable_page(k, page) -> bool:
    """Coherent pages must not be long-term pinned (fsdax is refused earlier, by
    ``check_vma_flags``, in this era).

    Kernel: include/linux/mm.h, as f25cbb7a95a2 (v6.0) has it."""
    return not k.is_device_coherent_page(page)
