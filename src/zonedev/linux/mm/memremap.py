"""mm/memremap.c (kernel/memremap.c before v4.20), era-independent pieces.

The era-dependent functions (``devm_memremap_pages``, ``memremap_pages``, ``memunmap_pages``,
``get_dev_pagemap``, ``free_zone_device_page``, ``zone_device_page_init``, the devmap-managed
put) are installed by the patch modules that changed them; this module holds what they share:

* ``memmap_init_zone_device``: make the ``struct page``s of a range (refcount from the era's
  ``__init_zone_device_page`` rule, ``pgmap``, compound pages of ``vmemmap_shift``);
* the pgmap lookup structure (``pgmap_radix`` v4.5-v4.19, ``pgmap_array`` xarray v4.20+),
  RCU-protected: ``get_dev_pagemap_rcu`` is the lookup every era's ``get_dev_pagemap`` makes
  (``rcu_read_lock``; radix/xarray load; ``percpu_ref_tryget_live``; ``rcu_read_unlock``) and
  ``pgmap_unregister`` erases and then waits in ``synchronize_rcu`` (``pgmap_radix_release``,
  kernel/memremap.c v4.9-v4.19; ``pgmap_array_delete``, mm/memremap.c v4.20+), so a lookup that
  found the pgmap has taken (or failed to take) its reference before the eraser goes on;
* ``remove_pages``: ``arch_remove_memory``/``__remove_pages``: the memmap goes away.  A page
  still referenced at that moment is the use-after-free of F2/F8 (``use_after_free``);
* ``zd_check_page_free``: the model's check before a driver's ``page_free``/``folio_free`` runs:
  ``page_free_twice`` and ``page_free_while_referenced``;
* ``zd_check_pgmap_held``: the lifetime rule every era shares -- a driver callback
  (``page_free``/``folio_free``, ``migrate_to_ram``, ``folio_split``) runs only on a pgmap that
  is still alive: its reference not yet exited (the teardown exits it last, ``memunmap_pages``
  returns right after, and the driver may free the pgmap then).  Violating it is a
  ``use_after_free`` of the pgmap and the driver data behind it.  (A callback running while the
  killed reference has drained but the teardown has not yet exited it is the window; the
  checker explores the order in which the teardown finishes first.)  Accesses to the pages after
  the memmap is gone are ``check_page_alive``'s (include/page_ref), to the percpu_ref after
  the exit ``percpu_ref_use_after_exit`` (zonedev.sync.PercpuRef);
* ``pgmap_percpu_ref``: the pgmap percpu_ref and its ``done`` completion with the release
  callback (``dev_pagemap_percpu_release``, v5.3+; the drivers' own release before).
"""

from __future__ import annotations

from ...sync import READ, Atomic, Completion, PercpuRef
from ..include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA,
                                MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC)
from ..include.mm_types import PG_head, PG_zd_free, PG_zd_nobase, ZONE_DEVICE, Page

_FREE = 1 << PG_zd_free
_NOBASE = 1 << PG_zd_nobase
#: types whose idle pages sit in a driver's free list (allocated and idle look alike by count)
FREELIST_TYPES = frozenset({MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_COHERENT,
                            MEMORY_DEVICE_PCI_P2PDMA})

WORDS_FREE_TWICE = "list_add double add: page_free() called for a page already in the driver's free list"
WORDS_FREE_REFERENCED = ("page_free() called while the page is still referenced: the driver hands out "
                         "a page somebody still uses")
WORDS_REMOVED_REFERENCED = ("BUG: unable to handle page fault: memmap removed (arch_remove_memory) while "
                            "the page is still referenced")
WORDS_EXIT_IN_USE = "percpu_ref_exit() on a pgmap reference that is still in use"
WORDS_INIT_BUSY = ("zone_device_page_init() on a page that is not free: set_page_count(page, 1) "
                   "overwrites a live refcount (no check before the newest kernels)")
