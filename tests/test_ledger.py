"""The reference ledger (every leak, hang and livelock names the gets never put back, in text and
JSON) and honest verdicts (what "exhaustive" covers)."""

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.rt.check import check
from zonedev.rt.ledger import Entry, unbalanced
from zonedev.sync import RetryLoop, Var


def test_puts_match_their_own_threads_gets_first_then_the_oldest():
    e = lambda obj, d, t, step, fn: Entry(obj, fn, d, t, step, fn, None)
    entries = [e("page 0x1 refcount", 1, "setup", -1, "zone_device_page_init"),
               e("page 0x1 refcount", 1, "gup", 0, "get_page"),
               e("page 0x1 refcount", 1, "dma", 1, "get_page"),
               e("page 0x1 refcount", -1, "dma", 2, "put_page"),      # dma's own get
               e("page 0x1 refcount", -1, "owner", 3, "put_page")]    # the oldest: the allocation's
    left = unbalanced(entries, {"page 0x1 refcount": 0}, {"page 0x1 refcount": 1})
    assert [(x.thread, x.function) for x in left] == [("gup", "get_page")]
    # nothing is unbalanced on an object that holds nothing at the end
    assert unbalanced(entries, {"page 0x1 refcount": 0}, {"page 0x1 refcount": 0}) == []
    # references held before the first event are matched like gets made at the start
    kill = [e("pgmap ref p", 1, "dma", 0, "zone_device_page_init"), e("pgmap ref p", -1, "unmap", 1, "percpu_ref_kill")]
    left = unbalanced(kill, {"pgmap ref p": 1}, {"pgmap ref p": 1})
    assert [(x.thread, x.function) for x in left] == [("dma", "zone_device_page_init")]


# -- the reference ledger ---------------------------------------------------------------------

@zonedev.scenario(kernels=["v6.1"])
def dma_alloc_then_unmap(k):
    """A driver thread allocates a device page (zone_device_page_init takes a pgmap reference)
    and never frees it, while memunmap_pages runs: the wait for the pgmap reference hangs."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()

    def dma():
        drv.alloc()

    def memunmap():
        drv.remove()

    return zonedev.Run({"dma": dma, "memunmap": memunmap}, opaque=[drv])


@pytest.mark.parametrize("tables", [True, False])
def test_a_hang_names_the_reference_nobody_put(tables):
    res = check(dma_alloc_then_unmap, "v6.1", tables=tables)
    hangs = [f for f in res.findings if f.kind == "hang"]
    assert hangs
    f = hangs[0]
    pgmap_gets = [u for u in f.extra["unbalanced"] if u["object"].startswith("pgmap ref")]
    assert pgmap_gets and pgmap_gets[0]["function"] == "zone_device_page_init"
    assert pgmap_gets[0]["thread"] == "dma" and pgmap_gets[0]["step"] >= 0
    assert pgmap_gets[0]["holder"] == "0x100000"
    assert "held by page 0x100000, taken by zone_device_page_init in thread dma at step" in f.detail
    d = f.as_dict()
    assert d["unbalanced"] == f.extra["unbalanced"]
    assert set(d["unbalanced"][0]) >= {"object", "op", "thread", "step", "function"}


@zonedev.scenario(kernels=["v6.1"])
def forgotten_gup(k):
    """A GUP user takes a page reference and never puts it; the page is then freed by its
    owner: a reference nobody owns is left (a leak, by the scenario's final check)."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()

    def gup():
        k.get_page(page)

    def owner():
        k.put_page(page)

    def freed():
        return None if page._refcount.peek() == 0 else f"refcount {page._refcount.peek()} at the end"

    return zonedev.Run({"gup": gup, "owner": owner}, finally_=[zonedev.Check(freed, "leak", "page_freed")],
                       opaque=[drv])


def test_a_leak_names_the_get_never_put():
    res = check(forgotten_gup, "v6.1", tables=False)
    (f,) = [f for f in res.findings if f.kind == "leak"]
    mine = [u for u in f.extra["unbalanced"] if u["thread"] == "gup"]
    assert mine == [{"object": "page 0x100000 refcount", "op": "get_page", "thread": "gup", "step": mine[0]["step"],
                     "function": "get_page", "count": 1, "holder": None}]
    assert "page 0x100000 refcount, taken by get_page in thread gup at step" in f.detail


# -- honest verdicts ----------------------------------------------------------------------------

TRUST = "scenarios/trust.py::get_dev_pagemap_vs_memunmap"


def _f11():
    from pathlib import Path
    from zonedev.rt.scenario import load_scenarios
    return load_scenarios(Path(__file__).resolve().parent.parent / "scenarios" / "trust.py")["get_dev_pagemap_vs_memunmap"]


def test_a_finished_search_is_exhaustive():
    res = check(_f11(), "v6.0", tables=False)
    assert res.exhaustive and res.extent() == "exhaustive" and res.as_dict()["exhaustive_up_to"] is None


def test_a_bounded_search_says_up_to_how_many_preemptions():
    res = check(_f11(), "v5.19", preemptions=0, tables=False)
    assert not res.exhaustive
    assert res.extent() == "exhaustive up to 0 preemptions"
    d = res.as_dict()
    assert (d["exhaustive"], d["exhaustive_up_to"], d["bound"]) == (False, 0, 0)
    assert "exhaustive up to 0 preemptions" in res.summary()


def test_a_budget_cut_search_says_what_it_covered():
    res = check(_f11(), "v5.19", executions=2, tables=False, minimize=False)
    assert not res.exhaustive
    assert res.extent() == f"NOT exhaustive: stopped by the execution budget after {res.executions} executions"
    assert res.as_dict()["extent"] == res.extent()


@zonedev.scenario(kernel=False)
def ping_pong(k):
    """Two threads keep writing what the other retries on: a livelock that changes state for
    ever, so every execution runs into the step limit."""
    a, b = Var(0, "a"), Var(0, "b")

    def t(mine, other, name):
        def run():
            loop = RetryLoop(f"{name}: back off")
            while True:
                mine.set(mine.get() ^ 1)
                loop.retry([other])
        return run

    return zonedev.Run({"t0": t(a, b, "t0"), "t1": t(b, a, "t1")})


def test_executions_cut_at_the_step_limit_are_never_exhaustive():
    res = check(ping_pong, None, mode="naive", max_steps=12, executions=50, tables=False, minimize=False)
    assert res.truncated > 0 and not res.exhaustive
    assert "cut at the step limit" in res.extent()


@zonedev.scenario(kernel=False)
def mm_leak(k):
    """An mmget_not_zero() without its mmput() (F26's shape, on a bare counter)."""
    from zonedev.sync import Atomic
    users = Atomic(1, "mm7.mm_users")

    def evict():
        users.add_unless(1, 0, "mmget_not_zero")

    def users_back():
        return None if users.peek() == 1 else f"mm_users {users.peek()} at the end"

    return zonedev.Run({"evict": evict}, finally_=[zonedev.Check(users_back, "leak", "mm_users")])


def test_an_mm_reference_is_in_the_ledger():
    res = check(mm_leak, None, tables=False)
    (f,) = res.findings
    assert f.kind == "leak"
    assert [(u["object"], u["thread"], u["op"]) for u in f.extra["unbalanced"]] == [
        ("mm7.mm_users", "evict", "mmget_not_zero")]
