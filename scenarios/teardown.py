"""The ZONE_DEVICE teardown race: device-private pages still referenced while the driver unmaps
the pgmap (``memunmap_pages``).

v5.18 (27674ef6c73f) stopped taking a pgmap reference per allocated device-private page, so
``memunmap_pages`` no longer waits for them: the memmap is removed under a page somebody still
holds (the use-after-free fixed by 0dc45ca1ce18 in v6.1, which takes a pgmap reference in
``zone_device_page_init`` and drops it when the page is freed).

    zonedev check scenarios/teardown.py::teardown3 --kernel v5.18     # finds the use-after-free
    zonedev check scenarios/teardown.py::teardown3 --kernel v6.1      # no violation
    zonedev check scenarios/teardown.py::teardown --kernel v6.1 -p users=8

``teardown`` is the family of shared/bench/spin/teardown.pml (beside the checkout): one device-private page,
``users`` users each holding (and dropping) one reference, ``memunmap_pages`` on the pgmap.
"""

import zonedev
from zonedev.linux.drivers.example import ExampleDriver


def _device_page(k, refs):
    """Probe a one-page device-private pgmap, allocate its page the era's way, and take
    ``refs - 1`` more references (the allocation's own reference is the first)."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    for _ in range(refs - 1):
        k.get_page(page)
    return drv, drv.pgmap, page


def _no_page_left_behind(k, page):
    def page_freed():
        if k.zd_page_referenced(page):
            return f"page {page.pfn:#x}: refcount {page._refcount.peek()} at the end: a reference nobody owns"
        return None
    return zonedev.Check(page_freed, "leak", "page_freed")


def _state(drv, pgmap):
    return lambda: (tuple(p.memmap_live for p in pgmap.pages), len(drv.callbacks))


@zonedev.scenario(kernels=["v5.18", "v6.1"], mode="stateful")
def teardown3(k):
    """put_page from a GUP user, a migration's put of the source page, and memunmap_pages on
    the device-private pgmap, all at once."""
    drv, pgmap, page = _device_page(k, 2)   # the mapping's reference (migration drops it) + GUP's

    def gup_user():
        k.put_page(page)          # unpin_user_page / put_page after the DMA

    def migration():
        k.put_page(page)          # migrate_vma_finalize: drop the source page

    def memunmap():
        drv.remove()              # the driver's remove: memunmap_pages (v5.3+), its era's teardown before

    return zonedev.Run({"gup_user": gup_user, "migration": migration, "memunmap": memunmap},
                       finally_=[_no_page_left_behind(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(params={"users": 2}, kernels=["v5.18", "v6.1"], mode="stateful")
def teardown(k, users):
    """users identical threads each drop one reference to the page while memunmap_pages runs
    (teardown.pml's family; the users are symmetric)."""
    drv, pgmap, page = _device_page(k, users)

    def user():
        k.put_page(page)

    def memunmap():
        drv.remove()

    return zonedev.Run({**{f"user{i}": user for i in range(users)}, "memunmap": memunmap},
                       finally_=[_no_page_left_behind(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(params={"users": 3}, kernels=["v5.18", "v6.1"], mode="stateful")
def getput(k, users):
    """users threads each take a transient reference and drop it, then drop their own, while
    memunmap_pages runs (the ZONE_DEVICE throughput benchmark)."""
    drv, pgmap, page = _device_page(k, users)

    def user():
        k.get_page(page)
        k.put_page(page)
        k.put_page(page)

    def memunmap():
        drv.remove()

    return zonedev.Run({**{f"user{i}": user for i in range(users)}, "memunmap": memunmap},
                       finally_=[_no_page_left_behind(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(kernels=["v6.1"])
def forgotten_put(k):
    """A GUP user that never drops its reference: from v6.1 memunmap_pages waits for every
    allocated device-private page to be freed, so it waits forever (a hang, not a crash)."""
    drv, pgmap, page = _device_page(k, 2)

    def gup_user():
        k.get_page(page)          # ... and forgets the put_page

    def migration():
        k.put_page(page)

    return zonedev.Run({"gup_user": gup_user, "migration": migration, "memunmap": drv.remove},
                       state=_state(drv, pgmap), opaque=[drv])