WORDS_ALLOC_AFTER_KILL = "WARN_ON_ONCE(!percpu_ref_tryget_live(&pgmap->ref))"
WORDS_CALLBACK_UNHELD = ("BUG: KASAN: use-after-free: a dev_pagemap_ops callback runs on a pgmap after "
                         "memunmap_pages() returned (the driver may have freed it)")


def pgmap_percpu_ref(k, pgmap, release_name: str = "dev_pagemap_percpu_release") -> None:
    """``init_completion(&pgmap->done); percpu_ref_init(ref, release)``: the release callback
    completes ``done`` once the killed ref has drained.

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    done = Completion(f"{pgmap.name}.done")

    def release(ref, done=done, pgmap=pgmap):
        k.world.event(release_name, None, pgmap.name + ".done", 0, 1)
        done.complete(release_name)

    pgmap.done = done
    pgmap.ref = PercpuRef(release, f"{pgmap.name}.ref", release_name)


def pgmap_pfns(pgmap):
    """Every pfn of every range."""
    for start, nr in pgmap.ranges:
        yield from range(start, start + nr)


def pgmap_heads(k, pgmap):
    """The head pages, one per ``1 << vmemmap_shift`` pfns (``for_each_device_pfn`` after v5.17)."""
    step = 1 << pgmap.vmemmap_shift
    for start, nr in pgmap.ranges:
        for pfn in range(start, start + nr, step):
            yield k.memmap[pfn]


def pfn_len(pgmap, rng) -> int:
    """Number of (compound) pages in a range: ``PHYS_PFN(range_len(range)) >> vmemmap_shift``."""
    return rng[1] >> pgmap.vmemmap_shift


def memmap_init_zone_device(k, pgmap, start_pfn: int, nr_pages: int,
                            func: str = "memmap_init_zone_device") -> None:
    """Make the ``struct page``s of one range: ZONE_DEVICE, ``page->pgmap``, the era's initial
    refcount (``k.zone_device_init_refcount``), compound pages of ``pgmap->vmemmap_shift``
    (tails at refcount 0, v5.17+).  Idle pages start marked free (model bookkeeping).

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    init = k.zone_device_init_refcount(pgmap)
    shift = pgmap.vmemmap_shift
    order_nr = 1 << shift
    memmap = k.memmap
    fsdax = pgmap.type == MEMORY_DEVICE_FS_DAX
    for pfn in range(start_pfn, start_pfn + nr_pages):
        head = (pfn - start_pfn) % order_nr == 0
        page = Page(pfn, ZONE_DEVICE, init if head else 0)
        page.pgmap = pgmap
        page.flags.bits = _FREE
        memmap[pfn] = page
        pgmap.pages.append(page)
        if fsdax and (head or not shift):
            k.page_waitqueue(page)       # made here so its oid does not depend on interleaving
        if shift:
            if head:
                page.order = shift
                page.flags.bits |= 1 << PG_head
                page._pincount = Atomic(0, f"page {pfn:#x}._pincount")
                cur = page
            else:
                page.head = cur
    k.world.event(func, start_pfn, "memmap", None, f"{nr_pages} pages, refcount {init}")


def pgmap_register(k, pgmap, func: str = "pgmap_array_store") -> None:
    """``xa_store_range(&pgmap_array, ...)`` (``pgmap_radix`` before v4.20): lookups by pfn
    find the pgmap from now on.

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    maps = k.pgmap_array.get(func)
    if any(m is pgmap for m in maps):
        return
    if pgmap.nr_range > 1 and not k.fact("multiple_ranges"):
        raise ValueError(f"{k.name}: one range per pgmap before v5.10 (b7b3c01b1915)")
    if pgmap.vmemmap_shift and not k.fact("vmemmap_shift_supported"):
        raise ValueError(f"{k.name}: vmemmap_shift (compound ZONE_DEVICE pages) needs v5.17+")
    k.pgmap_array.set(maps + (pgmap,), func)
    k.world.event(func, pgmap.ranges[0][0], "pgmap_array", None, pgmap.name)


def pgmap_unregister(k, pgmap, func: str = "pgmap_array_erase") -> None:
    """Erase the pgmap from the lookup structure, then ``synchronize_rcu()``: lookups that
    found it (inside their read-side section) are done with it when this returns.

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    maps = k.pgmap_array.get(func)
    k.pgmap_array.set(tuple(m for m in maps if m is not pgmap), func)
    k.world.event(func, pgmap.ranges[0][0], "pgmap_array", pgmap.name, None)
    k.rcu.synchronize("synchronize_rcu")


