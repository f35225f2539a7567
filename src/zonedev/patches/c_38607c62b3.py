"""38607c62b3 "fs/dax: properly refcount fs dax pages" and the rest of Alistair Popple's
"fs/dax: Fix ZONE_DEVICE page reference counts" series (v6.15).

[kernel_eras §9, M20: CONFIRMED 10-character id of this patch; the sibling patches' upstream
ids are UNCONFIRMED and folded in here: "mm/mm_init: Move p2pdma page refcount initialisation
to p2pdma", "device/dax: Properly refcount device dax pages when mapping", "mm/gup: Don't allow
FOLL_LONGTERM pinning of FS DAX pages", the dax idle-page and wait-key patches]

* ``__init_zone_device_page``: FS_DAX, PRIVATE, COHERENT and PCI_P2PDMA start at **0**;
  GENERIC stays at 1 [S11].
* FS_DAX: a page is in use while mapped (each mapping takes a reference) or pinned; 0 means
  idle.  ``dax_page_is_idle`` is ``== 0`` and the wait key is the page itself
  (``wake_up_var(page)`` from the free path).
* ``devmap_managed_key`` and ``put_devmap_managed_page*`` are deleted: ``put_page`` is
  ``folio_put``; ``gup_put_folio`` is ``folio_put_refs``; ``release_pages`` frees a zone-device
  folio that reaches 0 with ``free_zone_device_folio``.
* ``free_zone_device_folio``: memcg uncharge, clear PG_anon_exclusive, clear ``->mapping``
  unless FS_DAX/GENERIC, then per type: PRIVATE/COHERENT ``page_free`` + ``put_dev_pagemap``;
  GENERIC reset to 1; FS_DAX ``wake_up_var``; PCI_P2PDMA ``page_free`` (the driver drops its
  own pgmap reference), no reset.
* P2PDMA: ``p2pmem_alloc_mmap`` sets the refcount 0 -> 1 before inserting.
* GENERIC (device-dax) mappings take a page reference (1 -> 2), the unmap drops it.
* FOLL_LONGTERM pins of fsdax pages are refused (``folio_is_longterm_pinnable``).
* fs/dax.c (C3 of ``kernel_2025_2026.md``, read in 38607c62b34b): ``dax_layout_busy_page_range``
  always ``unmap_mapping_pages()`` on the range first (no ``mapping_mapped`` early-out), and
  ``dax_busy_page`` counts a folio busy only while ``folio_ref_count - folio_mapcount > 0``:
  a mapped, unpinned page is not busy.
* DAX faults map the page with ``vmf_insert_page_mkwrite`` -> ``insert_page``: ``folio_get``
  (0 -> 1 for the first mapping; how it passes folio_get's zero check is INFERRED) and
  ``folio_add_file_rmap_pte``, a normal (not devmap) PTE; the zap drops both.
* ``dax_associate_entry``/``dax_disassociate_entry`` work on ``dax_to_folio(entry)``, with no
  zero/empty-entry guard until 98c183a4fccf (same merge, c_98c183a4fccf).  A PMD entry's
  association makes the large folio (``dax_folio_init`` -> ``prep_compound_page``); the last
  disassociation (``dax_folio_put``) splits it back to order 0.  ``folio->share`` counts the
  files a reflinked block is mapped through (``IOMAP_F_SHARED``; it is the ``->index`` word).
  Read in fs/dax.c of linux-mm/linux-mm @5ffbe3b07254 (the same functions with 98b1917cdef9's
  ``folio_reset_order`` line) and the 98b1917cdef9 posting's context lines.
* DAX PMD faults map with ``vmf_insert_folio_pmd``: one reference, the entire mapcount.
"""

from ..linux.include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC,
                                      MEMORY_DEVICE_PCI_P2PDMA, MEMORY_DEVICE_PRIVATE)
