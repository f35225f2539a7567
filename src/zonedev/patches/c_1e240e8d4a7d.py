"""1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate structure" and the rest of
Christoph Hellwig's "dev_pagemap related cleanups" (hmm-devmem-cleanup.4, v5.3).

[kernel_eras §5, M10, S4 (mm/memremap.c at 02fce139fd14): CONFIRMED content; the per-commit ids
of the series are UNCONFIRMED -- this module stands for the series]

* ``struct dev_pagemap_ops`` = ``page_free(page)``, ``kill(pgmap)``, ``cleanup(pgmap)``,
  ``migrate_to_ram(vmf)``; ``page_fault`` and ``data`` are gone (``page_free`` loses its data
  argument).  ``MEMORY_DEVICE_DEVDAX`` is added for device-dax.
* ``memremap_pages(pgmap, nid)`` / ``memunmap_pages(pgmap)`` (``devm_`` forms wrap them).  An
  optional **internal ref**: with no ``pgmap->ref`` the kernel uses ``internal_ref`` and the
  ``done`` completion (``dev_pagemap_percpu_release`` completes it); a caller that brings its own
  ref must provide both ``kill`` and ``cleanup``.
* PRIVATE needs ``page_free`` and ``migrate_to_ram``; PRIVATE and FS_DAX need ``page_free`` and
  take ``devmap_managed_key`` (the key moved here from the drivers: F16 fixed).  After the memmap
  init, one pgmap reference per page in bulk: ``percpu_ref_get_many(ref, nr_pfns)``.
* ``memunmap_pages``: (1) ``dev_pagemap_kill`` (ops->kill or ``percpu_ref_kill``); (2)
  ``put_page`` on every pfn; (3) ``dev_pagemap_cleanup`` (ops->cleanup, or wait for ``done``
  and ``percpu_ref_exit``); (4) remove the pages (``__remove_pages`` for PRIVATE,
  ``arch_remove_memory`` otherwise), delete from the xarray, drop the key.
* ``hmm_devmem_add`` and friends are removed: HMM drivers call ``memremap_pages`` themselves.

Audit: id <-> title INFERRED, not stated: kbuild-robot blame of include/linux/memremap.h (lkp
reports on the linux-mailinglist archives) attributes the ``@ops: method table`` kerneldoc line to
1e240e8d4a7d92 (Christoph Hellwig, 2019-06-26), the date and author of "[PATCH 09/25] memremap: move
dev_pagemap callbacks into a separate structure" (26 Jun 2019), the patch that adds ``ops``; the
title is in the hmm-devmem-cleanup.4 merge log (v5.3, consistent).  No Fixes:/quoted-title citation
of the id was found.
"""

from ..linux.include.memremap import (MEMORY_DEVICE_DEVDAX, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA,
                                      MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC)
from ._patch import Patch

PATCH = Patch(
    commit="1e240e8d4a7d", title="memremap: move dev_pagemap callbacks into a separate structure",
    version="v5.3", confidence="INFERRED",
    replaces="page_fault/page_free(page, data)/kill(ref)/cleanup(ref) as pgmap fields; drivers and HMM "
             "always brought their own percpu_ref; devm_memremap_pages only",
)
PATCH.remove("hmm_devmem_add", "hmm_devmem_remove", "hmm_devmem_release")
PATCH.set(
    memory_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_DEVDAX,
                  MEMORY_DEVICE_PCI_P2PDMA),
    type_names={"private": MEMORY_DEVICE_PRIVATE, "public": MEMORY_DEVICE_PUBLIC, "fsdax": MEMORY_DEVICE_FS_DAX,
                "generic": MEMORY_DEVICE_DEVDAX, "p2pdma": MEMORY_DEVICE_PCI_P2PDMA},
    free_refcount={MEMORY_DEVICE_PRIVATE: 1, MEMORY_DEVICE_PUBLIC: 1, MEMORY_DEVICE_FS_DAX: 1,
                   MEMORY_DEVICE_DEVDAX: 1, MEMORY_DEVICE_PCI_P2PDMA: 1},
    devmap_managed_types=(MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_FS_DAX),
    page_free_takes_data=False,
    fsdax_page_free="pmem_pagemap_page_free",     # drivers/nvdimm/pmem.c fsdax_pagemap_ops
    pgmap_ops=("page_free", "kill", "cleanup", "migrate_to_ram"),
)


