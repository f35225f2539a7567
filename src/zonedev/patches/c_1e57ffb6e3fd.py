"""1e57ffb6e3fd "mm/memremap: fix memunmap_pages() race with get_dev_pagemap()" (v6.0, Miaohe
Lin; Fixes: b7b3c01b1915; stable backport to 5.19).

[kernel_eras §7, M16: CONFIRMED]  ``percpu_ref_exit`` ran before the pgmap left the xarray, so a
concurrent ``get_dev_pagemap`` -> ``percpu_ref_tryget_live`` could touch freed percpu memory
(F11).  Now ``pageunmap_range`` (xarray removal, synchronize_rcu) comes first and the exit last.
"""

from ._patch import Patch

PATCH = Patch(
    commit="1e57ffb6e3fd", title="mm/memremap: fix memunmap_pages() race with get_dev_pagemap()",
    version="v6.0", confidence="CONFIRMED", fixes="b7b3c01b1915",
    replaces="memunmap_pages exited the percpu_ref before removing the pgmap from the xarray",
)


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()``: kill, put the per-page references, wait, remove the ranges from the
    xarray and only then exit the ref, so a racing ``get_dev_pagemap`` never finds a pgmap whose
    ref is gone.  Kernel: mm/memremap.c, as 1e57ffb6e3fd "mm/memremap: fix memunmap_pages() race
    with get_dev_pagemap()" (v6.0) has it."""
    pgmap.ref.kill("percpu_ref_kill")
    for rng in pgmap.ranges:
        pgmap.ref.put_many(rng[1] >> pgmap.vmemmap_shift, "percpu_ref_put_many")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.pageunmap_range(pgmap)
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.devmap_managed_enable_put(pgmap)
