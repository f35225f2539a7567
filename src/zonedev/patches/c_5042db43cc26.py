"""5042db43cc26 "mm/ZONE_DEVICE: new type of ZONE_DEVICE for unaddressable memory" (v4.14, HMM).

include/linux/memremap.h at v4.14 [kernel_eras §3, S1: CONFIRMED header; commit id UNCONFIRMED]:
``enum memory_type { MEMORY_DEVICE_HOST = 0, MEMORY_DEVICE_PRIVATE, ... }``; ``struct
dev_pagemap`` gains ``page_fault``, ``page_free(page, data)``, ``data`` and ``type``.  The header
says ``page_free`` is called "once the page refcount reaches 1" and that ZONE_DEVICE pages never
reach 0 unless there is a refcount bug.  ``devm_memremap_pages`` hard-sets type HOST and
page_free NULL [S2].

Also here, from the same HMM series: mm/hmm.c ``hmm_devmem_add()`` (4ef589dc9b10 "mm/hmm/devmem:
device memory hotplug using ZONE_DEVICE", id UNCONFIRMED).  HMM pages only get ``page->pgmap``:
**no per-page pgmap reference** [M34 removal hunk, CONFIRMED].  The devmem ref is HMM's own
(``hmm_devmem_ref_release`` completes), killed and waited for by devm actions.  Teardown order
(devm actions, LIFO): ref kill -> ``hmm_devmem_release`` (warn if live, remove pages) -> ref exit
(wait, then ``percpu_ref_exit``) [INFERRED from the registration order in M34].  The static key
``device_private_key`` is switched on and never off (F16).
"""

from ..linux.include.memremap import MEMORY_DEVICE_HOST, MEMORY_DEVICE_PRIVATE
from ._patch import Patch

PATCH = Patch(
    commit="5042db43cc26", title="mm/ZONE_DEVICE: new type of ZONE_DEVICE for unaddressable memory",
    version="v4.14", confidence="UNCONFIRMED",
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
    """``hmm_devmem_release`` (devm action): warn if the ref is live, remove the pages."""
    k.pgmap_check_killed(pgmap, "hmm_devmem_release")
    k.remove_pages(pgmap, "__remove_pages" if pgmap.type == MEMORY_DEVICE_PRIVATE else "arch_remove_memory")
    k.pgmap_unregister(pgmap, "hmm_devmem_release")


@PATCH.define
def hmm_devmem_remove(k, pgmap) -> None:
    """The devm actions of an HMM devmem in LIFO order: ``hmm_devmem_ref_kill`` ->
    ``hmm_devmem_release`` -> ``hmm_devmem_ref_exit`` (wait for the ref, then exit)."""
    pgmap.ref.kill("hmm_devmem_ref_kill")
    k.hmm_devmem_release(pgmap)
    pgmap.done.wait_for_completion("wait_for_completion")
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
