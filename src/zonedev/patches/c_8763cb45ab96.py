"""8763cb45ab96 "mm/migrate: new memory migration helper for use with device memory" (v4.14,
Jérôme Glisse's HMM series) and the HMM mirror (hmm_vma_fault, later ``hmm_range_fault``).

Installs the device-migration helpers (``migrate_vma_setup``/``migrate_vma_pages``/
``migrate_vma_finalize``, with the collect/unmap/insert steps) and ``hmm_range_fault``.

Model simplification: the v6.1 shapes are used from v4.14 on.  v4.14-v5.3 had a single
``migrate_vma(ops, vma, start, end, src, dst, private)`` with ``alloc_and_copy`` and
``finalize_and_map`` callbacks (split into setup/pages/finalize by a7d1f22bb74f, v5.4), and the
mirror API was ``hmm_vma_fault``/``hmm_mirror`` (``hmm_range_fault`` with ``dev_private_owner``
from v5.7).  The select flags (``MIGRATE_VMA_SELECT_*``, v5.9) and the MMU_NOTIFY_MIGRATE owner
filter (v5.9) are modelled in every era; the dmirror driver that needs them exists from v5.8.

Audit: CONFIRMED id <-> title: Fixes: 8763cb45ab96 ("mm/migrate: new memory migration helper for use
with device memory") in Ralph Campbell's 2019 and David Hildenbrand's 2025 fixes (linux-mm); v4.14
INFERRED from the HMM series (5042db43cc26 is blamed 2017-09-08).
"""

from ..linux.mm import hmm, migrate_device
from ._patch import Patch

PATCH = Patch(
    commit="8763cb45ab96", title="mm/migrate: new memory migration helper for use with device memory",
    version="v4.14", confidence="CONFIRMED",
    replaces="no way to migrate anonymous memory to or from device memory",
)

for _fn in migrate_device.FUNCTIONS + hmm.FUNCTIONS:
    PATCH.define(_fn)
