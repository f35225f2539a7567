"""744dd97752ef "Minor hmm_test fixes and cleanups" 1/3 (Alistair Popple, 2026; newest only):
``dmirror_fops_release`` evicts every chunk of the device before freeing the mirror
(kernel_hmm_selftests.md §1.9, L4).

Before it, closing the fd left device-private pages whose backing page's ``zone_device_data``
pointed at the freed mirror; a later fault (a coredump) dereferenced it.
"""

from ._patch import Patch

PATCH = Patch(
    commit="744dd97752ef", title="lib/test_hmm: evict device pages on file release",
    version="newest", confidence="CONFIRMED",
    replaces="fd close freed the mirror while its device pages stayed mapped",
)
PATCH.set(dmirror_evict_on_close=True)
