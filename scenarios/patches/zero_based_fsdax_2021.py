"""The 2021 proposal "mm: remove extra ZONE_DEVICE struct page refcount" (Ralph Campbell, posted by
Alex Sierra as "[PATCH v1 0/2] Remove extra ZONE_DEVICE page refcount", Nov 2021, on v5.16-rc;
never merged as posted) as a what-if patch on the kernel it was posted against (modelled as
v5.14: no ZONE_DEVICE change of the series lies between 5.14 and 5.16).  Seed
``003_ede6d8706e8d37f1.txt``; kernel_eras §7 and §12 F15.

    zonedev check scenarios/fsdax.py::generic_413_odirect_from_dax_mapping --kernel v5.14 \\
        --patch scenarios/patches/zero_based_fsdax_2021.py

What the proposal changed (its diffstat and the cover letter; the code in the model's words):

* every ZONE_DEVICE page starts at refcount **0** (``memremap_pages``), fsdax and device-dax
  included; an idle page is at 0;
* ``put_page`` loses its devmap-managed special case (``page_is_devmap_managed`` is false for
  everything): the 1 -> 0 put goes to ``free_zone_device_page``, which calls the driver's
  ``page_free`` and for fsdax wakes the break-layouts waiter (how the proposal woke it is
  INFERRED: ``wake_up_var`` at that put);
* drivers hand a page out by setting its count to 1 (``init_page_count``; the model's hook for
  that is ``zone_device_page_init``, the later kernel's name);
* ``memunmap_pages`` drops the pgmap references in bulk (``percpu_ref_put_many``) instead of a
  ``put_page`` per pfn;
* ext4/xfs wait for ``dax_page_unused()`` = refcount **0** (``dax_busy_page``: count > 0).

What it did not change: fs/dax.c still maps DAX pages with devmap pfn PTEs that take **no**
reference, and mm/gup.c (not in the diffstat) still refuses a page whose count is 0
(``try_get_page``/``try_grab_page``: ``WARN_ON_ONCE(page_ref_count(page) <= 0)``).  So an
O_DIRECT whose buffer is a DAX mapping -- xfstests generic/413 -- finds a mapped page at 0: the
WARN, and the I/O fails.  That is the "warning whose root cause lay in GUP/fsdax" of the cover
letter (the mechanism is INFERRED from the code; the thread does not quote the splat).  v6.15
made the same 0-based change *with* a reference per mapping (c_38607c62b3), which is why it
does not have the problem.
"""

from zonedev import Patch
from zonedev.linux.include.memremap import (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC, MEMORY_DEVICE_PCI_P2PDMA,
                                            MEMORY_DEVICE_PRIVATE)
from zonedev.linux.include.mm import GUP_PIN_COUNTING_BIAS

PATCH = Patch(
    commit="zero2021", title="mm: remove extra ZONE_DEVICE struct page refcount (2021 proposal)",
    version="v5.14", confidence="UNCONFIRMED",
    seed="003_ede6d8706e8d37f1.txt",
    replaces="ZONE_DEVICE pages idle at 1 with the devmap-managed 2->1 hooks in put_page/unpin",
)
PATCH.set(
    free_refcount={MEMORY_DEVICE_PRIVATE: 0, MEMORY_DEVICE_FS_DAX: 0, MEMORY_DEVICE_GENERIC: 0,
                   MEMORY_DEVICE_PCI_P2PDMA: 0, "MEMORY_DEVICE_DEVDAX": 0, "MEMORY_DEVICE_HOST": 0},
    fsdax_idle_refcount=0,
    devmap_managed_types=(),
    zd_alloc="zone_device_page_init",
)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    """memremap_pages: every ZONE_DEVICE page starts at 0."""
    return 0


@PATCH.define
def page_is_devmap_managed(k, page) -> bool:
    """Gone with the proposal: no devmap-managed special case in put_page or unpin."""
    return False


@PATCH.define
def zone_device_page_init(k, page) -> None:
    """The proposal's drivers (nouveau, test_hmm, amdkfd, uvmem) set the count of a page they
    hand out to 1 (``init_page_count``) and lock it."""
    k.set_page_count(page, 1, "init_page_count")
    k.lock_page(page)


@PATCH.define
def __put_page(k, page) -> None:
    if k.is_zone_device_page(page):
        k.free_zone_device_page(page)
        return
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def free_zone_device_page(k, page) -> None:
    """mm/memremap.c (proposal): the 1 -> 0 put of any ZONE_DEVICE page.  Device-private:
    clear Waiters, memcg uncharge, clear ->mapping, ``page_free``; fsdax: wake the
    break-layouts waiter; others: their ``page_free`` if they have one.  No reset: 0 is idle."""
    func = "free_zone_device_page"
    if k.is_fsdax_page(page):
        k.wake_up_var_refcount(page, func)
        return
    if k.is_device_private_page(page):
        k.__ClearPageWaiters(page, func)
        k.mem_cgroup_uncharge(page, func)
        k.set_page_field(page, "mapping", None, func)
    ops = page.pgmap.ops
    if ops is not None and (ops.page_free or ops.folio_free) is not None:
        k.call_page_free(page, func)


@PATCH.define
def unpin_user_page(k, page) -> None:
    """unpin without the devmap-managed hook: subtract the pin and free at 0."""
    page = page.head
    refs = 1
    if k.hpage_pincount_available(page):
        k.pincount_add(page, -1, "unpin_user_page")
    else:
        refs = GUP_PIN_COUNTING_BIAS
    if k.page_ref_sub_and_test(page, refs, "unpin_user_page"):
        k.__put_page(page)


@PATCH.define
def devm_memremap_pages_put_pfns(k, pgmap, func: str) -> None:
    """memunmap_pages: ``percpu_ref_put_many(pgmap->ref, pfn_len)`` per range, no per-pfn put."""
    for rng in pgmap.ranges:
        pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")


@PATCH.define
def dax_busy_page(k, page) -> bool:
    """ext4/xfs ``dax_page_unused()`` = ``page_ref_count(page) == 0``: busy above 0."""
    return k.page_ref_count(page.head, "dax_busy_page") > 0