@PATCH.define
def dev_pagemap_kill(k, pgmap, func: str = "dev_pagemap_kill") -> None:
    """``dev_pagemap_kill()``: the driver's ``ops->kill`` if it has one, else ``percpu_ref_kill`` of
    the internal ref.  Kernel: mm/memremap.c, as 1e240e8d4a7d "memremap: move dev_pagemap
    callbacks into a separate structure" (v5.3) has it."""
    if pgmap.ops.kill is not None:
        k.world.event(func, None, pgmap.name + ".callback", None, "kill")
        pgmap.ops.kill(pgmap)
    else:
        pgmap.ref.kill("percpu_ref_kill")


@PATCH.define
def dev_pagemap_cleanup(k, pgmap, func: str = "dev_pagemap_cleanup") -> None:
    """``dev_pagemap_cleanup()``: the driver's ``ops->cleanup`` if it has one, else wait for the
    internal ref to drain and exit it.  Kernel: mm/memremap.c, as 1e240e8d4a7d "memremap: move
    dev_pagemap callbacks into a separate structure" (v5.3) has it."""
    if pgmap.ops.cleanup is not None:
        k.world.event(func, None, pgmap.name + ".callback", None, "cleanup")
        pgmap.ops.cleanup(pgmap)
    else:
        pgmap.done.wait_for_completion("wait_for_completion")
        k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")


@PATCH.define
def memremap_pages_check(k, pgmap) -> None:
    """The type checks at the top of ``memremap_pages`` (``-EINVAL`` with a WARN).
    Kernel: mm/memremap.c, as 1e240e8d4a7d (v5.3) has it."""
    ops = pgmap.ops
    t = pgmap.type
    if t == MEMORY_DEVICE_PRIVATE and ((ops.page_free or ops.folio_free) is None or ops.migrate_to_ram is None):
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, "memremap_pages")
        raise ValueError("memremap_pages: MEMORY_DEVICE_PRIVATE needs page_free and migrate_to_ram")
    if t == MEMORY_DEVICE_FS_DAX and ops.page_free is None:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing page_free method\")", None, "memremap_pages")
        raise ValueError("memremap_pages: MEMORY_DEVICE_FS_DAX needs page_free in this kernel")


@PATCH.define
def dev_pagemap_init_ref(k, pgmap) -> None:
    """Use the internal ref unless the caller brought one (then kill and cleanup are required).
    Kernel: mm/memremap.c, as 1e240e8d4a7d (v5.3) has it."""
    if pgmap.ref is None:
        if pgmap.ops.kill is not None or pgmap.ops.cleanup is not None:
            k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing reference count teardown definition\")",
                            None, "memremap_pages")
            raise ValueError("memremap_pages: kill/cleanup given without a ref")
        k.pgmap_percpu_ref(pgmap, "dev_pagemap_percpu_release")
        pgmap.internal_ref = True
    elif pgmap.ops.kill is None or pgmap.ops.cleanup is None:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing reference count teardown definition\")",
                        None, "memremap_pages")
        raise ValueError("memremap_pages: an external ref needs kill and cleanup")


@PATCH.define
def devmap_managed_enable_get(k, pgmap) -> None:
    """``devmap_managed_enable_get()``: enable devmap_managed_key for the types whose final put the
    pgmap manages.  Kernel: mm/memremap.c, as 1e240e8d4a7d "memremap: move dev_pagemap callbacks
    into a separate structure" (v5.3) has it."""
    if pgmap.type in k.fact("devmap_managed_types"):
        k.dev_pagemap_get_ops()


