"""struct page, page_ref operations, the buddy allocator, GUP pin accounting, the event log,
the pgmap percpu_ref life cycle and the failure modes F2/F5/F11 -- on the kernels that had them.
"""

from __future__ import annotations

import pytest

from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.memremap import MEMORY_DEVICE_PRIVATE, dev_pagemap, dev_pagemap_ops
from zonedev.linux.include.mm import FOLL_GET, FOLL_PIN, GUP_PIN_COUNTING_BIAS
from zonedev.patches import KERNELS, kernel, version_key
from zonedev.sync import Scheduler, World, use_world
from zonedev.sync.world import WouldBlockForever


def V(name):
    return version_key(name)


def kinds(w):
    return [v.kind for v in w.violations]


@pytest.fixture
def world():
    with use_world(World()) as w:
        yield w


# --- page_ref and the event log ------------------------------------------------------------------

def test_page_ref_ops_and_events(world):
    k = kernel("v6.1")
    p = k.alloc_page()
    assert k.page_count(p) == 1
    k.page_ref_inc(p)
    k.page_ref_add(p, 3)
    assert k.page_ref_dec_return(p) == 4
    assert k.page_ref_sub_return(p, 2) == 2
    assert not k.page_ref_dec_and_test(p)
    assert k.page_ref_add_unless(p, 1, 0)
    assert k.page_ref_freeze(p, 2) and k.page_ref_count(p) == 0
    assert not k.page_ref_add_unless(p, 1, 0)         # get_page_unless_zero fails while frozen
    k.page_ref_unfreeze(p, 2)
    assert not k.page_ref_freeze(p, 5)
    k.set_page_count(p, 1)
    ev = [(e.func, e.pfn, e.field, e.old, e.new) for e in world.events if e.field == "_refcount"]
    assert ev[:5] == [("alloc_page", p.pfn, "_refcount", 0, 1), ("page_ref_inc", p.pfn, "_refcount", 1, 2),
                      ("page_ref_add", p.pfn, "_refcount", 2, 5), ("page_ref_dec_return", p.pfn, "_refcount", 5, 4),
                      ("page_ref_sub_return", p.pfn, "_refcount", 4, 2)]
    assert all(e.thread == "main" for e in world.events)
    steps = [e.step for e in world.events]
    assert steps == sorted(steps)
    assert kinds(world) == []


def test_refcount_underflow_and_put_on_free(world):
    k = kernel("newest")
    p = k.alloc_page()
    k.page_ref_inc(p)
    k.page_ref_sub(p, 5)                      # 2 -> -3
    assert kinds(world) == ["refcount_underflow"]
    q = k.alloc_page()
    k.set_page_count(q, 0)
    k.page_ref_dec(q)
    assert kinds(world)[-1] == "put_on_free_page"
    v = world.violations[-1]
    assert v.pfn == q.pfn and "page_ref_count(page) == 0" in v.words and v.step > 0


@pytest.mark.parametrize("k_name", KERNELS)
def test_buddy_allocator_and_use_after_free(world, k_name):
    k = kernel(k_name)
    a = k.alloc_page()
    b = k.alloc_pages(2)
    assert a.pfn != b.pfn and b.order == 2 and k.page_count(b) == 1
    assert k.memmap[b.pfn + 3].head is b
    k.get_page(a)
    k.put_page(a)
    assert not k.page_is_buddy_free(a)
    k.put_page(a)                              # last reference: back to the allocator
    assert k.page_is_buddy_free(a) and kinds(world) == []
    c = k.alloc_page()
    assert c is a and k.page_count(c) == 1     # LIFO reuse, refcount 1 again
    k.__free_pages(b, 2)
    assert k.page_is_buddy_free(b)
    k.get_page(b)                              # touching a freed page
    assert "use_after_free" in kinds(world)


def test_get_page_on_free_page(world):
    k = kernel("v6.1")
    drv = ExampleDriver(k, "private")
    drv.probe()
    page = drv.pgmap.pages[0]
    assert k.page_count(page) == 0
    k.get_page(page)                           # free device-private pages are at 0 since v6.1
    assert kinds(world) == ["get_on_free_page"]


# --- GUP pin accounting ---------------------------------------------------------------------------

@pytest.mark.parametrize("k_name", [k for k in KERNELS if V(k) >= V("v5.6")])
def test_pin_small_page(world, k_name):
    k = kernel(k_name)
    p = k.alloc_page()
    assert k.pin_user_page(p)
    bias = GUP_PIN_COUNTING_BIAS if V(k_name) >= V("v5.7") else 1
    assert k.fact("GUP_PIN_COUNTING_BIAS") == (bias if bias > 1 else None)
    assert k.page_count(p) == 1 + bias
    if k.has("page_maybe_dma_pinned"):
        assert k.page_maybe_dma_pinned(p)
    k.unpin_user_page(p)
    assert k.page_count(p) == 1
    if k.has("page_maybe_dma_pinned"):
        assert not k.page_maybe_dma_pinned(p)
    k.put_page(p)
    assert k.page_is_buddy_free(p) and kinds(world) == []