def get_dev_pagemap_rcu(k, pfn: int, tryget: str = "percpu_ref_tryget_live"):
    """The lookup of ``get_dev_pagemap`` in every era (kernel/memremap.c v4.5, mm/memremap.c
    v4.20+): under ``rcu_read_lock``, load the pgmap covering ``pfn`` and take a live
    reference (``percpu_ref_tryget_live``; ``percpu_ref_tryget_live_rcu`` in the newest
    kernels); None if there is none or it is being torn down."""
    k.rcu.read_lock("rcu_read_lock")
    pgmap = k.find_dev_pagemap(pfn, "xa_load")
    if pgmap is not None and not pgmap.ref.tryget_live(tryget):
        pgmap = None
    k.rcu.read_unlock("rcu_read_unlock")
    return pgmap


def find_dev_pagemap(k, pfn: int, func: str = "xa_load"):
    """The pgmap covering ``pfn``, from the radix tree / xarray (no reference taken).
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    for pgmap in k.pgmap_array.get(func):
        for start, nr in pgmap.ranges:
            if start <= pfn < start + nr:
                return pgmap
    return None


def pgmap_covers(pgmap, pfn: int) -> bool:
    return any(start <= pfn < start + nr for start, nr in pgmap.ranges)


def zd_unmap_idle_refcount(k, page) -> int:
    """The refcount an unused page of this era and type has when its memmap is removed.
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    free = k.fact("free_refcount")[page.pgmap.type]
    return free - 1 if page.flags.bits & _NOBASE else free


def zd_page_referenced(k, page) -> bool:
    """Model query: does somebody still hold this (head) page?
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    count = page._refcount.peek()
    idle = k.zd_unmap_idle_refcount(page)
    if count > idle:
        return True
    pgmap = page.pgmap
    if count != idle or count <= 0 or page.flags.bits & _FREE:
        return False
    # allocated and idle pages look alike by count only where a driver keeps a free list
    return pgmap.type in FREELIST_TYPES and (pgmap.type != MEMORY_DEVICE_PCI_P2PDMA or
                                             pgmap.ops.page_free is not None)


def remove_pages(k, pgmap, func: str = "arch_remove_memory") -> None:
    """``arch_remove_memory`` / ``__remove_pages``: the struct pages of every range go away.

    A page somebody still references is reported as ``use_after_free`` (their next access
    touches freed memmap; the model marks the page and reports that access too).

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    for page in pgmap_heads(k, pgmap):
        if k.zd_page_referenced(page):
            k.world.violate("use_after_free", WORDS_REMOVED_REFERENCED, page.pfn,
                            f"{func}: refcount {page._refcount.peek()}")
    for page in pgmap.pages:
        page.memmap_live = False
    k.world.event(func, pgmap.ranges[0][0], "memmap", f"{len(pgmap.pages)} pages", None)


