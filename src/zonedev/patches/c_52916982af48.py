"""52916982af48 "PCI/P2PDMA: Support peer-to-peer memory" (v4.20, Logan Gunthorpe).

[kernel_eras §4.3 (id/version UNCONFIRMED there, CONFIRMED below), M9 diff for the v5.1/5.2 p2pdma code: CONFIRMED]
Adds ``MEMORY_DEVICE_PCI_P2PDMA``.  P2PDMA pages are not devmap-managed: they idle at 1 and get
the per-page pgmap reference of ``devm_memremap_pages`` like host pages (INFERRED).  The pool
(``gen_pool`` with the pgmap ref as owner) takes a pgmap reference per allocation:
``pci_alloc_p2pmem`` -> ``percpu_ref_tryget_live``; ``pci_free_p2pmem`` -> ``percpu_ref_put``.
Model: ``linux/drivers/pci/p2pdma.py``.

Audit: CONFIRMED id <-> title <-> version: Fixes: 52916982af48 ("PCI/P2PDMA: Support peer-to-peer
memory") in Logan Gunthorpe's and Dan Williams' fixes (linux-pci, 2019); Bart Van Assche quotes it
"; v4.20"; AMD kcl configure scripts give "v4.19-rc4-1-g52916982af48".
"""

from ..linux.drivers.pci import p2pdma
from ..linux.include.memremap import (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_HOST, MEMORY_DEVICE_PCI_P2PDMA,
                                      MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC)
from ._patch import Patch

PATCH = Patch(
    commit="52916982af48", title="PCI/P2PDMA: Support peer-to-peer memory",
    version="v4.20", confidence="CONFIRMED",
    replaces="no ZONE_DEVICE type for PCI BAR memory used for peer-to-peer DMA",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_FS_DAX,
                  MEMORY_DEVICE_PCI_P2PDMA),
    type_names={"generic": MEMORY_DEVICE_HOST, "private": MEMORY_DEVICE_PRIVATE,
                "public": MEMORY_DEVICE_PUBLIC, "fsdax": MEMORY_DEVICE_FS_DAX,
                "p2pdma": MEMORY_DEVICE_PCI_P2PDMA},
    free_refcount={MEMORY_DEVICE_HOST: 1, MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_PUBLIC: 1,
                   MEMORY_DEVICE_FS_DAX: 1, MEMORY_DEVICE_PCI_P2PDMA: 1},
)
PATCH.define(p2pdma.pci_alloc_p2pmem)
PATCH.define(p2pdma.pci_free_p2pmem)
