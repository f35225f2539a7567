"""The model's violation kinds: what the real kernel would WARN, BUG or crash on.

Each ``world.violate(kind, words, ...)`` in the model uses one of these kinds (a test holds every
call to this list), so a scenario's expected verdict can be checked for typos when it loads.
"""

from __future__ import annotations

from ..sync.kinds import finding_kind

VIOLATIONS: dict[str, str] = {
    "use_after_free": "memory (memmap, pgmap, percpu data, driver data) used after it was freed",
    "refcount_underflow": "a page refcount went below zero",
    "put_on_free_page": "a put on a page that was already free",
    "get_on_free_page": "a reference taken on a free page (VM_BUG_ON_PAGE / WARN on a zero count)",
    "init_of_busy_page": "zone_device_page_init on a page that is still referenced",
    "alloc_after_kill": "a device page allocated after memunmap_pages killed the pgmap reference",
    "page_free_twice": "the driver's page_free/folio_free called twice for one allocation",
    "page_free_while_referenced": "page_free called while somebody still holds the page",
    "free_without_page_free": "the free path reached a pgmap without the page_free it needs",
    "free_without_pgmap": "a ZONE_DEVICE folio freed without a pgmap",
    "device_page_to_allocator": "a ZONE_DEVICE page handed to the buddy allocator",
    "bad_page_state": "BUG: Bad page state (a freed page still mapped, locked or compound)",
    "mapcount_underflow": "BUG: Bad page map: mapcount underflow",
    "pincount_underflow": "a folio's pincount went below zero",
    "refcount_unfreeze_not_frozen": "page_ref_unfreeze of a page that was not frozen",
    "unlock_of_unlocked_page": "unlock_page on a page that was not locked",
    "percpu_ref_underflow": "percpu ref <= 0 after switching to atomic (a pgmap reference put too often)",
    "percpu_ref_use_after_exit": "a percpu_ref used after percpu_ref_exit freed its percpu data",
    "percpu_ref_double_kill": "percpu_ref_kill called twice",
    "pgmap_exit_in_use": "percpu_ref_exit on a pgmap reference that is still held",
    "pgmap_not_killed": "devm release found the pgmap reference still live",
    "pgmap_bad_ops": "memremap_pages refused the pgmap: a missing op or owner (WARN)",
    "fsdax_waiter_never_woken": "an fsdax break-layouts waiter can never be woken",
    "dax_mapping_lost": "the free path cleared ->mapping of an fsdax page still in its file (v4.18; 2fa147bdbf67)",
    "dax_disassociate_busy_page": "a DAX entry disassociated from a page that is still busy",
    "dax_associate_mapped_page": "a DAX entry associated with a page that already belongs to a file (WARN_ON_ONCE(folio->mapping))",
    "dax_zero_page_associated": "the shared zero page associated with a DAX file (F19: WARN_ON_ONCE(folio->mapping))",
    "dax_folio_not_split": "a DAX entry associated with a folio that is still large (WARN_ON_ONCE(folio_order(folio)) in dax_folio_init)",
    "bad_folio_memcg_data": "folio->memcg_data holds a value that is not a memcg (a former page[1]'s _nr_pages, F18): "
                            "__lruvec_stat_mod_folio dereferences it (BUG: kernel NULL pointer dereference)",
    "dax_to_folio_bad_pfn": "dax_to_folio() on an entry whose pfn has no struct page (a paging fault)",
    "dmirror_warn": "a WARN in lib/test_hmm.c (dmirror)",
    "pmd_not_present_bug": "kernel BUG: an arch PMD helper that assumes a present PMD met a PMD migration or "
                           "device-private entry (F25: VM_BUG_ON in powerpc pmdp_huge_get_and_clear_full)",
    "kref_underflow": "refcount_t: underflow; use-after-free (a kref -- a drm_pagemap_zdd -- put too often)",
    "pgmap_ref_below_allocated": "a PRIVATE/COHERENT pgmap holds fewer references than it has allocated pages "
                                 "(v6.1+: a pgmap reference put too often, or a page handed out without one)",
    "devmem_freed_in_use": "a driver's device-memory allocation released while a device page still points to it",
}

for _kind, _meaning in VIOLATIONS.items():
    finding_kind(_kind, _meaning)
