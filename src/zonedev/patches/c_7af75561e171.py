"""7af75561e171 "mm/gup: add FOLL_LONGTERM capability to GUP fast" (v5.2, Ira Weiny).

[kernel_eras §6.6, M22: CONFIRMED behaviour; the id with this title is quoted by Joao Martins in
seed 002 (``002_bcb6ade84e983da5.txt``): "prevent FOLL_LONGTERM on fsdax -- which I guess was the
original purpose of commit 7af75561e171"; v5.2 INFERRED]

* ``get_user_pages_fast()`` takes gup flags, so a caller can ask for FOLL_LONGTERM on the fast
  path.  ``gup_pte_range`` (and the devmap PMD/PUD walkers) **bail to the slow path** on a
  devmap entry when FOLL_LONGTERM is set: the fast path cannot see the VMA, and only the slow
  path's VMA check can refuse an fsdax mapping (-EOPNOTSUPP; device-dax may be long-term
  pinned).  Model: ``gup_fast`` in ``linux/mm/gup_user.py`` reads the fact below.
* Before this the fast path had no FOLL_LONGTERM; long-term users called
  ``get_user_pages_longterm()`` (slow path only), which refused fsdax VMAs the same way.
* Gone with the pXX_devmap bit in v6.17 ("mm: Remove pXX_devmap page table bit and pfn_t type");
  from v6.15 DAX no longer makes devmap PTEs, and the fast path's ``folio_is_longterm_pinnable``
  check (false for fsdax, c_38607c62b3) sends it to the slow path instead.
"""

from ._patch import Patch

PATCH = Patch(
    commit="7af75561e171", title="mm/gup: add FOLL_LONGTERM capability to GUP fast",
    version="v5.2", confidence="CONFIRMED",
    replaces="get_user_pages_fast() took a write flag only; long-term pins used the slow get_user_pages_longterm()",
    seed="002_bcb6ade84e983da5.txt",
)
PATCH.set(gup_fast_longterm_devmap_bails=True)
