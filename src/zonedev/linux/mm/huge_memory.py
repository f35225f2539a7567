"""The PMD level of an address space, as far as device-private THP migration needs it
(mm/huge_memory.c, mm/pgtable-generic.c, include/linux/oom.h; v6.19+).

* A PMD entry per 2 MiB of an mm (``pmd_entry``), locked by ``pmd_lock`` -- the model uses
  ``mm->page_table_lock``, the lock ``pmd_lock`` is without split PMD locks.
* Page-table pages: ``pte_alloc_one`` (a page of its own), ``pte_free``, and
  ``pgtable_trans_huge_deposit`` (kept with a huge PMD for a later split).  ``pgtables_in_flight``
  counts the ones allocated and neither freed nor deposited: anything left at the end leaked.
* ``check_stable_address_space`` (include/linux/oom.h): -EFAULT once the OOM reaper marked the mm
  MMF_UNSTABLE (``mm_set_unstable``).

Only the states the THP insertion path reads are modelled: a PMD is ``None`` (pmd_none), the
huge zero page, or a mapped huge entry.
"""

from __future__ import annotations

import errno

from ...sync import Var
from .mmap import PMD_SHIFT

HUGE_ZERO = "huge_zero"


def _pmd_state(mm):
    st = mm.__dict__.get("_pmd_state")
    if st is None:
        st = mm._pmd_state = {"pmds": {}, "unstable": Var(False, f"mm{mm.id}.MMF_UNSTABLE"),
                              "pgtables": Var((), f"mm{mm.id} pgtables in flight"),
                              "deposited": Var((), f"mm{mm.id} deposited pgtables")}
    return st


def pmd_entry(k, mm, addr: int) -> Var:
    """The PMD entry covering ``addr`` (``pmd_offset``).  Kernel: include/linux/pgtable.h, v6.19+."""
    pmds = _pmd_state(mm)["pmds"]
    i = addr >> PMD_SHIFT
    v = pmds.get(i)
    if v is None:
        v = pmds[i] = Var(None, f"mm{mm.id}.pmd[{i:#x}]")
    return v


def pmd_lock(k, mm, pmd) -> object:
    """``pmd_lock()``: take and return the PMD's lock.  Kernel: include/linux/mm.h, v6.19+."""
    mm.page_table_lock.lock("pmd_lock")
    return mm.page_table_lock


def pte_alloc_one(k, mm):
    """``pte_alloc_one()``: a page-table page (a page of its own, refcount 1).
    Kernel: include/asm-generic/pgalloc.h, v6.19+."""
    pgtable = k.alloc_page(0, "pte_alloc_one")
    st = _pmd_state(mm)["pgtables"]
    st.set(st.get("pte_alloc_one") + (pgtable.pfn,), "pte_alloc_one")
    return pgtable


def pte_free(k, mm, pgtable) -> None:
    """``pte_free()``: give a page-table page back.  Kernel: include/asm-generic/pgalloc.h, v6.19+."""
    st = _pmd_state(mm)["pgtables"]
    st.set(tuple(p for p in st.get("pte_free") if p != pgtable.pfn), "pte_free")
    k.put_page(pgtable)


def pgtable_trans_huge_deposit(k, mm, pmd, pgtable) -> None:
    """``pgtable_trans_huge_deposit()``: the page-table page stays with the huge PMD.
    Kernel: mm/pgtable-generic.c, v6.19+."""
    st = _pmd_state(mm)
    st["pgtables"].set(tuple(p for p in st["pgtables"].get("deposit") if p != pgtable.pfn), "deposit")
    st["deposited"].set(st["deposited"].get("deposit") + (pgtable.pfn,), "pgtable_trans_huge_deposit")


def pgtables_in_flight(k, mm) -> int:
    """Page-table pages allocated and neither freed nor deposited (model query).
    Kernel: mm/pgtable-generic.c, v6.19+ (model query)."""
    return len(_pmd_state(mm)["pgtables"].peek())


def mm_set_unstable(k, mm) -> None:
    """``mm_set_unstable()`` (the OOM reaper): page faults on this mm must fail from now on.
    Kernel: include/linux/oom.h, v6.19+."""
    _pmd_state(mm)["unstable"].set(True, "mm_set_unstable")


def check_stable_address_space(k, mm) -> int:
    """``check_stable_address_space()``: -EFAULT for an mm the OOM reaper is tearing down.
    Kernel: include/linux/oom.h, v6.19+."""
    return -errno.EFAULT if _pmd_state(mm)["unstable"].get("check_stable_address_space") else 0


FUNCTIONS = (pmd_entry, pmd_lock, pte_alloc_one, pte_free, pgtable_trans_huge_deposit, pgtables_in_flight,
             mm_set_unstable, check_stable_address_space)