from ..linux.include.mm import FOLL_PIN, GUP_PIN_COUNTING_BIAS
from ..linux.include.mm_types import PG_head
from ..linux.fs.dax import dax_entry
from ..linux.mm.mmap import PTE_PRESENT, Pte
from ._patch import Patch

PATCH = Patch(
    commit="38607c62b3", title="fs/dax: properly refcount fs dax pages",
    version="v6.15", confidence="CONFIRMED",
    replaces="fsdax pages were 1-based (idle at 1, woken on 2->1 through devmap_managed_key); "
             "p2pdma pages idled at 1",
)
PATCH.remove("put_devmap_managed_page", "put_devmap_managed_page_refs", "page_is_devmap_managed",
             "dev_pagemap_get_ops", "dev_pagemap_put_ops", "free_zone_device_page")
PATCH.set(
    free_refcount={MEMORY_DEVICE_PRIVATE: 0, MEMORY_DEVICE_COHERENT: 0, MEMORY_DEVICE_FS_DAX: 0,
                   MEMORY_DEVICE_GENERIC: 1, MEMORY_DEVICE_PCI_P2PDMA: 0},
    devmap_managed_types=(),
    fsdax_idle_refcount=0,
    dax_mapping_takes_ref=True,
)

_ZERO_BASED = (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    """The refcount ``memmap_init_zone_device`` gives a new page: 0 for every type whose pages are
    now refcounted from 0 (private, coherent, fsdax, generic, p2pdma).  Kernel: mm/page_alloc.c,
    as 38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) has it."""
    return 0 if pgmap.type in _ZERO_BASED else 1


@PATCH.define
def devmap_managed_enable_get(k, pgmap) -> None:
    """Gone: no devmap_managed_key any more.  Kernel: mm/memremap.c, as 38607c62b3 (v6.15) has it."""


@PATCH.define
def devmap_managed_enable_put(k, pgmap) -> None:
    """Gone: no devmap_managed_key any more.  Kernel: mm/memremap.c, as 38607c62b3 (v6.15) has it."""


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()``: ``folio_put`` on the page's folio -- no devmap special case any more, a
    ZONE_DEVICE page reaching 0 is freed by ``free_zone_device_folio``.  Kernel:
    include/linux/mm.h, as 38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) left it."""
    k.folio_put(page.head)


@PATCH.define
def folio_put(k, folio) -> None:
    """``folio_put()``: drop a reference; at 0 ``__folio_put`` frees the folio (a ZONE_DEVICE one
    through ``free_zone_device_folio``).  Kernel: include/linux/mm.h, as 38607c62b3 "fs/dax:
    properly refcount fs dax pages" (v6.15) left it."""
    if k.page_ref_dec_and_test(folio, "folio_put"):
        k.__folio_put(folio)


@PATCH.define
def gup_put_folio(k, folio, refs: int, flags: int) -> None:
    """``gup_put_folio()`` as 38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) left it
    (mm/gup.c)."""
    if flags & FOLL_PIN:
        if folio.order >= 1 and folio._pincount is not None:
            k.pincount_add(folio, -refs, "gup_put_folio")
        else:
            refs *= GUP_PIN_COUNTING_BIAS
    k.folio_put_refs(folio, refs)


