"""b05a79d4377f "mm/gup: migrate device coherent pages when pinning instead of failing" (v6.0,
Alistair Popple, in Alex Sierra's device-coherent series), with the series' test_hmm changes
(coherent dmirror devices 2 and 3, HMM_DMIRROR_MIGRATE_TO_SYS, the MIGRATE ioctl renamed
MIGRATE_TO_DEV) and hmm-tests additions (``hmm_gup_test``, ``hmm_cow_in_device``, the
``hmm_device_coherent`` variants).

A FOLL_LONGTERM pin of a device-coherent page converts the pin to a reference and migrates the
page to system memory (``migrate_device_coherent_page``), then GUP retries.
"""

from ..linux.mm import migrate_device
from ._patch import Patch

PATCH = Patch(
    commit="b05a79d4377f", title="mm/gup: migrate device coherent pages when pinning instead of failing",
    version="v6.0", confidence="INFERRED",
    replaces="FOLL_LONGTERM pins of device-coherent pages were refused",
)
PATCH.define(migrate_device.migrate_device_coherent_page)
PATCH.set(dmirror_migrate_to_sys=True, hmm_tests_coherent=True)
