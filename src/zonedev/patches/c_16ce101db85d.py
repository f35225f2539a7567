"""16ce101db85d "mm/memory.c: fix race when faulting a device private page" (v6.1, Alistair
Popple; CVE-2022-3523; kernel_eras §8, failure F9).

Before: ``do_swap_page`` called ``page->pgmap->ops->migrate_to_ram(vmf)`` holding no page
reference and without re-checking the PTE, so a concurrent migration of the same page could
free it (and with it ``zone_device_data``, or the whole pgmap) while the callback used it.

After: under the PTL, re-check that the PTE still holds the entry (``pte_same``), take a
page reference, drop the PTL, call ``migrate_to_ram``, drop the reference.  ``struct
migrate_vma`` gains ``fault_page``: the faulting thread's reference is expected by
``migrate_vma_check_page`` and ``folio_migrate_mapping`` (extra count 1), and
``migrate_vma_setup`` rejects a fault page that is not device-private.
"""

import errno

from ..linux.mm.mmap import err
from ._patch import Patch

PATCH = Patch(
    commit="16ce101db85d", title="mm/memory.c: fix race when faulting a device private page",
    version="v6.1", confidence="CONFIRMED", fixes=None,
    replaces="do_swap_page() called migrate_to_ram() without a page reference (use-after-free race)",
)


@PATCH.define
def do_swap_page(k, vmf) -> int:
    """``do_swap_page()`` (mm/memory.c v6.1): device-private entries are faulted holding a page
    reference taken under the PTL after ``pte_same``."""
    ret = k.do_swap_page_nondevice(vmf)
    if ret is not None:
        return ret
    vmf.page = vmf.orig_pte.page
    vmf.ptl.lock("pte_offset_map_lock")
    if not vmf.orig_pte.same(vmf.ptev.get("pte_same")):
        vmf.ptl.unlock("spin_unlock")
        return 0
    k.get_page(vmf.page)          # "Get a page reference while we know the page can't be freed."
    vmf.ptl.unlock("pte_unmap_unlock")
    k.zd_check_pgmap_held(vmf.page.pgmap, "migrate_to_ram", vmf.page.pfn)
    ret = vmf.page.pgmap.ops.migrate_to_ram(vmf)
    k.put_page(vmf.page)
    return ret


@PATCH.define
def migrate_vma_fault_extra(k, migrate, page) -> int:
    """The fault path's reference (do_swap_page) on ``fault_page``.
    Kernel: mm/migrate_device.c, as 16ce101db85d (v6.1) has it."""
    return 1


@PATCH.define
def migrate_vma_check_fault_page(k, args) -> None:
    """``migrate_vma_setup``: -EINVAL when the given ``fault_page`` is not device private.  Kernel:
    mm/migrate_device.c, as 16ce101db85d "mm/memory.c: fix race when faulting a device private
    page" (v6.1) has it."""
    if args.fault_page is not None and not k.is_device_private_page(args.fault_page):
        raise err(errno.EINVAL, "migrate_vma_setup: fault_page is not device private")
