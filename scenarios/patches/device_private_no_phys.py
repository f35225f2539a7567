"""What if "Remove device private pages from physical address space" (Jordan Niethe, with
Alistair Popple; v5 posted Jan 2026, merge UNCONFIRMED -- kernel_2025_2026.md §2 "pending") were
applied to newest?

Read: mm/memremap.c of a tree carrying the series (``memremap_device_private_pagemap``,
``memunmap_device_private_pagemap``, ``device_private_offset_to_page``, and ``memremap_pages``
refusing MEMORY_DEVICE_PRIVATE with ``WARN(1, "Use memremap_device_private_pagemap()")``) and the
cover letter of the posting.

What changes:

* Device-private pages get no physical address range: ``memremap_device_private_pagemap(pgmap,
  nid)`` allocates ``pgmap->pages`` (``kvzalloc``), reserves a range of a separate *device
  private address space* in the ``device_private_pgmap_tree`` maple tree
  (``mtree_alloc_range``), inits the ref and completion, and initialises each page
  (``__init_zone_device_page``).  The pgmap is **not** stored in ``pgmap_array``: no pfn lookup
  (``get_dev_pagemap``) can find it any more.  A page is found from its device-private offset by
  ``device_private_offset_to_page`` (``mtree_load``; WARN if no pgmap), which is what the
  device-private swap entries now carry (the model keeps the pfn numbers as those offsets).
* ``memremap_pages`` refuses MEMORY_DEVICE_PRIVATE (WARN, -EINVAL).  The series converts
  test_hmm, nouveau, amdkfd, xe and the powerpc ultravisor to the new calls; the model's drivers
  still call ``memremap_pages``/``memunmap_pages``, so this patch routes a device-private pgmap to
  the new functions -- standing for that conversion.
* Teardown, ``memunmap_device_private_pagemap``: **kill -> wait -> exit -> free the pages
  (kvfree) -> erase from the tree**.  Compared with ``memunmap_pages`` (kill, wait, remove the
  memmap, erase from ``pgmap_array`` + ``synchronize_rcu()``, exit) the ref is exited before the
  pages go, and the pages go *before* the tree erase, which is not followed by a grace period: a
  ``device_private_offset_to_page`` between the kvfree and the erase would index freed memory.

What the matrix shows (``zonedev matrix --kernel newest --patch scenarios/patches/device_private_no_phys.py``,
every scenario of scenarios/ with expectations on newest -- 40 cells when measured): no verdict
changes, 40 match, 0 differ.  The window between the
kvfree and the erase is never reached by the modelled paths: after the wait every device page is
free, and nothing the model runs looks a free device page up by its offset then (the lookups come
from swap entries and from a driver's own pfn list, and a driver evicts before it unmaps).  The
device-private lookups that used to go through ``pgmap_array`` (``get_dev_pagemap`` on a
device-private pfn) now return nothing, which no modelled path relies on.  ``tests/test_k2026_whatif.py``
checks the new order step by step and that an offset lookup after the kvfree is reported.
"""

import zonedev
from zonedev.linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE
from zonedev.sync import Var

PATCH = zonedev.Patch(
    commit="dev-priv-no-phys", title="mm: Remove device private pages from physical address space",
    version="newest", confidence="UNCONFIRMED",
    replaces="device-private pages were hot-plugged into an unused physical range (add_pages) and found "
             "by pfn through pgmap_array",
)


def _tree(k):
    """``device_private_pgmap_tree`` (MTREE_INIT(..., MT_FLAGS_ALLOC_RANGE)), made on first use."""
    tree = k.__dict__.get("_device_private_pgmap_tree")
    if tree is None:
        tree = k._device_private_pgmap_tree = Var((), "device_private_pgmap_tree")
    return tree


@PATCH.define
def memremap_device_private_pagemap(k, pgmap, nid: int = 0) -> int:
    """``memremap_device_private_pagemap()``: checks, pages, a range in the maple tree, ref and
    completion, page init.  Returns 0 or a negative errno."""
    func = "memremap_device_private_pagemap"
    if pgmap.type != MEMORY_DEVICE_PRIVATE:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Not device private memory\")", None, func)
        return -22
    if pgmap.ops is None or pgmap.ops.migrate_to_ram is None:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing migrate_to_ram method\")", None, func)
        return -22
    if pgmap.owner is None:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing owner\")", None, func)
        return -22
    tree = _tree(k)
    tree.set(tree.get("mtree_alloc_range") + (pgmap,), "mtree_alloc_range")
    k.dev_pagemap_init_ref(pgmap)                      # init_completion + percpu_ref_init
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "__init_zone_device_page")
    return 0


@PATCH.define
def memunmap_device_private_pagemap(k, pgmap) -> None:
    """``memunmap_device_private_pagemap()``: kill, wait, exit, kvfree the pages, erase."""
    pgmap.ref.kill("percpu_ref_kill")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.remove_pages(pgmap, "kvfree(pgmap->pages)")
    tree = _tree(k)
    tree.set(tuple(m for m in tree.get("mtree_erase") if m is not pgmap), "mtree_erase")


@PATCH.define
def device_private_offset_to_page(k, offset: int):
    """``device_private_offset_to_page()``: ``mtree_load`` the pgmap, index its pages; WARN if no
    pgmap covers the offset.  A pgmap whose pages were freed but which is still in the tree is
    the kvfree-before-erase window."""
    for pgmap in _tree(k).get("mtree_load"):
        for start, nr in pgmap.ranges:
            if start <= offset < start + nr:
                page = pgmap.pages[offset - start]
                if not page.memmap_live:
                    k.world.violate("use_after_free", "BUG: KASAN: use-after-free in device_private_offset_to_page "
                                    "(pgmap->pages freed, the pgmap not yet erased from the tree)", offset,
                                    "device_private_offset_to_page")
                return page
    k.world.violate("use_after_free", "WARN_ON_ONCE(!pgmap)", offset, "device_private_offset_to_page")
    return None


@PATCH.define
def memremap_pages(k, pgmap, nid: int = 0):
    """``memremap_pages()`` refuses MEMORY_DEVICE_PRIVATE; the model's drivers are converted by
    routing their device-private pgmap to ``memremap_device_private_pagemap``."""
    if pgmap.type == MEMORY_DEVICE_PRIVATE:
        err = k.memremap_device_private_pagemap(pgmap, nid)
        if err:
            raise ValueError(f"memremap_device_private_pagemap: {err}")
        return pgmap
    k.memremap_pages_check(pgmap)
    k.dev_pagemap_init_ref(pgmap)
    k.devmap_managed_enable_get(pgmap)
    for rng in pgmap.ranges:
        k.pagemap_range(pgmap, rng)
    return pgmap


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()`` for the other types (newest, 0dc45ca1ce18's order); a device-private
    pgmap goes to ``memunmap_device_private_pagemap`` (the converted drivers)."""
    if pgmap.type == MEMORY_DEVICE_PRIVATE:
        k.memunmap_device_private_pagemap(pgmap)
        return
    pgmap.ref.kill("percpu_ref_kill")
    if pgmap.type != MEMORY_DEVICE_COHERENT:
        for rng in pgmap.ranges:
            pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.pageunmap_range(pgmap)
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.devmap_managed_enable_put(pgmap)