@pytest.mark.parametrize("k_name", [k for k in KERNELS if V(k) >= V("v5.7")])
def test_pin_large_folio_uses_pincount(world, k_name):
    k = kernel(k_name)
    order = 1 if V(k_name) >= V("v5.18") else 2     # hpage_pincount needed order > 1 before folios
    f = k.alloc_pages(order)
    assert k.try_grab_page(f, FOLL_PIN)
    assert k.page_count(f) == 2 and f._pincount.peek() == 1
    assert k.page_maybe_dma_pinned(f)
    k.unpin_user_page(k.memmap[f.pfn + 1])          # a tail page unpins the folio
    assert k.page_count(f) == 1 and f._pincount.peek() == 0
    assert k.try_grab_page(f, FOLL_GET) and k.page_count(f) == 2
    assert kinds(world) == []


def test_unpin_without_pin_underflows(world):
    k = kernel("v6.1")
    p = k.alloc_page()
    k.unpin_user_page(p)
    assert kinds(world) == ["refcount_underflow"]


def test_try_grab_folio_v518(world):
    k = kernel("v5.18")
    p = k.alloc_page()
    f = k.try_grab_folio(p, 2, FOLL_PIN)
    assert f is p and k.page_count(p) == 1 + 2 * GUP_PIN_COUNTING_BIAS
    k.gup_put_folio(f, 2, FOLL_PIN)
    assert k.page_count(p) == 1


# --- pgmap percpu_ref life cycle ------------------------------------------------------------------

@pytest.mark.parametrize("k_name", ["v6.1", "v6.15", "newest"])
def test_pgmap_ref_life_cycle(world, k_name):
    k = kernel(k_name)
    drv = ExampleDriver(k, "private")
    drv.probe()
    ref = drv.pgmap.ref
    pfn = drv.pgmap.pages[2].pfn
    pgmap = k.get_dev_pagemap(pfn)
    assert pgmap is drv.pgmap and ref.count == 2
    k.put_dev_pagemap(pgmap)
    page, _ = drv.alloc()
    assert ref.count == 2 and not ref.dead
    ref.kill()                                         # killed: tryget_live fails
    assert ref.dead and k.get_dev_pagemap(pfn) is None
    assert not ref.released
    drv.release(page)                                  # drained: release fires, done completes
    assert ref.released and drv.pgmap.done.done == 1
    drv.pgmap.done.wait_for_completion()
    k.percpu_ref_exit_pgmap(drv.pgmap)                 # exited
    assert ref.exited and kinds(world) == []


def test_pgmap_exit_in_use(world):
    k = kernel("v6.1")
    drv = ExampleDriver(k, "private")
    drv.probe()
    drv.alloc()
    k.percpu_ref_exit_pgmap(drv.pgmap)
    assert kinds(world) == ["pgmap_exit_in_use"]


def test_init_of_busy_page(world):
    for name, words in (("v6.1", "set_page_count"), ("newest", "VM_WARN_ON_FOLIO(folio_ref_count(new_folio)")):
        k = kernel(name)
        drv = ExampleDriver(k, "private", start_pfn=0x200000 if name == "v6.1" else 0x300000)
        drv.probe()
        page, _ = drv.alloc()
        k.zone_device_page_init(page)
        # each kernel reports in a world of its own (the second kernel is not told the first's)
        assert k.world.violations[-1].kind == "init_of_busy_page" and words in k.world.violations[-1].words
        assert len(k.world.violations) == 1


def test_memremap_pages_checks(world):
    k = kernel("v6.1")
    pgmap = dev_pagemap(MEMORY_DEVICE_PRIVATE, 2, ops=dev_pagemap_ops(page_free=lambda p: None))
    with pytest.raises(ValueError):
        k.memremap_pages(pgmap)                        # no migrate_to_ram
    assert kinds(world) == ["pgmap_bad_ops"]


def test_functions_exist_only_in_their_kernels():
    has = {n: kernel(n) for n in KERNELS}

    def span(lo, hi=None):
        return KERNELS[KERNELS.index(lo):(KERNELS.index(hi) + 1 if hi else None)]

    assert [n for n in KERNELS if has[n].has("get_zone_device_page")] == ["v4.5"]
    assert [n for n in KERNELS if has[n].has("zone_device_page_init")] == span("v6.1")
    assert [n for n in KERNELS if has[n].has("put_devmap_managed_page")] == span("v4.18", "v6.2")
    assert [n for n in KERNELS if has[n].has("free_devmap_managed_page")] == span("v5.6", "v5.17")
    assert [n for n in KERNELS if has[n].has("page_is_devmap_managed")] == span("v4.18", "v6.2")
    assert [n for n in KERNELS if has[n].has("free_zone_device_page")] == span("v5.18", "v6.2")
    assert [n for n in KERNELS if has[n].has("free_zone_device_folio")] == span("v6.15")
    assert [n for n in KERNELS if has[n].has("memunmap_pages")][0] == "v5.3"
    assert [n for n in KERNELS if has[n].has("hmm_devmem_add")] == span("v4.14", "v5.2")
    assert [n for n in KERNELS if has[n].has("unpin_user_page")][0] == "v5.6"


