"""e778406b40db "mm/migrate_device.c: add migrate_device_range()" (v6.1, Alistair Popple), with
the same series' test_hmm eviction (``dmirror_device_evict_chunk``, HMM_DMIRROR_RELEASE) and
the ``migrate_release`` selftest (ad4c365221b0).

``migrate_device_range(src, start_pfn, npages)``: take a reference on and lock every device
page of the range that is in use (``get_page_unless_zero``: free pages are at 0 from v6.1),
then unmap all its mappings; ``migrate_device_pages``/``migrate_device_finalize`` complete
the migration.  Drivers must evict this way before ``memunmap_pages``, which now waits for
every allocated page (0dc45ca1ce18).
"""

from ..linux.mm import migrate_device
from ._patch import Patch

PATCH = Patch(
    commit="e778406b40db", title="mm/migrate_device.c: add migrate_device_range()",
    version="v6.1", confidence="CONFIRMED",
    replaces="drivers had no way to migrate device pages whose virtual mappings they do not know",
)
for _fn in migrate_device.V6_1_FUNCTIONS:
    PATCH.define(_fn)