@PATCH.define
def free_zone_device_folio(k, folio) -> None:
    """``free_zone_device_folio()``: the final put of any ZONE_DEVICE folio: uncharge, clear anon
    state and mapping (not for fsdax/generic), hand private/coherent folios to the driver, wake
    fsdax waiters, drop the pgmap reference where the type holds one.  Kernel: mm/memremap.c, as
    38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) has it."""
    func = "free_zone_device_folio"
    pgmap = folio.pgmap
    if pgmap is None:
        k.world.violate("free_without_pgmap", "WARN_ON_ONCE(!pgmap)", folio.pfn, func)
        return
    k.mem_cgroup_uncharge(folio, func)
    if k.PageAnon(folio):
        k.free_zone_device_folio_anon(folio, func)
    t = pgmap.type
    if t not in (MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_GENERIC):
        k.set_page_field(folio, "mapping", None, func)
    if t in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
            k.world.violate("free_without_page_free", "WARN_ON_ONCE(!pgmap->ops || !pgmap->ops->page_free)",
                            folio.pfn, func)
            return
        k.call_page_free(folio, func)
        k.free_zone_device_put_pgmap(folio)
    elif t == MEMORY_DEVICE_GENERIC:
        # Reset the refcount to 1 to prepare for handing out the page again.
        k.set_page_count(folio, 1, func)
    elif t == MEMORY_DEVICE_FS_DAX:
        k.zd_check_fsdax_idle(folio)
        k.wake_up_var_refcount(folio, func)
    elif t == MEMORY_DEVICE_PCI_P2PDMA:
        if pgmap.ops is None or (pgmap.ops.page_free is None and pgmap.ops.folio_free is None):
            k.world.violate("free_without_page_free", "WARN_ON_ONCE(!pgmap->ops || !pgmap->ops->page_free)",
                            folio.pfn, func)
            return
        k.call_page_free(folio, func)


@PATCH.define
def free_zone_device_folio_anon(k, folio, func: str) -> None:
    """v6.15: ``__ClearPageAnonExclusive(&folio->page)`` -- the head page only (folios are
    order 0 here; d245f9b4ab80 clears every page of a large folio).

    Kernel: mm/memremap.c, as 38607c62b3 (v6.15) has it."""
    k.__ClearPageAnonExclusive(folio, func)


@PATCH.define
def zd_check_fsdax_idle(k, folio) -> None:
    """An idle fsdax page is not a driver-free page: keep the model's free marker clear.
    Kernel: mm/memremap.c, as 38607c62b3 (v6.15) has it."""


@PATCH.define
def free_zone_device_put_pgmap(k, folio) -> None:
    """The pgmap reference the freed page held (``put_dev_pagemap``).  Kernel: mm/memremap.c, as
    38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) has it."""
    k.put_dev_pagemap(folio.pgmap)


@PATCH.define
def __folio_put(k, folio) -> None:
    """``__folio_put()`` as 38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) left it
    (mm/swap.c)."""
    if k.folio_is_zone_device(folio):
        k.free_zone_device_folio(folio)
        return
    k.free_the_page(folio, folio.order, "__folio_put")


@PATCH.define
def __put_page(k, page) -> None:
    """``__put_page()`` as 38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) left it
    (mm/swap.c)."""
    k.__folio_put(page.head)


@PATCH.define
def release_pages(k, pages) -> None:
    """``release_pages`` -> ``folios_put_refs``: no devmap special case.
    Kernel: mm/swap.c, as 38607c62b3 (v6.15) has it."""
    for page in pages:
        folio = page.head
        if k.folio_is_zone_device(folio):
            if k.page_ref_sub_and_test(folio, 1, "folios_put_refs"):
                k.free_zone_device_folio(folio)
            continue
        if k.put_page_testzero(folio, "release_pages"):
            k.__folio_put(folio)


@PATCH.define
def p2pmem_prepare_page(k, page) -> None:
    """v6.15: the page rests at 0; initialise the refcount for the fresh allocation.
    Kernel: drivers/pci/p2pdma.c, as 38607c62b3 (v6.15) has it."""
    if page._refcount.peek() != 0:
        k.world.violate("init_of_busy_page", "VM_WARN_ON_ONCE_PAGE(page_ref_count(page), page)", page.pfn,
                        "p2pmem_alloc_mmap")
    k.set_page_count(page, 1, "p2pmem_alloc_mmap")


@PATCH.define
def folio_is_longterm_pinnable(k, folio) -> bool:
    """Coherent: false; fsdax: false ("filesystems can only tolerate transient delays to
    truncate and hole-punch"); other ZONE_DEVICE / normal pages: true in this model.

    Kernel: include/linux/mm.h, as 38607c62b3 (v6.15) has it."""
    if k.is_device_coherent_page(folio) or k.is_fsdax_page(folio):
        return False
    return True