@PATCH.define
def devmap_managed_enable_put(k, pgmap) -> None:
    """``devmap_managed_enable_put()``: drop that enable at unmap.  Kernel: mm/memremap.c, as
    1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate structure" (v5.3) has it."""
    if pgmap.type in k.fact("devmap_managed_types"):
        k.dev_pagemap_put_ops()


@PATCH.define
def pagemap_range(k, pgmap, rng) -> None:
    """One range of ``memremap_pages`` (a function of its own from v5.10): xarray store, add the
    memory, ``memmap_init_zone_device``, then one pgmap reference per (compound) page.

    Kernel: mm/memremap.c, as 1e240e8d4a7d (v5.3) has it."""
    k.pgmap_register(pgmap, "memremap_pages")
    k.memmap_init_zone_device(pgmap, rng[0], rng[1], "memmap_init_zone_device")
    k.pagemap_range_get_refs(pgmap, rng)


@PATCH.define
def pagemap_range_get_refs(k, pgmap, rng) -> None:
    """The references ``pagemap_range`` takes on the pgmap: one per page (per compound page with
    ``vmemmap_shift``).  Kernel: mm/memremap.c, as 1e240e8d4a7d "memremap: move dev_pagemap
    callbacks into a separate structure" (v5.3) has it."""
    pgmap.ref.get_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_get_many")


@PATCH.define
def memremap_pages(k, pgmap, nid: int = 0):
    """``memremap_pages()``: check the ops, set up the ref (internal or the driver's), enable
    devmap_managed_key where the type needs it, map every range.  Kernel: mm/memremap.c, as
    1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate structure" (v5.3) has it."""
    k.memremap_pages_check(pgmap)
    k.dev_pagemap_init_ref(pgmap)
    k.devmap_managed_enable_get(pgmap)
    for rng in pgmap.ranges:
        k.pagemap_range(pgmap, rng)
    return pgmap


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()``: kill, put every page's base reference, cleanup (wait for the ref),
    remove the ranges, drop the devmap_managed_key enable.  Kernel: mm/memremap.c, as
    1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate structure" (v5.3) has it."""
    k.dev_pagemap_kill(pgmap)
    k.devm_memremap_pages_put_pfns(pgmap, "memunmap_pages")
    k.dev_pagemap_cleanup(pgmap)
    k.pageunmap_range(pgmap)
    k.devmap_managed_enable_put(pgmap)


@PATCH.define
def pageunmap_range(k, pgmap) -> None:
    """Remove the pages and the xarray entry (``pageunmap_range`` from v5.10; inline before).
    Kernel: mm/memremap.c, as 1e240e8d4a7d (v5.3) has it."""
    k.remove_pages(pgmap, "__remove_pages" if pgmap.type == MEMORY_DEVICE_PRIVATE else "arch_remove_memory")
    k.pgmap_unregister(pgmap, "memunmap_pages")


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """``devm_memremap_pages()``: ``memremap_pages`` plus a devm action that unmaps.
    Kernel: mm/memremap.c, as 1e240e8d4a7d (v5.3) has it."""
    return k.memremap_pages(pgmap)


@PATCH.define
def devm_memunmap_pages(k, pgmap) -> None:
    """``devm_memunmap_pages()``: ``memunmap_pages`` of a devm-managed pgmap.  Kernel:
    mm/memremap.c, as 1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate
    structure" (v5.3) has it."""
    k.memunmap_pages(pgmap)


@PATCH.define
def devm_memremap_pages_release(k, pgmap) -> None:
    """The devm action of ``devm_memremap_pages``: ``memunmap_pages``.  Kernel: mm/memremap.c, as
    1e240e8d4a7d "memremap: move dev_pagemap callbacks into a separate structure" (v5.3) has it."""
    k.memunmap_pages(pgmap)
