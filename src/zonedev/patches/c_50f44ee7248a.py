"""50f44ee7248a "mm/devm_memremap_pages: fix final page put race" (v5.2-rc5, Dan Williams;
Fixes: 41e94a851304 "add devm_memremap_pages").

[kernel_eras §4.5, M9: CONFIRMED]  Adds ``cleanup(percpu_ref *)``.  Release becomes **kill ->
put every pfn -> cleanup (wait for the ref to go idle, then exit) -> arch_remove_memory**: the
memmap can no longer go while a page is referenced (F2 fixed).  pmem, device-dax, hmm and
p2pdma all provide ``cleanup`` instead of a devm exit action of their own.
"""

from ._patch import Patch

PATCH = Patch(
    commit="50f44ee7248a", title="mm/devm_memremap_pages: fix final page put race",
    version="v5.2", confidence="CONFIRMED", fixes="41e94a851304",
    replaces="devm_memremap_pages_release removed the memmap before anybody waited for the page "
             "references (the driver waited after release)",
)
PATCH.set(pgmap_ops=("page_fault", "page_free", "kill", "cleanup"))


@PATCH.define
def dev_pagemap_cleanup(k, pgmap, func: str = "dev_pagemap_cleanup") -> None:
    """``pgmap->cleanup(pgmap->ref)``: the driver waits for the ref and exits it.
    Kernel: mm/memremap.c, as 50f44ee7248a (v5.2) has it."""
    k.world.event(func, None, pgmap.name + ".callback", None, "cleanup")
    pgmap.ops.cleanup(pgmap.ref)


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """``devm_memremap_pages()``: ref, ``kill`` and ``cleanup`` are all required now (teardown waits
    for the pages' references in ``cleanup``); otherwise as before.  Kernel: mm/memremap.c, as
    50f44ee7248a "mm/devm_memremap_pages: fix final page put race" (v5.2) has it."""
    from ..linux.include.memremap import MEMORY_DEVICE_FS_DAX
    if pgmap.ref is None or pgmap.ops.kill is None or pgmap.ops.cleanup is None:
        k.world.violate("pgmap_bad_ops", "WARN(1, \"Missing reference count teardown definition\")", None,
                        "devm_memremap_pages")
        raise ValueError("devm_memremap_pages: ref, kill and cleanup are required")
    if pgmap.type == MEMORY_DEVICE_FS_DAX:
        k.dev_pagemap_get_ops()
    k.pgmap_register(pgmap, "devm_memremap_pages")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "memmap_init_zone_device")
        pgmap.ref.get_many(nr, "devm_memremap_pages")
    return pgmap


@PATCH.define
def devm_memremap_pages_release(k, pgmap) -> None:
    """kernel/memremap.c v5.2: kill -> put each pfn -> cleanup (wait) -> arch_remove_memory."""
    k.dev_pagemap_kill(pgmap)
    k.devm_memremap_pages_put_pfns(pgmap, "devm_memremap_pages_release")
    k.dev_pagemap_cleanup(pgmap)
    k.remove_pages(pgmap, "arch_remove_memory")
    k.pgmap_unregister(pgmap, "devm_memremap_pages_release")


@PATCH.define
def hmm_devmem_add(k, pgmap):
    """``hmm_devmem_add()``: HMM gives ``kill`` (percpu_ref_kill) and ``cleanup`` (wait for the ref,
    exit it) of its own, then ``devm_memremap_pages``.  Kernel: mm/hmm.c, as 50f44ee7248a
    "mm/devm_memremap_pages: fix final page put race" (v5.2) has it."""
    k.pgmap_percpu_ref(pgmap, "hmm_devmem_ref_release")
    if pgmap.ops.kill is None:
        pgmap.ops.kill = lambda ref: ref.kill("hmm_devmem_ref_kill")
    if pgmap.ops.cleanup is None:
        def cleanup(ref, pgmap=pgmap):
            pgmap.done.wait_for_completion("wait_for_completion")
            k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
        pgmap.ops.cleanup = cleanup
    k.devm_memremap_pages(pgmap)
    k.dev_pagemap_get_ops()
    return pgmap


@PATCH.define
def hmm_devmem_remove(k, pgmap) -> None:
    """``hmm_devmem_remove()``: the devm release: kill, put, cleanup, remove the pages.  Kernel:
    mm/hmm.c, as 50f44ee7248a "mm/devm_memremap_pages: fix final page put race" (v5.2) has it."""
    k.devm_memremap_pages_release(pgmap)
