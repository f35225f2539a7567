"""1afaeb8293c9 "mm/migrate: Trylock device page in do_swap_page" (Matthew Brost, via drm-xe,
v6.15; kernel_2025_2026.md §1 C1 -- version INFERRED from "Cc: stable # v6.15+" on its fix
b570f37a2ce4).

Read: the posting's mm/memory.c and mm/migrate_device.c hunks (v7, msgid
20250306012657.3505757-4-matthew.brost@intel.com; the v3 note "Put page after unlocking page").

Before: ``do_swap_page`` took a page reference under the PTL and called ``migrate_to_ram``; two
CPU faults on the same device page each took a reference, each made the other's
``folio_migrate_mapping`` see an unexpected count and back off -- with enough threads, Xe's SVM
livelocked.

After, the device-private branch of ``do_swap_page``, under the PTL after ``pte_same``:

* ``trylock_page(vmf->page)``; on success ``get_page``, drop the PTL, ``migrate_to_ram``,
  ``unlock_page``, ``put_page``;
* on failure drop the PTL and return 0: the fault is retried (``hmm_range_fault`` walks again,
  the CPU re-executes the access) -- a busy retry, which b570f37a2ce4 (v7.0) turns into a sleep
  on the page lock (F20).

``migrate_vma_*`` do not lock the fault page (it is already locked): collect takes it as locked
(``fault_folio == folio || folio_trylock(folio)``), the restore loop of ``migrate_device_unmap``
and ``__migrate_device_finalize`` leave it locked for ``do_swap_page`` to unlock, and
``migrate_vma_setup`` refuses a ``fault_page`` that is not locked (-EINVAL).
"""

import errno

from ..linux.mm.mmap import err
from ._patch import Patch

PATCH = Patch(
    commit="1afaeb8293c9", title="mm/migrate: Trylock device page in do_swap_page",
    version="v6.15", confidence="INFERRED",
    replaces="do_swap_page() called migrate_to_ram() for every concurrent fault of a device page "
             "(16ce101db85d's unlocked branch); migrate_vma_* trylocked the fault page themselves",
)


@PATCH.define
def do_swap_page(k, vmf) -> int:
    """``do_swap_page()`` (mm/memory.c v6.15): the device-private branch trylocks the page
    under the PTL; a fault that loses the trylock returns and is retried."""
    ret = k.do_swap_page_nondevice(vmf)
    if ret is not None:
        return ret
    vmf.page = vmf.orig_pte.page
    vmf.ptl.lock("pte_offset_map_lock")
    if not vmf.orig_pte.same(vmf.ptev.get("pte_same")):
        vmf.ptl.unlock("spin_unlock")
        return 0
    if k.trylock_page(vmf.page, "do_swap_page"):
        k.get_page(vmf.page)      # "Get a page reference while we know the page can't be freed."
        vmf.ptl.unlock("pte_unmap_unlock")
        ret = vmf.page.pgmap.ops.migrate_to_ram(vmf)
        k.unlock_page(vmf.page, "do_swap_page")
        k.put_page(vmf.page)
        return ret
    return k.do_swap_page_device_busy(vmf)


@PATCH.define
def do_swap_page_device_busy(k, vmf) -> int:
    """The trylock lost: ``pte_unmap_unlock`` and return 0, so the fault is retried at once.
    Kernel: mm/memory.c, as 1afaeb8293c9 (v6.15) has it."""
    vmf.ptl.unlock("pte_unmap_unlock")
    return 0


@PATCH.define
def migrate_vma_trylock(k, migrate, page) -> bool:
    """``fault_folio == folio || folio_trylock(folio)`` (migrate_vma_collect_pmd, v6.15).
    Kernel: mm/migrate_device.c, as 1afaeb8293c9 (v6.15) has it."""
    fault = migrate.fault_page if migrate is not None else None
    if fault is not None and fault.head is page.head:
        return True
    return k.trylock_page(page)


@PATCH.define
def migrate_device_unlock_src(k, page, fault_page) -> None:
    """``if (fault_folio != folio) folio_unlock(folio)``: the fault page stays locked for
    ``do_swap_page``.

    Kernel: mm/migrate_device.c, as 1afaeb8293c9 (v6.15) has it."""
    if fault_page is not None and fault_page.head is page.head:
        return
    k.unlock_page(page)


@PATCH.define
def migrate_vma_check_fault_page(k, args) -> None:
    """``migrate_vma_setup``: -EINVAL for a fault page that is not device private or not
    locked.

    Kernel: mm/migrate_device.c, as 1afaeb8293c9 (v6.15) has it."""
    if args.fault_page is None:
        return
    if not k.is_device_private_page(args.fault_page):
        raise err(errno.EINVAL, "migrate_vma_setup: fault_page is not device private")
    if not k.PageLocked(args.fault_page):
        raise err(errno.EINVAL, "migrate_vma_setup: fault_page is not locked")