@PATCH.define
def is_longterm_pinnable_page(k, page) -> bool:
    """``folio_is_longterm_pinnable`` of the page's folio.  Kernel: include/linux/mm.h, as
    38607c62b3 "fs/dax: properly refcount fs dax pages" (v6.15) has it."""
    return k.folio_is_longterm_pinnable(page.head)


@PATCH.define
def dax_busy_page(k, page) -> bool:
    """fs/dax.c v6.15 ``dax_busy_page``: busy while ``folio_ref_count - folio_mapcount > 0``
    (a reference that is not a page-table mapping: GUP)."""
    folio = page.head
    return k.page_ref_count(folio, "folio_ref_count") - k.page_mapcount(folio) > 0


@PATCH.define
def dax_layout_busy_page_range(k, mapping, start: int = 0, end: int = -1):
    """fs/dax.c v6.15: no ``mapping_mapped`` early-out; unmap the range, then look for a busy
    folio (C3)."""
    return k.dax_layout_scan_busy(mapping, start, end)


@PATCH.define
def dax_folio_is_shared(k, folio) -> bool:
    """fs/dax.c v6.15 ``dax_folio_is_shared``: no ``->mapping`` and a nonzero ``->share``
    (``share`` is the ``->index`` word: the model reads ``index``)."""
    return folio.mapping.get("folio->mapping") is None and folio.index.get("folio->share") != 0


@PATCH.define
def dax_folio_make_shared(k, folio) -> None:
    """fs/dax.c v6.15 ``dax_folio_make_shared``: a folio mapped into one address space is
    becoming shared: clear ``->mapping`` and set ``->share`` (over ``->index``) to 1."""
    func = "dax_folio_make_shared"
    k.set_page_field(folio, "mapping", None, func)
    k.set_page_field(folio, "index", 1, func)               # folio->share = 1


@PATCH.define
def dax_folio_init(k, entry) -> None:
    """fs/dax.c v6.15 ``dax_folio_init``: ``WARN_ON_ONCE(folio_order(folio))`` (it should have
    been split back to order 0 by ``dax_folio_put``), then for a PMD entry
    ``prep_compound_page(&folio->page, order)`` and ``WARN_ON_ONCE(folio_ref_count(folio))``."""
    func = "dax_folio_init"
    folio = k.dax_to_folio(entry)
    if folio is None:
        return
    if folio.order or folio is not folio.head:
        k.world.violate("dax_folio_not_split", "WARN_ON_ONCE(folio_order(folio))", folio.pfn, func)
    order = entry.order
    if order > 0:
        k.prep_compound_page(folio, order, func)
        if folio._refcount.peek():
            k.world.violate("init_of_busy_page", "WARN_ON_ONCE(folio_ref_count(folio))", folio.pfn, func)


