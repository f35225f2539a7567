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


def _state(drv, pgmap):
    return lambda: (tuple(p.memmap_live for p in pgmap.pages), len(drv.callbacks))


@zonedev.scenario(kernels=["v5.18", "v6.1"], mode="stateful")
def teardown3(k):
    """put_page from a GUP user, a migration's put of the source page, and memunmap_pages on
    the device-private pgmap, all at once.  The same race on every kernel from v4.14 is the
    catalogue's F8 (scenarios/catalogue.py::f8_memunmap_vs_mapped_private_page), with its
    expectations; this copy declares none (tests/test_bisect.py uses it as the scenario
    without expect=)."""
    drv, pgmap, page = _device_page(k, 2)   # the mapping's reference (migration drops it) + GUP's

    def gup_user():
        k.put_page(page)          # unpin_user_page / put_page after the DMA

    def migration():
        k.put_page(page)          # migrate_vma_finalize: drop the source page

    def memunmap():
        drv.remove()              # the driver's remove: memunmap_pages (v5.3+), its era's teardown before

    return zonedev.Run({"gup_user": gup_user, "migration": migration, "memunmap": memunmap},
                       finally_=[zonedev.expect_page_freed(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(params={"users": 2}, kernels=["v5.18", "v6.1"], mode="stateful",
                  expect={"v4.14..v4.20": "use_after_free",
                          "v5.0": ["page_free_while_referenced", "use_after_free"],
                          "v5.2..v5.17": ["page_free_while_referenced", "use_after_free"],
                          "v5.18..v6.0": "use_after_free",
                          "v6.1..": "safe"},
                  refs=["F7", "F8", "0dc45ca1ce18", "27674ef6c73f"])
def teardown(k, users):
    """users identical threads each drop one reference to the page while memunmap_pages runs
    (teardown.pml's family; the users are symmetric).  Expected with the default 2 users: a
    use-after-free wherever memunmap_pages does not wait for the page (HMM v4.14-v4.20; v5.0,
    whose devm release removes the memmap under the held page, F2, until 50f44ee7248a in v5.2;
    and v5.18-v6.0, F8: 27674ef6c73f dropped the per-page pgmap reference), page_free on a page
    the users still hold where the teardown put of each pfn takes it to 1 (v5.0-v5.17, F7; that
    put went with 27674ef6c73f), safe from v6.1 (0dc45ca1ce18: a pgmap reference per allocated
    page, so memunmap_pages waits)."""
    drv, pgmap, page = _device_page(k, users)

    def user():
        k.put_page(page)

    def memunmap():
        drv.remove()

    return zonedev.Run({**{f"user{i}": user for i in range(users)}, "memunmap": memunmap},
                       finally_=[zonedev.expect_page_freed(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(params={"users": 3}, kernels=["v5.18", "v6.1"], mode="stateful",
                  expect={"v5.17": ["page_free_twice", "page_free_while_referenced", "use_after_free"],
                          "v5.18": "use_after_free", "v6.1": "safe", "newest": "safe"},
                  refs=["F7", "F8", "0dc45ca1ce18"])
def getput(k, users):
    """users threads each take a transient reference and drop it, then drop their own, while
    memunmap_pages runs (the ZONE_DEVICE throughput benchmark).  In the 1-based eras a page
    crosses 2 -> 1 several times, so page_free runs twice as well (v5.17, F7); v5.18
    (27674ef6c73f) removes the memmap under the users (F8); v6.1 (0dc45ca1ce18) and newest are
    safe.  1-3 s per kernel
    with 3 users, so the expectation names the kernels either side of 27674ef6c73f and
    0dc45ca1ce18, and newest."""
    drv, pgmap, page = _device_page(k, users)

    def user():
        k.get_page(page)
        k.put_page(page)
        k.put_page(page)

    def memunmap():
        drv.remove()

    return zonedev.Run({**{f"user{i}": user for i in range(users)}, "memunmap": memunmap},
                       finally_=[zonedev.expect_page_freed(k, page)],
                       state=_state(drv, pgmap), opaque=[drv])


@zonedev.scenario(kernels=["v6.1"], expect={"v5.18..v6.0": "use_after_free", "v6.1..": "hang"},
                  refs=["F10", "F8", "0dc45ca1ce18"])
def forgotten_put(k):
    """A GUP user that never drops its reference: from v6.1 memunmap_pages waits for every
    allocated device-private page to be freed, so it waits forever (a hang, not a crash: F10's
    shape).  v5.18-v6.0 do not wait, and remove the memmap under the page (F8)."""
    drv, pgmap, page = _device_page(k, 2)

    def gup_user():
        k.get_page(page)          # ... and forgets the put_page

    def migration():
        k.put_page(page)

    return zonedev.Run({"gup_user": gup_user, "migration": migration, "memunmap": drv.remove},
                       state=_state(drv, pgmap), opaque=[drv])
