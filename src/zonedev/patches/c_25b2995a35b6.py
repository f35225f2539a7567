"""25b2995a35b6 "mm: remove MEMORY_DEVICE_PUBLIC support" (v5.3, Christoph Hellwig).

[kernel_eras §5, §11, M10: CONFIRMED that PUBLIC is removed in v5.3; id UNCONFIRMED there, CONFIRMED below]
No upstream driver used device-public memory; the type, ``is_device_public_page`` and the
public special case in ``release_pages`` go.

Audit: CONFIRMED id <-> title: Stephen Rothwell's linux-next merge-conflict mails (hmm tree,
June/July 2019) and later patches cite 25b2995a35b6 ("mm: remove MEMORY_DEVICE_PUBLIC support")
(Ralph Campbell, Aug 2020; Aneesh Kumar K.V, powerpc); hmm tree for the v5.3 merge window, so v5.3.
"""

from ..linux.include.memremap import (MEMORY_DEVICE_DEVDAX, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA,
                                      MEMORY_DEVICE_PRIVATE)
from ._patch import Patch

PATCH = Patch(
    commit="25b2995a35b6", title="mm: remove MEMORY_DEVICE_PUBLIC support",
    version="v5.3", confidence="CONFIRMED",
    replaces="MEMORY_DEVICE_PUBLIC pages (HMM CPU-coherent device memory, no upstream user)",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_DEVDAX, MEMORY_DEVICE_PCI_P2PDMA),
    type_names={"private": MEMORY_DEVICE_PRIVATE, "fsdax": MEMORY_DEVICE_FS_DAX,
                "generic": MEMORY_DEVICE_DEVDAX, "p2pdma": MEMORY_DEVICE_PCI_P2PDMA},
    free_refcount={MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_FS_DAX: 1, MEMORY_DEVICE_DEVDAX: 1,
                   MEMORY_DEVICE_PCI_P2PDMA: 1},
)