@PATCH.define
def dax_associate_entry(k, page, mapping, index: int = 0, shared: bool = False) -> None:
    """fs/dax.c v6.15: ``folio = dax_to_folio(entry)``.  ``shared`` (the iomap's
    ``IOMAP_F_SHARED``: a reflinked extent) and the folio already in a file or shared: make it
    shared (``dax_folio_make_shared``), ``WARN_ON_ONCE(!folio->share)``, ``WARN_ON_ONCE(order
    mismatch)``, ``folio->share++``.  Otherwise the not-shared branch: ``WARN_ON_ONCE(folio->mapping)``,
    ``dax_folio_init``, set ``->mapping``/``->index``.  No zero/empty-entry guard (98c183a4fccf
    adds it): a hole's zero-page entry associates the shared zero page with the file."""
    func = "dax_associate_entry"
    folio = k.dax_to_folio(page) if isinstance(page, dax_entry) else page.head
    if folio is None:
        return
    if shared and (folio.mapping.get("folio->mapping") is not None or k.dax_folio_is_shared(folio)):
        if folio.mapping.get("folio->mapping") is not None:
            k.dax_folio_make_shared(folio)
        share = folio.index.get("folio->share")
        if not share:
            k.world.violate("dax_associate_mapped_page", "WARN_ON_ONCE(!folio->share)", folio.pfn, func)
        if isinstance(page, dax_entry) and page.order != folio.order:
            k.world.violate("dax_associate_mapped_page", "WARN_ON_ONCE(dax_entry_order(entry) != folio_order(folio))",
                            folio.pfn, func)
        k.set_page_field(folio, "index", share + 1, func)        # folio->share++
        return
    if folio.mapping.get("folio->mapping") is not None:
        kind = "dax_zero_page_associated" if k.is_zero_page(folio) else "dax_associate_mapped_page"
        k.world.violate(kind, "WARN_ON_ONCE(folio->mapping)", folio.pfn, func)
    if isinstance(page, dax_entry) and not k.is_zero_page(folio):
        k.dax_folio_init(page)
    k.set_page_field(folio, "mapping", mapping, func)
    k.set_page_field(folio, "index", index, func)


@PATCH.define
def dax_folio_put(k, folio) -> int:
    """fs/dax.c v6.15 ``dax_folio_put`` as merged with 38607c62b34b: a shared folio drops one
    ``->share`` and stays while others remain; the last association clears ``->mapping`` (not
    at free) and splits a large folio back to order-0 folios: for each page ``ClearPageHead``,
    ``clear_compound_head``, ``->mapping = NULL``, ``->pgmap`` restored (``prep_compound_page``
    overwrote it with the compound head), ``->share = 0``, ``WARN_ON_ONCE(folio_ref_count)``.
    page[1]'s ``_nr_pages`` (its ``memcg_data``, 4996fc547f5b) is left as it was: F18, fixed by
    98b1917cdef9."""
    func = "dax_folio_put"
    if k.dax_folio_is_shared(folio):
        ref = folio.index.get("folio->share") - 1
        k.set_page_field(folio, "index", ref, func)              # --folio->share
        if ref:
            return ref
    k.set_page_field(folio, "mapping", None, func)
    order = folio.order
    if not order:
        return 0
    k.dax_folio_split(folio, order)
    return 0


@PATCH.define
def dax_folio_split(k, folio, order: int) -> None:
    """fs/dax.c v6.15, the loop of ``dax_folio_put``: every page of the large folio becomes an
    order-0 folio."""
    func = "dax_folio_put"
    pgmap = folio.pgmap
    for pfn in range(folio.pfn, folio.pfn + (1 << order)):
        page = k.memmap[pfn]
        page.flags.bits &= ~(1 << PG_head)                        # ClearPageHead
        page.head = page                                          # clear_compound_head
        page.order = 0
        k.set_page_field(page, "mapping", None, func)
        page.pgmap = pgmap                                        # "Reset pgmap which was over-written"
        k.set_page_field(page, "index", 0, func)                  # new_folio->share = 0
        if page._refcount.peek():
            k.world.violate("dax_disassociate_busy_page", "WARN_ON_ONCE(folio_ref_count(new_folio))", pfn, func)
    k.world.event(func, folio.pfn, "order", order, 0)


@PATCH.define
def dax_disassociate_entry(k, page, trunc: bool = True) -> None:
    """fs/dax.c v6.15: ``dax_folio_put(dax_to_folio(entry))`` and nothing else -- no busy
    check at truncation any more (the 1-based ``WARN_ON_ONCE(trunc && page_ref_count > 1)`` is
    gone; the break-layouts wait before it is the guard, and a reflinked folio may stay mapped
    by another file).  Read in linux-mm fs/dax.c @5ffbe3b07254; the model checked a 0-based
    form here until the shared path came (``tests/test_fsdax_share.py``).  The split's
    ``WARN_ON_ONCE(folio_ref_count(new_folio))`` is the one check left."""
    folio = k.dax_to_folio(page) if isinstance(page, dax_entry) else page.head
    if folio is None:
        return
    if k.is_zero_page(folio):
        k.set_page_field(folio, "mapping", None, "dax_folio_put")
        k.set_page_field(folio, "index", 0, "dax_folio_put")
        return
    k.dax_folio_put(folio)


