"""98b1917cdef9 "fs/dax: fix folio splitting issue by resetting old folio order + _nr_pages"
(David Hildenbrand, v6.15-rc3; Fixes: 4996fc547f5b, 38607c62b34b; Reported-by Alison
Schofield, Tested-by Darrick J. Wong).  Failure F18 (``kernel_2025_2026.md`` §3 names it
"reinitialize large fsdax folio tail state").

[posting: nvdimm list, 10 Apr 2025, Message-ID 20250410091020.119116-1-david@redhat.com, read
whole with its thread; Andrew Morton: "I have it in mm-hotfixes" (17 Apr 2025), sent to Linus for
-rc3.  The id is INFERRED: 98b1917cdef9 is the commit two post-receive revlists of trees that
merged v6.15-rc3 carry beside other mainline fixes; pre-merge mm-hotfixes copies carry
675ff3dd605d, 21079e5739ea, 3e7d1be4be19.  The merged line is CONFIRMED in fs/dax.c of
linux-mm/linux-mm @5ffbe3b07254 and in the 2026 postings that build on it ("fs/dax: Use
free_zone_device_folio_prepare() helper", "dax: Factor out dax_folio_reset_order() helper")]

* The bug (F18): when the last association of a large fsdax folio goes, ``dax_folio_put``
  splits it into order-0 folios but leaves page[1]'s ``_nr_pages`` -- the word page[1] shares
  with ``memcg_data`` since 4996fc547f5b -- and the order byte of its ``flags``.  The next time
  that block is mapped as a small folio (a PTE fault of any file that gets the block), the DAX
  fault's ``vmf_insert_page_mkwrite`` -> ``folio_add_file_rmap_ptes`` ->
  ``__lruvec_stat_mod_folio`` takes ``_nr_pages`` for a memcg pointer: "BUG: kernel NULL pointer
  dereference" (Alison's trace: RIP ``__lruvec_stat_mod_folio``, CR2 0xb00).
* The fix: ``folio_reset_order(folio)`` (new in include/linux/mm.h: clear the order byte of
  ``_flags_1`` and ``_nr_pages``) in ``dax_folio_put`` before the split loop.
* Both commits it fixes were new in the v6.15 merge window and the fix went into v6.15-rc3, so
  no released kernel has F18: the matrix says ``safe`` from v6.15, ``--without 98b1917cdef9``
  shows the -rc1/-rc2 behaviour.
"""

from ._patch import Patch

PATCH = Patch(
    commit="98b1917cdef9", title="fs/dax: fix folio splitting issue by resetting old folio order + _nr_pages",
    version="v6.15", confidence="INFERRED", fixes="4996fc547f5b",
    replaces="dax_folio_put split a large fsdax folio without resetting page[1]'s order and _nr_pages "
             "(its memcg_data word): the next small folio of that page looked charged (F18)",
)


def _v615(name):
    from . import c_38607c62b3
    return c_38607c62b3.PATCH.functions[name]


@PATCH.define
def dax_folio_split(k, folio, order: int) -> None:
    """fs/dax.c v6.15 (98b1917cdef9): ``folio_reset_order(folio)``, then the split loop."""
    k.folio_reset_order(folio, "dax_folio_put")
    _v615("dax_folio_split")(k, folio, order)
