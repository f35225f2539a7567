"""Lifetime rules the model checks by itself (no scenario invariant needed): a driver callback
on a pgmap no longer held alive, and anything touching a pgmap, its pages or its percpu_ref
after the teardown, is reported."""

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE
from zonedev.patches._patch import Patch
from zonedev.rt.check import check

PUT_BEFORE_FREE = Patch(
    commit="1111111111", title="planted: put_dev_pagemap() before the driver's page_free()", version="v6.1",
    confidence="UNCONFIRMED",
    replaces="free_zone_device_page dropped the pgmap reference after page_free",
)


@PUT_BEFORE_FREE.define
def free_zone_device_page(k, page) -> None:
    """v6.1's free_zone_device_page with the pgmap reference dropped first: the drained
    reference lets memunmap_pages() return while the driver's page_free still runs."""
    func = "free_zone_device_page"
    pgmap = page.pgmap
    k.mem_cgroup_uncharge(page, func)
    if k.PageAnon(page):
        k.__ClearPageAnonExclusive(page, func)
    k.set_page_field(page, "mapping", None, func)
    if pgmap.type in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        k.put_dev_pagemap(pgmap)
    k.call_page_free(page, func)
    if pgmap.type not in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        k.set_page_count(page, 1, func)


@zonedev.scenario(kernels=["v6.1"])
def free_vs_memunmap(k):
    """The last put of an allocated device-private page (which runs the driver's page_free)
    while the driver unmaps the pgmap."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()

    def user():
        k.put_page(page)

    def memunmap():
        drv.remove()

    return zonedev.Run({"user": user, "memunmap": memunmap}, opaque=[drv])


def _kinds(res):
    return {f.kind for f in res.findings}


def test_v61_free_vs_memunmap_is_clean():
    res = check(free_vs_memunmap, "v6.1", tables=False)
    assert res.exhaustive and res.executions > 1
    assert _kinds(res) == set()


def test_put_dev_pagemap_before_page_free_is_found_by_the_model_itself():
    res = check(free_vs_memunmap, "v6.1", patches=[PUT_BEFORE_FREE], tables=False)
    assert _kinds(res) == {"use_after_free"}
    (f,) = res.findings
    assert "dev_pagemap_ops callback" in f.message
    assert "page_free" in f.detail or "free_zone_device_page" in f.detail


def test_a_callback_on_a_pgmap_after_its_teardown_is_a_violation():
    """Sequentially: tear the pgmap down, then run the driver's page_free on one of its pages."""
    with zonedev.sync.use_world() as world:
        k = zonedev.kernel("v6.1")
        drv = ExampleDriver(k, "generic", nr_pages=1)
        drv.probe()
        page = drv.pgmap.pages[0]
        drv.remove()
        assert not k.zd_check_pgmap_held(drv.pgmap, "page_free", page.pfn)
        assert [v.kind for v in world.violations] == ["use_after_free"]
        assert "exited" in world.violations[0].detail


def test_a_lookup_after_the_teardown_touches_nothing():
    """After memunmap_pages() returned, get_dev_pagemap misses the pgmap (it left the xarray
    before the exit) on a fixed kernel; on v5.19 the order is the F11 window, found by the
    scenario in scenarios/trust.py."""
    with zonedev.sync.use_world() as world:
        k = zonedev.kernel("v6.1")
        drv = ExampleDriver(k, "generic", nr_pages=1)
        drv.probe()
        pfn = drv.pgmap.pages[0].pfn
        drv.remove()
        assert k.get_dev_pagemap(pfn) is None
        assert world.violations == []


def test_a_folio_split_callback_after_the_teardown_is_a_violation():
    """newest (v6.19+, 56ef39899643): ``zone_device_private_split_cb`` calls the driver's
    ``folio_split``; run on a pgmap whose teardown has finished, it is a use after free."""
    with zonedev.sync.use_world() as world:
        k = zonedev.kernel("newest")
        drv = ExampleDriver(k, "private", nr_pages=2)
        drv.probe()
        head, tail = drv.pgmap.pages
        k.zone_device_private_split_cb(head, tail)          # while the pgmap lives: fine
        assert world.violations == [] and ("folio_split", head.pfn) in drv.callbacks
        drv.remove()
        k.zone_device_private_split_cb(head, tail)
        assert [v.kind for v in world.violations] == ["use_after_free"]
        assert "folio_split" in world.violations[0].detail