@PATCH.define
def dax_insert_pmd(k, vma, base: int, head, order: int, write: bool) -> None:
    """mm/huge_memory.c v6.15 ``vmf_insert_folio_pmd`` (fs/dax.c ``dax_fault_iter`` for a PMD):
    one folio reference (``folio_get``: 0 -> 1 for an idle fsdax folio) and the entire mapcount
    (``folio_add_file_rmap_pmd``); a normal (not devmap) PMD."""
    mm = vma.vm_mm
    pt, hv = mm.pte(base, alloc=True)
    pt.ptl.lock("insert_pmd")
    if hv.get("pmd_none") is None:
        k.page_ref_inc(head, "vmf_insert_folio_pmd")              # folio_get()
        k.page_add_file_rmap(head, vma)                           # folio_add_file_rmap_pmd()
        for i in range(1 << order):
            _, v = mm.pte(base + (i << 12), alloc=True)
            v.set(Pte(PTE_PRESENT, k.pfn_to_page(head.pfn + i), write, write, huge=order), "set_pmd_at")
    pt.ptl.unlock("insert_pmd")


@PATCH.define
def dax_insert_pfn(k, vmf, page, write: bool) -> int:
    """mm/memory.c v6.15 ``vmf_insert_page_mkwrite`` -> ``insert_page``: the mapping takes a
    folio reference (``folio_get``; 0 -> 1 for an idle fsdax folio) and a mapcount; a normal
    PTE."""
    vma = vmf.vma
    folio = page.head
    vmf.ptl.lock("insert_page")
    cur = vmf.ptev.get("pte_none")
    if cur is not None and cur.page is page:
        if write and not cur.write:
            vmf.ptev.set(Pte(PTE_PRESENT, page, True, True), "insert_page_into_pte_locked(mkwrite)")
        vmf.ptl.unlock("insert_page")
        return 0
    k.page_ref_inc(folio, "insert_page")      # folio_get()
    k.page_add_file_rmap(folio, vma)          # folio_add_file_rmap_pte()
    if cur is not None:                        # the zero page of a hole being replaced
        vmf.ptev.set(None, "ptep_clear_flush")
    vmf.ptev.set(Pte(PTE_PRESENT, page, write, write), "set_pte_at")
    vmf.ptl.unlock("insert_page")
    return 0


@PATCH.define
def dev_dax_insert(k, vma, base: int, head, order: int, write: bool) -> None:
    """drivers/dax/device.c v6.15 ("device/dax: properly refcount device dax pages when
    mapping"): ``vmf_insert_page_mkwrite`` (order 0) / ``vmf_insert_folio_pmd``/``_pud``: one
    folio reference (GENERIC idles at 1: 1 -> 2) and one entire mapcount for the mapping."""
    mm = vma.vm_mm
    pt, hv = mm.pte(base, alloc=True)
    pt.ptl.lock("insert_pmd" if order else "insert_page")
    if hv.get("pmd_none") is None:
        k.page_ref_inc(head, "vmf_insert_folio_pmd" if order else "insert_page")   # folio_get()
        k.page_add_file_rmap(head, vma)                # folio_add_file_rmap_pmd / _pte
        for i in range(1 << order):
            page = k.pfn_to_page(head.pfn + i)
            _, v = mm.pte(base + (i << 12), alloc=True)
            v.set(Pte(PTE_PRESENT, page, write, write, huge=order), "set_pmd_at")
    pt.ptl.unlock("insert_pmd" if order else "insert_page")
