"""b2ef9f5a5cb3 "mm/hmm/test: add selftest driver for HMM" (v5.8, Ralph Campbell): ``lib/test_hmm.c``
(the ``dmirror`` driver) and ``tools/testing/selftests/vm/hmm-tests.c``.

The model's driver is the D1 (about v6.15) driver of ``kernel_hmm_selftests.md`` with the era
switches documented in ``linux/lib/test_hmm.py``: the allocation protocol follows the core's
``zd_alloc`` fact; MIGRATE_TO_SYS and the coherent devices need v6.0 (fact
``dmirror_migrate_to_sys``, patch b05a79d4377f); EXCLUSIVE needs ``make_device_exclusive``
(b756a3b5e7ea, v5.14); RELEASE needs ``migrate_device_range`` (e778406b40db, v6.1).

Audit: CONFIRMED id <-> title: Fixes: b2ef9f5a5cb3 ("mm/hmm/test: add selftest driver for HMM") in
Dan Carpenter's 2020, Duoming Zhou's 2024 and Alistair Popple's 2026 fixes; Dan: "merged in May"
(2020), so the v5.8 merge window.
"""

from ..linux.lib import test_hmm
from ._patch import Patch

PATCH = Patch(
    commit="b2ef9f5a5cb3", title="mm/hmm/test: add selftest driver for HMM",
    version="v5.8", confidence="CONFIRMED",
    replaces="no test driver: the HMM selftests cannot run",
)

for _fn in test_hmm.FUNCTIONS:
    PATCH.define(_fn)
PATCH.set(dmirror=True)
