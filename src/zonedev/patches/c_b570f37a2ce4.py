"""b570f37a2ce4 "mm: Fix a hmm_range_fault() livelock / starvation problem" (Thomas Hellström,
v7.0-rc4; Fixes: 1afaeb8293c9; Cc: stable v6.15+; kernel_2025_2026.md §1 C2, failure F20).

Read: the patch as posted and as picked into the mm tree (mm/memory.c hunk of ``do_swap_page``
@@ -4684 and mm/migrate.c, Feb 2026; Andrew Morton: "apart from the rename, this is the whole
patch").

Before (1afaeb8293c9): a fault that loses ``trylock_page`` on a device-private page drops the
PTL and returns, and ``hmm_range_fault`` walks again at once: a busy retry.  When the lock
holder is itself waiting for a work item queued on the spinning CPU (``lru_add_drain_all()`` in
the migration path), nothing makes progress -- Intel's ``xe_exec_system_allocator`` hang (F20).

After: on trylock failure ``pte_unmap(vmf->pte)`` and ``softleaf_entry_wait_on_locked(entry,
vmf->ptl)``, which drops the PTL itself and sleeps until the folio is unlocked; then the fault
returns and is retried.  ``migration_entry_wait_on_locked`` is renamed
``softleaf_entry_wait_on_locked``; its comment gains "any path attempting to drop the last
reference to a device-private page needs to grab the ptl to remove the device-private entry"
(why the page cannot be freed before the PTL is dropped).
"""

from ..linux.include.mm_types import PG_locked
from ..sync import READ
from ._patch import Patch

PATCH = Patch(
    commit="b570f37a2ce4", title="mm: Fix a hmm_range_fault() livelock / starvation problem",
    version="v7.0", confidence="CONFIRMED", fixes="1afaeb8293c9",
    replaces="a fault that lost the device page's trylock returned at once and was retried "
             "(busy retry: livelock when the lock holder needs the spinning CPU)",
)


@PATCH.define
def softleaf_entry_wait_on_locked(k, page, ptl) -> None:
    """``softleaf_entry_wait_on_locked()`` (mm/filemap.c v7.0, was
    ``migration_entry_wait_on_locked``): called with the PTL held, drops it (``__releases(ptl)``)
    and sleeps until the folio is unlocked.  The kernel queues the waiter before dropping the
    PTL, so no unlock is missed; the model's wait is a condition, which cannot miss one either."""
    ptl.unlock("spin_unlock")
    flags = page.head.flags
    flags.world.point(flags, READ, "softleaf_entry_wait_on_locked",
                      lambda: not flags.bits >> PG_locked & 1)


@PATCH.define
def do_swap_page_device_busy(k, vmf) -> int:
    """The trylock lost: ``pte_unmap`` + ``softleaf_entry_wait_on_locked(entry, vmf->ptl)``,
    then return 0 (the fault is retried once the lock holder is done).

    Kernel: mm/memory.c, as b570f37a2ce4 (v7.0) has it."""
    k.softleaf_entry_wait_on_locked(vmf.page, vmf.ptl)
    return 0
