"""``struct dev_pagemap`` and ``enum memory_type`` (include/linux/memremap.h).

Which types and ops a kernel has is a fact of its patch series (``k.fact("memory_types")``);
this module only names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

MEMORY_DEVICE_HOST = "MEMORY_DEVICE_HOST"          # v4.5-v4.17 (implicit before v4.14)
MEMORY_DEVICE_PRIVATE = "MEMORY_DEVICE_PRIVATE"    # v4.14+
MEMORY_DEVICE_PUBLIC = "MEMORY_DEVICE_PUBLIC"      # v4.14-v5.2
MEMORY_DEVICE_FS_DAX = "MEMORY_DEVICE_FS_DAX"      # v4.18+
MEMORY_DEVICE_PCI_P2PDMA = "MEMORY_DEVICE_PCI_P2PDMA"  # v4.20+
MEMORY_DEVICE_DEVDAX = "MEMORY_DEVICE_DEVDAX"      # v5.3-v5.9, then renamed GENERIC
MEMORY_DEVICE_GENERIC = "MEMORY_DEVICE_GENERIC"    # v5.10+
MEMORY_DEVICE_COHERENT = "MEMORY_DEVICE_COHERENT"  # v6.0+


@dataclass
class dev_pagemap_ops:
    """Driver callbacks.  Before v5.3 ``page_free``/``page_fault`` were pgmap fields and ``kill``/
    ``cleanup`` took the percpu_ref; the model keeps them here in every era and passes what that
    era's kernel passed."""

    page_free: Callable[..., Any] | None = None      # newest: folio_free
    folio_free: Callable[..., Any] | None = None
    kill: Callable[..., Any] | None = None           # v5.0-v5.16
    cleanup: Callable[..., Any] | None = None        # v5.2-v5.16
    migrate_to_ram: Callable[..., Any] | None = None  # v5.3+ (page_fault before)
    memory_failure: Callable[..., Any] | None = None  # v6.0+
    folio_split: Callable[..., Any] | None = None    # newest


class dev_pagemap:
    """``struct dev_pagemap``: what a driver fills in before ``memremap_pages()``.

    ``ref`` and ``done`` are made by ``memremap_pages`` (the internal/embedded ref) unless the
    era's driver brings its own (before v5.17).  ``pages`` are the ``struct page``s of the
    ranges once mapped, in pfn order.
    """

    def __init__(self, type: str, nr_pages: int = 1, start_pfn: int = 0x100000, *,
                 ops: dev_pagemap_ops | None = None, owner: Any = None, vmemmap_shift: int = 0,
                 name: str | None = None, ranges: list[tuple[int, int]] | None = None) -> None:
        self.type = type
        self.ranges = ranges or [(start_pfn, nr_pages)]   # (first pfn, number of pages)
        self.ops = ops or dev_pagemap_ops()
        self.owner = owner
        self.vmemmap_shift = vmemmap_shift
        self.name = name or f"pgmap@{self.ranges[0][0]:#x}"
        self.ref = None      # PercpuRef
        self.done = None     # Completion
        self.pages: list = []
        self.data: Any = None   # driver private data (pgmap->data before v5.3)

    @property
    def nr_range(self) -> int:
        return len(self.ranges)

    def _zd_key(self) -> tuple:
        return ("pgmap", self.name)

    def __repr__(self) -> str:
        ref = self.ref._zd_state() if self.ref is not None else None
        return f"<dev_pagemap {self.name} {self.type} pages={sum(n for _, n in self.ranges)} ref={ref}>"
