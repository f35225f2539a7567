"""b05a79d4377f "mm/gup: migrate device coherent pages when pinning instead of failing" (v6.0,
Alistair Popple, in Alex Sierra's device-coherent series), with the series' test_hmm changes
(coherent dmirror devices 2 and 3, HMM_DMIRROR_MIGRATE_TO_SYS, the MIGRATE ioctl renamed
MIGRATE_TO_DEV) and hmm-tests additions (``hmm_gup_test``, ``hmm_cow_in_device``, the
``hmm_device_coherent`` variants).

A FOLL_LONGTERM pin of a device-coherent page converts the pin to a reference and migrates the
page to system memory (``migrate_device_coherent_page``), then GUP retries.

Audit: CONFIRMED id <-> title <-> version: full id b05a79d4377f6dcc30683008ffd1c531ea965393 with
this title in the kernel.org post-receive revlist of linux-next pending-fixes, 7 Aug 2022 (v6.0
merge window, next to f25cbb7a95a2); Alistair Popple's follow-up "Commit b05a79d4377f (...)" (Jul
2022).
"""

from ..linux.mm import migrate_device
from ._patch import Patch

PATCH = Patch(
    commit="b05a79d4377f", title="mm/gup: migrate device coherent pages when pinning instead of failing",
    version="v6.0", confidence="CONFIRMED",
    replaces="FOLL_LONGTERM pins of device-coherent pages were refused",
)
PATCH.define(migrate_device.migrate_device_coherent_page)
PATCH.set(dmirror_migrate_to_sys=True, hmm_tests_coherent=True)
