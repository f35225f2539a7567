"""b80892ca022e "memremap: remove support for external pgmap refcounts" (v5.17, Christoph
Hellwig; in the dax pull).

[kernel_eras §6.5, M18: CONFIRMED; v5.17 INFERRED]  No user brings its own ref any more: ``ref``
is embedded in ``struct dev_pagemap``; ``internal_ref``, ``ops->kill`` and ``ops->cleanup`` go.
``memunmap_pages`` (v5.17): ``percpu_ref_kill`` -> ``put_page`` on each pfn -> wait for
``done`` -> ``percpu_ref_exit`` -> ``pageunmap_range`` [INFERRED from the 1e57ffb6e3fd
pre-image, M16].  The exit before the xarray removal is the window of F11 (a concurrent
``get_dev_pagemap`` finds the pgmap and touches freed percpu memory), fixed by 1e57ffb6e3fd.
"""

from ._patch import Patch

PATCH = Patch(
    commit="b80892ca022e", title="memremap: remove support for external pgmap refcounts",
    version="v5.17", confidence="CONFIRMED",
    replaces="a driver could bring its own percpu_ref with kill/cleanup callbacks",
)
PATCH.remove("dev_pagemap_kill", "dev_pagemap_cleanup")
PATCH.set(pgmap_ops=("page_free", "migrate_to_ram"))


@PATCH.define
def dev_pagemap_init_ref(k, pgmap) -> None:
    """The internal percpu_ref of the pgmap, released into ``dev_pagemap_percpu_release`` (the
    drivers no longer bring their own).  Kernel: mm/memremap.c, as b80892ca022e "memremap: remove
    support for external pgmap refcounts" (v5.17) has it."""
    k.pgmap_percpu_ref(pgmap, "dev_pagemap_percpu_release")


@PATCH.define
def memunmap_pages(k, pgmap) -> None:
    """``memunmap_pages()`` with the internal ref: kill, put every page's base reference, wait for
    the ref, exit it, remove the ranges.  Kernel: mm/memremap.c, as b80892ca022e "memremap:
    remove support for external pgmap refcounts" (v5.17) has it."""
    pgmap.ref.kill("percpu_ref_kill")
    k.devm_memremap_pages_put_pfns(pgmap, "memunmap_pages")
    pgmap.done.wait_for_completion("wait_for_completion")
    k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
    k.pageunmap_range(pgmap)
    k.devmap_managed_enable_put(pgmap)
