"""Races whose verdict depends on RCU, and the lifetime rules the model checks by itself.

``get_dev_pagemap_vs_memunmap`` -- F11, 1e57ffb6e3fd "mm/memremap: fix memunmap_pages() race with
get_dev_pagemap()" (v6.0, Miaohe Lin; Fixes: b7b3c01b1915, v5.10).  A lookup
(``get_dev_pagemap``: ``rcu_read_lock``; xarray load; ``percpu_ref_tryget_live``;
``rcu_read_unlock``) runs while the driver unmaps the pgmap.  ``memunmap_pages`` exited the
percpu_ref (freeing its percpu memory) while the pgmap was still in ``pgmap_array``: a lookup that
finds it then touches freed memory (``percpu_ref_use_after_exit``).  From v6.0 the xarray erase
and its ``synchronize_rcu()`` come first: a lookup either misses the pgmap or, having found it
inside its read-side section, is done with the reference before the grace period ends and the
exit runs.  Without RCU in the model the fixed order would still be reported (the lookup could
load the pgmap, then the erase and the exit run, then the tryget) -- the fix is correct only
because of the grace period.

The window is older than its Fixes: tag (kernel_eras §12 says v5.10-v5.19).  kernel/memremap.c
of v5.2 (50f44ee7248a: ``devm_memremap_pages_release`` calls the driver's ``kill``, puts each pfn,
calls the driver's ``cleanup`` -- pmem/devdax: ``wait_for_completion`` then ``percpu_ref_exit``
-- and only then ``arch_remove_memory`` and ``pgmap_array_delete``) and mm/memremap.c of
v5.3-v5.9 (``memunmap_pages``: ``dev_pagemap_cleanup`` = wait then ``percpu_ref_exit``, then the
removal, ``pgmap_array_delete`` last) already exited before the erase, so the model finds F11
from v5.2.  Before v5.2 the driver waited and exited after the devm release had erased the
pgmap (and waited in ``synchronize_rcu``): clean.

    zonedev check scenarios/trust.py::get_dev_pagemap_vs_memunmap --kernel v5.19,v6.0
"""

import zonedev
from zonedev.linux.drivers.example import ExampleDriver


@zonedev.scenario(params={"kind": "generic"},
                  expect={"..v5.1": "safe", "v5.2..v5.19": "percpu_ref_use_after_exit", "v6.0..": "safe"},
                  refs=["F11", "1e57ffb6e3fd", "b7b3c01b1915"])
def get_dev_pagemap_vs_memunmap(k, kind):
    """Can get_dev_pagemap() touch the pgmap's freed percpu_ref while memunmap_pages() runs?
    Yes from v5.2 (exit before the xarray erase; F11, Fixes: b7b3c01b1915) to v5.19; no from
    v6.0 (1e57ffb6e3fd: erase, synchronize_rcu, then exit), nor before v5.2 (the driver waited
    and exited after devm_memremap_pages_release had erased the pgmap)."""
    drv = ExampleDriver(k, kind, nr_pages=1)
    drv.probe()
    pfn = drv.pgmap.pages[0].pfn

    def lookup():
        pgmap = k.get_dev_pagemap(pfn)
        if pgmap is not None:
            k.put_dev_pagemap(pgmap)

    def memunmap():
        drv.remove()

    return zonedev.Run({"lookup": lookup, "memunmap": memunmap}, opaque=[drv])