# --- F2, F5, F11 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("k_name", KERNELS)
def test_f2_memmap_removed_while_referenced(world, k_name):
    """A device-dax page is still held by a GUP user when the driver unbinds."""
    k = kernel(k_name)
    drv = ExampleDriver(k, "generic")
    drv.probe()
    page = drv.pgmap.pages[0]
    k.get_page(page)
    hung = False
    try:
        drv.remove()
    except WouldBlockForever:
        hung = True
    v = V(k_name)
    if v < V("v5.2"):
        # removal before the wait; the wait after it then sleeps until the user's put
        assert hung and "use_after_free" in kinds(world)
    elif v < V("v5.18"):
        assert hung and kinds(world) == []                       # 50f44ee7248a: waits for the page
    else:
        # per-page pgmap refs are gone: nothing waits for a GUP reference (GUP itself is
        # expected to hold the pgmap -- or, newest, to never find the pages)
        assert not hung and "use_after_free" in kinds(world)


class _Inject(Scheduler):
    def __init__(self, after, fn):
        self.after, self.fn, self.armed, self.done = after, fn, False, False

    def point(self, obj, kind, label, ready, reads):
        if not self.done:
            if self.armed:
                self.done = True
                obj.world.scheduler = None
                self.fn()
                obj.world.scheduler = self
            elif label == self.after:
                self.armed = True
        if ready is not None and not ready():
            raise WouldBlockForever(label)

    def thread_name(self):
        return "main"


@pytest.mark.parametrize("k_name", ["v5.17", "v6.0"])
def test_f11_get_dev_pagemap_after_exit(world, k_name):
    k = kernel(k_name)
    drv = ExampleDriver(k, "generic")
    drv.probe()
    pfn = drv.pgmap.pages[0].pfn
    found = []
    inj = world.scheduler = _Inject("percpu_ref_exit", lambda: found.append(k.get_dev_pagemap(pfn)))
    drv.remove()
    world.scheduler = None
    if not inj.done:             # nothing runs after the exit: the lookup comes after memunmap
        found.append(k.get_dev_pagemap(pfn))
    if k_name == "v5.17":
        assert "percpu_ref_use_after_exit" in kinds(world)       # pgmap still in the xarray
    else:
        assert kinds(world) == [] and found == [None]             # 1e57ffb6e3fd: removed first


@pytest.mark.parametrize("k_name", ["v4.18", "v5.3", "v5.6", "v5.17", "v6.1"])
def test_f5_release_pages_wakes_fsdax(world, k_name):
    k = kernel(k_name)
    drv = ExampleDriver(k, "fsdax")
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)
    n = sum(1 for e in world.events if e.new == "wake_up_var")
    k.release_pages([page])
    woke = sum(1 for e in world.events if e.new == "wake_up_var") - n
    assert k.page_count(page) == 1
    assert woke == (0 if k_name == "v4.18" else 1)
    assert kinds(world) == (["fsdax_waiter_never_woken"] if k_name == "v4.18" else [])


@pytest.mark.parametrize("k_name", ["v5.17", "v5.18", "v6.1", "v6.15", "newest"])
def test_compound_device_pages(world, k_name):
    k = kernel(k_name)
    drv = ExampleDriver(k, "generic", nr_pages=8, vmemmap_shift=2)
    drv.probe()
    pages = drv.pgmap.pages
    assert pages[1].head is pages[0] and pages[4].head is pages[4]
    assert drv.pgmap.ref.count == 1 + 2                # one pgmap ref per compound page
    assert k.page_ref_count(pages[1]) == 0 and k.page_count(pages[1]) == 1
    k.get_page(pages[3])
    assert k.page_ref_count(pages[0]) == 2
    k.put_page(pages[2])
    drv.remove()
    assert kinds(world) == [] and drv.pgmap.ref.exited


def test_pgmap_features_only_in_their_kernels(world):
    k = kernel("v5.7")
    with pytest.raises(ValueError, match="v5.17"):
        ExampleDriver(k, "generic", nr_pages=8, vmemmap_shift=2).probe()
    k = kernel("v6.1")
    pgmap_two = ExampleDriver(k, "generic", start_pfn=0x400000)
    pgmap_two.pgmap.ranges = [(0x400000, 2), (0x500000, 2)]
    pgmap_two.probe()
    assert k.find_dev_pagemap(0x500001) is pgmap_two.pgmap and k.find_dev_pagemap(0x400003) is None
    assert pgmap_two.pgmap.ref.count == 1 + 4
    ev = [e for e in k.world.events if e.field == "pgmap_array"]
    assert len(ev) == 1 and ev[0].new == pgmap_two.pgmap.name
