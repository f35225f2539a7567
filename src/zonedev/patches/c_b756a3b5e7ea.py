"""b756a3b5e7ea "mm: device exclusive memory access" (v5.14, Alistair Popple).

``make_device_exclusive_range()``: replace present PTEs of anonymous pages with
device-exclusive swap entries (keeping the rmap and the reference); a CPU access restores
them through ``remove_device_exclusive_entry`` (MMU_NOTIFY_EXCLUSIVE invalidation); fork
restores them before copying.  dmirror gains HMM_DMIRROR_EXCLUSIVE / CHECK_EXCLUSIVE.

The model uses the v6.15 four-argument ``make_device_exclusive(mm, addr, owner, &folio)``
for this whole era (same effect per page).  Before this patch the kernel has no
``make_device_exclusive`` and the dmirror EXCLUSIVE ioctls are unknown commands (-EINVAL).

Audit: CONFIRMED id <-> title: Fixes: b756a3b5e7ea ("mm: device exclusive memory access") in
Alistair Popple's 2023 and David Hildenbrand's 2025 fixes; kbuild blame dates it 2021-06-30 (v5.14
merge window).
"""

from ..linux.mm import rmap
from ._patch import Patch

PATCH = Patch(
    commit="b756a3b5e7ea", title="mm: device exclusive memory access",
    version="v5.14", confidence="CONFIRMED",
    replaces="no device-exclusive entries",
)
PATCH.define(rmap.make_device_exclusive)
