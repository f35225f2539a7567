"""Invariants: a scenario's own (reported under the kind it names) and the kernel_eras.md §13
invariants the model checks by itself."""

import zonedev
from zonedev.sync import Lock, Var
from zonedev.rt.check import check

LOST_INCREMENT = zonedev.finding_kind("lost_increment", "a planted invariant of tests/test_invariants.py")


@zonedev.scenario(params={"locked": False}, kernel=False)
def counter_inv(k, locked):
    """Two threads increment a counter (an invariant 'at most 2' and a final check 'both
    counted', each with its own kind).  Unlocked, a read-modify-write can lose an increment."""
    lock = Lock("lock")
    counter = Var(0, "counter")

    def inc():
        if locked:
            lock.lock()
        v = counter.get("READ counter")
        counter.set(v + 1, "WRITE counter")
        if locked:
            lock.unlock()

    def both_counted():
        return None if counter.peek() == 2 else f"counter is {counter.peek()}, expected 2"

    return zonedev.Run({"a": inc, "b": inc},
                       invariants=[zonedev.Check(lambda: counter.peek() <= 2, "invariant", "at_most_2")],
                       finally_=[zonedev.Check(both_counted, LOST_INCREMENT, "both_counted")])


@zonedev.scenario(params={"bound": 2}, kernel=False)
def bounded(k, bound):
    """One thread counts to 2; the invariant Check(kind=lost_increment) fails when the counter
    passes ``bound``; a bare callable invariant is reported as kind 'invariant'."""
    counter = Var(0, "counter")

    def inc():
        counter.set(counter.get() + 1)
        counter.set(counter.get() + 1)

    return zonedev.Run({"a": inc},
                       invariants=[zonedev.Check(lambda: counter.peek() <= bound, LOST_INCREMENT, "at_most"),
                                   lambda: counter.peek() <= bound + 1])


def test_an_invariant_check_is_reported_under_its_own_kind():
    res = check(bounded, params={"bound": 1}, tables=False)
    assert {(f.kind, f.detail) for f in res.findings} == {(LOST_INCREMENT, "at_most")}
    assert all(f.step >= 0 for f in res.findings)          # after a step, not at the end


def test_a_bare_callable_invariant_keeps_kind_invariant():
    res = check(bounded, params={"bound": 0}, tables=False)
    assert {f.kind for f in res.findings} == {LOST_INCREMENT, "invariant"}


def test_invariant_holds_no_finding():
    assert check(bounded, params={"bound": 2}, tables=False).ok


def test_final_and_invariant_kinds_side_by_side():
    bad = check(counter_inv, params={"locked": False}, tables=False)
    assert {f.kind for f in bad.findings} == {LOST_INCREMENT}
    good = check(counter_inv, params={"locked": True}, tables=False)
    assert good.ok and good.exhaustive


# -- kernel_eras.md §13: pgmap reference count >= allocated PRIVATE/COHERENT pages (v6.1+) ---------

from zonedev.linux.drivers.example import ExampleDriver                      # noqa: E402
from zonedev.linux.include.memremap import MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE  # noqa: E402
from zonedev.patches._patch import Patch                                     # noqa: E402
from test_lifetimes import free_vs_memunmap                                  # noqa: E402  (the last put racing the teardown)

DOUBLE_PUT = Patch(
    commit="2222222222", title="planted: free_zone_device_page drops the pgmap reference twice", version="v6.1",
    confidence="UNCONFIRMED",
    replaces="free_zone_device_page dropped the pgmap reference once, after page_free",
)


@DOUBLE_PUT.define
def free_zone_device_page(k, page) -> None:
    """v6.1's free_zone_device_page (mm/memremap.c, 0dc45ca1ce18) with a second put_dev_pagemap:
    the pgmap then counts one page fewer than are allocated."""
    func = "free_zone_device_page"
    pgmap = page.pgmap
    k.mem_cgroup_uncharge(page, func)
    k.set_page_field(page, "mapping", None, func)
    k.call_page_free(page, func)
    if pgmap.type in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT):
        k.put_dev_pagemap(pgmap)
        k.put_dev_pagemap(pgmap)
        k.zd_check_pgmap_ref_covers(pgmap, func)
    else:
        k.set_page_count(page, 1, func)


@zonedev.scenario(kernels=["v6.1"])
def two_frees_vs_memunmap(k):
    """Two allocated device-private pages: one user frees the first, the driver frees the second
    and unmaps the pgmap, concurrently."""
    drv = ExampleDriver(k, "private", nr_pages=2)
    drv.probe()
    a, _ = drv.alloc()
    b, _ = drv.alloc()

    def user():
        k.put_page(a)

    def memunmap():
        k.put_page(b)
        drv.remove()

    return zonedev.Run({"user": user, "memunmap": memunmap}, opaque=[drv])


def test_v61_pgmap_ref_covers_allocated_pages():
    res = check(two_frees_vs_memunmap, "v6.1", tables=False)
    assert res.exhaustive and res.executions > 1
    assert res.ok, [f.message for f in res.findings]


def test_a_second_put_dev_pagemap_in_the_free_path_is_found():
    res = check(two_frees_vs_memunmap, "v6.1", patches=[DOUBLE_PUT], tables=False)
    kinds = {f.kind for f in res.findings}
    assert "pgmap_ref_below_allocated" in kinds, kinds
    f = next(f for f in res.findings if f.kind == "pgmap_ref_below_allocated")
    assert "free_zone_device_page" in f.detail and "allocated" in f.detail


def test_the_check_is_sequential_too():
    """After the doubled put, the still-allocated page is not covered: found with no race."""
    with zonedev.sync.use_world() as world:
        k = zonedev.kernel("v6.1")
        drv = ExampleDriver(k, "private", nr_pages=2)
        drv.probe()
        a, _ = drv.alloc()
        drv.alloc()
        assert k.zd_allocated_pages(drv.pgmap) == 2
        k.put_page(a)
        assert world.violations == []
        k.put_dev_pagemap(drv.pgmap)          # one put too many
        assert not k.zd_check_pgmap_ref_covers(drv.pgmap, "test")
        assert [v.kind for v in world.violations] == ["pgmap_ref_below_allocated"]


# -- kernel_eras.md §13: a zone-device page at refcount 0 never reaches the buddy allocator (v4.12+) -

NO_ZONE_DEVICE_ROUTE = Patch(
    commit="3333333333", title="planted: __folio_put without its is_zone_device check", version="v6.1",
    confidence="UNCONFIRMED",
    replaces="__folio_put sent ZONE_DEVICE folios to free_zone_device_page",
)


@NO_ZONE_DEVICE_ROUTE.define
def __folio_put(k, folio) -> None:
    """mm/swap.c ``__folio_put`` (v5.18+, 27674ef6c73f) with the ZONE_DEVICE branch removed:
    every folio at refcount 0 goes to the page allocator."""
    k.free_the_page(folio, folio.order, "__folio_put")


def test_v61_device_page_last_put_goes_to_the_zone_device_free_path():
    assert check(free_vs_memunmap, "v6.1", tables=False).ok


def test_a_device_page_routed_to_the_buddy_allocator_is_found():
    res = check(free_vs_memunmap, "v6.1", patches=[NO_ZONE_DEVICE_ROUTE], tables=False)
    kinds = {f.kind for f in res.findings}
    assert "device_page_to_allocator" in kinds, kinds
    f = next(f for f in res.findings if f.kind == "device_page_to_allocator")
    assert "Bad page state" in f.message
