"""4996fc547f5b "mm: let _folio_nr_pages overlay memcg_data in first tail page" (David
Hildenbrand, v6.15; part of his "MM owner tracking for large folios (!hugetlb) +
CONFIG_NO_PAGE_MAPCOUNT" work, merged in the v6.15 merge window with 38607c62b34b).

[kernel_2025_2026.md F18; the id and title are CONFIRMED in the ``Fixes:`` lines of
"fs/dax: fix folio splitting issue by resetting old folio order + _nr_pages" (nvdimm list,
10 Apr 2025, Message-ID 20250410091020.119116-1-david@redhat.com); v6.15 is INFERRED: that fix
was queued for v6.15-rc3 against a tree that already had both commits]

* ``prep_compound_page`` -> ``prep_compound_head`` -> ``folio_set_order(folio, order)`` writes
  two words of **page[1]**: the order into the low byte of ``folio->_flags_1`` (page[1]'s
  ``flags``) and, on 64-bit (``NR_PAGES_IN_LARGE_FOLIO``), ``folio->_nr_pages = 1 << order``,
  which from this commit shares its word with page[1]'s ``memcg_data``.
* While page[1] is a tail nobody reads its ``memcg_data`` as a memcg.  Once a splitter turns
  page[1] into a folio of its own without clearing the word (fs/dax.c's ``dax_folio_put`` until
  98b1917cdef9, F18), ``folio_memcg()`` of that folio is ``1 << order``, not NULL, and the
  first ``__lruvec_stat_mod_folio`` (``folio_add_file_rmap_ptes`` when a DAX fault maps the
  page) dereferences it: "BUG: kernel NULL pointer dereference".
* Model: ``Page.memcg_data`` holds the word.  The order byte is not modelled (the model keeps a
  folio's order on the head and numbers page flags its own way; in the kernel the stale byte
  made the new folio look locked when the order was odd, the "locked" Alison Schofield saw).
  The model never charges a ZONE_DEVICE folio to a memcg, so ``__lruvec_stat_mod_folio`` on a
  folio whose ``memcg_data`` is nonzero is the crash.  The stat update itself is as old as file
  rmap; only from here can the word hold something that is not a memcg.
"""

from ..linux.mm import page_alloc, rmap
from ..sync import Var
from ._patch import Patch

PATCH = Patch(
    commit="4996fc547f5b", title="mm: let _folio_nr_pages overlay memcg_data in first tail page",
    version="v6.15", confidence="CONFIRMED",
    replaces="folio->_folio_nr_pages had a page[1] word of its own",
)


@PATCH.define
def prep_compound_page(k, head, order: int, func: str = "prep_compound_page") -> None:
    """mm/page_alloc.c v6.15 (4996fc547f5b): the compound page as before, then
    ``prep_compound_head`` -> ``folio_set_order``."""
    page_alloc.prep_compound_page(k, head, order, func)
    if order:
        k.folio_set_order(head, order, func)


@PATCH.define
def folio_set_order(k, folio, order: int, func: str = "folio_set_order") -> None:
    """mm/internal.h ``folio_set_order`` (v6.15, 4996fc547f5b): ``folio->_nr_pages = 1U <<
    order`` -- page[1]'s ``memcg_data`` word (the ``_flags_1`` order byte is not modelled)."""
    tail = k.memmap[folio.pfn + 1]
    if tail.memcg_data is None:
        tail.memcg_data = Var(0, f"page {tail.pfn:#x}.memcg_data")
    old = tail.memcg_data.set(1 << order, "folio_set_order(_nr_pages)")
    k.world.event(func, tail.pfn, "memcg_data/_nr_pages", old, 1 << order)


@PATCH.define
def folio_reset_order(k, folio, func: str = "folio_reset_order") -> None:
    """include/linux/mm.h (98b1917cdef9): ``folio->_flags_1 &= ~0xffUL`` and
    ``folio->_nr_pages = 0`` -- page[1]'s words back to what a small folio expects."""
    tail = k.memmap.get(folio.pfn + 1)
    if tail is None or tail.memcg_data is None:
        return
    old = tail.memcg_data.set(0, "folio_reset_order(_nr_pages)")
    k.world.event(func, tail.pfn, "memcg_data/_nr_pages", old, 0)


@PATCH.define
def __lruvec_stat_mod_folio(k, folio, idx: str, func: str = "__lruvec_stat_mod_folio") -> None:
    """mm/memcontrol.c (v6.15): ``memcg = folio_memcg(folio)``; with a memcg, ``mem_cgroup_lruvec(memcg,
    pgdat)`` reads through it.  A ZONE_DEVICE folio is never charged, so a nonzero
    ``memcg_data`` is a leftover (a former page[1]'s ``_nr_pages``) and the read faults."""
    word = folio.memcg_data
    value = word.get("folio_memcg") if word is not None else 0
    if value:
        k.world.violate("bad_folio_memcg_data",
                        f"BUG: kernel NULL pointer dereference in __lruvec_stat_mod_folio ({idx}): "
                        f"folio->memcg_data = {value:#x} is not a memcg",
                        folio.pfn, func)


@PATCH.define
def page_add_file_rmap(k, page, vma=None) -> None:
    """``folio_add_file_rmap_ptes`` (mm/rmap.c, v6.15): the mapcount, then ``__folio_mod_stat`` ->
    ``__lruvec_stat_mod_folio(folio, NR_FILE_MAPPED)``."""
    rmap.page_add_file_rmap(k, page, vma)
    k.__lruvec_stat_mod_folio(page.head, "NR_FILE_MAPPED", "folio_add_file_rmap_ptes")


@PATCH.define
def free_pages_prepare(k, page, order: int, func: str) -> bool:
    """mm/page_alloc.c v6.15 (4996fc547f5b): for a compound page of order > 0, ``folio->_nr_pages
    = 0`` before the pages go back to the buddy lists (page[1]'s ``memcg_data`` word cleared),
    then the bad-page checks."""
    if order:
        k.folio_reset_order(page, func)
    return page_alloc.free_pages_prepare(k, page, order, func)