def percpu_ref_exit_pgmap(k, pgmap, func: str = "percpu_ref_exit") -> None:
    """``percpu_ref_exit(pgmap->ref)``; exiting a ref that still counts users is
    ``pgmap_exit_in_use``.

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    ref = pgmap.ref
    if ref.count > 0 and not ref.exited:
        k.world.violate("pgmap_exit_in_use", WORDS_EXIT_IN_USE, None, f"{func}: {ref.count} references")
    ref.exit(func)


def zd_check_pgmap_held(k, pgmap, func: str, pfn: int | None = None) -> bool:
    """Before a driver callback runs on ``pgmap``: is the pgmap still alive?  Reports
    ``use_after_free`` and returns False if the teardown has exited its reference (mm/memremap.c
    ``memunmap_pages``, v5.3+, and the drivers' own teardown v4.5-v5.2: ``percpu_ref_exit`` is
    the last use of the pgmap before the driver may free it)."""
    ref = getattr(pgmap, "ref", None)
    if ref is None or not ref.exited:
        return True
    k.world.violate("use_after_free", WORDS_CALLBACK_UNHELD, pfn,
                    f"{func} on {pgmap.name}: reference exited (memunmap_pages returned)")
    return False


def zd_check_page_free(k, page, func: str) -> None:
    """Before a driver's ``page_free``: was the page already free, or is it still referenced?
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    bits = page.flags.bits
    if bits & _FREE:
        k.world.violate("page_free_twice", WORDS_FREE_TWICE, page.pfn, func)
    elif bits & _NOBASE and page._refcount.peek() >= 1:
        k.world.violate("page_free_while_referenced", WORDS_FREE_REFERENCED, page.pfn,
                        f"{func} at refcount {page._refcount.peek()} after the teardown put")
    page.flags.bits = bits | _FREE


def zd_mark_base_dropped(k, page) -> None:
    """memunmap's put of each pfn drops the page's base reference (1-based eras).
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    page.flags.bits |= _NOBASE


def call_page_free(k, page, func: str) -> None:
    """Run the driver's ``page_free`` (``folio_free`` in the newest kernels) with the arguments
    of this era: ``(page, pgmap->data)`` before v5.3, ``(page)`` after, ``(folio)`` newest.

    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    k.zd_check_page_free(page, func)
    pgmap = page.pgmap
    ref = getattr(pgmap, "ref", None)
    if ref is not None:
        # the load of page->pgmap->ops->page_free is an access to the pgmap: its own step, so
        # a teardown that finishes first (after the last pgmap reference went) comes before it
        k.world.point(ref, READ, "pgmap->ops->page_free")
    k.zd_check_pgmap_held(pgmap, func, page.pfn)
    k.world.event(func, page.pfn, "callback", None, "folio_free" if k.fact("folio_free") else "page_free")
    cb = pgmap.ops.page_free
    if cb is None:
        cb = pgmap.ops.folio_free
    if cb is None:
        return
    if k.fact("page_free_takes_data"):
        cb(page, pgmap.data)
    else:
        cb(page)


def wake_up_var_refcount(k, page, func: str) -> None:
    """``wake_up_var(&page->_refcount)`` (v6.15+: ``wake_up_var(page)``): fsdax idle wake-up.
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    k.world.event(func, page.pfn, "callback", None, "wake_up_var")
    k.page_waitqueue(page).wake_up("wake_up_var")


def page_waitqueue(k, page):
    """The wait_var_event queue of a page (``__var_waitqueue``), made on first use.
    Kernel: mm/memremap.c, v4.5+ (kernel/memremap.c before v4.20)."""
    wq = getattr(k, "_var_waitqueues", None)
    if wq is None:
        wq = k._var_waitqueues = {}
    q = wq.get(page.pfn)
    if q is None:
        from ...sync import WaitQueue
        q = wq[page.pfn] = WaitQueue(f"page {page.pfn:#x} var waitqueue")
    return q


FUNCTIONS = (pgmap_percpu_ref, memmap_init_zone_device, pgmap_register, pgmap_unregister,
             get_dev_pagemap_rcu, find_dev_pagemap, zd_unmap_idle_refcount, zd_page_referenced, remove_pages,
             zd_check_page_free, zd_check_pgmap_held, zd_mark_base_dropped, percpu_ref_exit_pgmap, call_page_free, wake_up_var_refcount,
             page_waitqueue)
