"""a4574f63edc6 "mm/memremap_pages: convert to 'struct range'" (v5.10, Dan Williams).

[kernel_eras §6.4, S5: CONFIRMED ids and enum]  ``res`` becomes ``range`` / ``ranges[]`` +
``nr_range``; ``memremap_pages`` loops ``pagemap_range()`` and ``memunmap_pages`` loops
``pageunmap_range()`` (the model always had per-range loops).  The v5.10 enum is PRIVATE=1,
FS_DAX, GENERIC, PCI_P2PDMA: device-dax's DEVDAX became GENERIC (the rename commit is
UNCONFIRMED; the model takes it here).
"""

from ..linux.include.memremap import (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC, MEMORY_DEVICE_PCI_P2PDMA,
                                      MEMORY_DEVICE_PRIVATE)
from ._patch import Patch

PATCH = Patch(
    commit="a4574f63edc6", title="mm/memremap_pages: convert to 'struct range'",
    version="v5.10", confidence="CONFIRMED",
    replaces="one struct resource per pgmap; device-dax's type was MEMORY_DEVICE_DEVDAX",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC, MEMORY_DEVICE_PCI_P2PDMA),
    type_names={"private": MEMORY_DEVICE_PRIVATE, "fsdax": MEMORY_DEVICE_FS_DAX,
                "generic": MEMORY_DEVICE_GENERIC, "p2pdma": MEMORY_DEVICE_PCI_P2PDMA},
    free_refcount={MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_FS_DAX: 1, MEMORY_DEVICE_GENERIC: 1,
                   MEMORY_DEVICE_PCI_P2PDMA: 1},
)
