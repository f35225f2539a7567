"""5042db43cc26 "mm/ZONE_DEVICE: new type of ZONE_DEVICE for unaddressable memory" (v4.14, HMM).

include/linux/memremap.h at v4.14 [kernel_eras §3, S1: CONFIRMED header; commit id CONFIRMED below]:
``enum memory_type { MEMORY_DEVICE_HOST = 0, MEMORY_DEVICE_PRIVATE, ... }``; ``struct
dev_pagemap`` gains ``page_fault``, ``page_free(page, data)``, ``data`` and ``type``.  The header
says ``page_free`` is called "once the page refcount reaches 1" and that ZONE_DEVICE pages never
reach 0 unless there is a refcount bug.  ``devm_memremap_pages`` hard-sets type HOST and
page_free NULL [S2].

Also here, from the same HMM series: mm/hmm.c ``hmm_devmem_add()`` (4ef589dc9b10 "mm/hmm/devmem:
device memory hotplug using ZONE_DEVICE", id UNCONFIRMED).  HMM pages only get ``page->pgmap``:
**no per-page pgmap reference** [M34 removal hunk, CONFIRMED].  The devmem ref is HMM's own
(``hmm_devmem_ref_release`` completes), killed and waited for before the pages go.  The static key
``device_private_key`` is switched on and never off (F16).

Teardown, ``hmm_devmem_remove()`` (mm/hmm.c of the v4.14-v4.20 era, read in a mailing-list copy
of the file): ``hmm_devmem_ref_kill`` (``percpu_ref_kill`` **and**
``wait_for_completion``) -> ``hmm_devmem_ref_exit`` (``percpu_ref_exit``) ->
``hmm_devmem_pages_remove``.  **The kernel disagrees with kernel_eras.md §3(d)**, which infers
kill -> release (remove pages) -> exit (wait) from the devm registration order: the kill action
itself waits, so the pages go only after the ref has drained.  Because HMM pages hold no
per-page pgmap reference, that wait still does not cover allocated pages: removing the pages
with one allocated is a use-after-free the wait cannot prevent.

Audit: CONFIRMED id <-> title: Fixes: 5042db43cc26 ("mm/ZONE_DEVICE: new type of ZONE_DEVICE for
unaddressable memory") (Steven Price, mm); kbuild blame 5042db43cc26f5 Jerome Glisse 2017-09-08
(v4.14 merge window); LTP's tst_max_swapfiles() cites it.
"""

from ..linux.include.memremap import MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="5042db43cc26", title="mm/ZONE_DEVICE: new type of ZONE_DEVICE for unaddressable memory",
    version="v4.14", confidence="CONFIRMED",
    replaces="only host (pmem/device-dax) ZONE_DEVICE pages existed",
)
PATCH.set(
    memory_types=(MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE),
    type_names={"generic": MEMORY_DEVICE_HOST, "private": MEMORY_DEVICE_PRIVATE},
    free_refcount={MEMORY_DEVICE_HOST: 1, MEMORY_DEVICE_PRIVATE: 1},
    pgmap_ops=("page_fault", "page_free"),
    zd_alloc="get_page+lock_page",
)


@PATCH.define
def hmm_devmem_add(k, pgmap):
    """mm/hmm.c v4.14: HMM's own pgmap ref; pages get ``page->pgmap`` and no pgmap reference."""
    k.pgmap_percpu_ref(pgmap, "hmm_devmem_ref_release")
    k.pgmap_register(pgmap, "hmm_devmem_add")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "hmm_devmem_pages_create")
    old = k.devmap_managed_key.get("static_branch_enable")
    k.devmap_managed_key.set(1, "static_branch_enable")          # device_private_key, never disabled
    k.world.event("hmm_devmem_add", None, "device_private_key", old, 1)
    return pgmap


@PATCH.define
def hmm_devmem_release(k, pgmap) -> None:
    """``hmm_devmem_pages_remove``: remove the pages (the ref is already exited).
    Kernel: mm/hmm.c, as 5042db43cc26 (v4.14) has it."""
    k.remove_pages(pgmap, "__remove_pages" if pgmap.type == MEMORY_DEVICE_PRIVATE else "arch_remove_memory")
    k.pgmap_unregister(pgmap, "hmm_devmem_release")


@PATCH.define
def hmm_devmem_remove(k, pgmap) -> None:
    """``hmm_devmem_remove``: kill and wait, exit, then remove the pages.
    Kernel: mm/hmm.c, as 5042db43cc26 (v4.14) has it."""
    pgmap.ref.kill("hmm_devmem_ref_kill")
    pgmap.done.wait_for_completion("wait_for_completion")     # inside hmm_devmem_ref_kill
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")         # hmm_devmem_ref_exit
    k.hmm_devmem_release(pgmap)                               # hmm_devmem_pages_remove
