"""Planted misuse: recorded as the right violation on the kernels where the real one
misbehaves, and not on the kernels that fixed it.

* an extra put_page on a freed device page;
* allocation after memunmap_pages began (the kill);
* memunmap_pages with a page still mapped (F8 on v5.18);
* fsdax break-layouts waiter never woken (F12 on v5.18);
* GUP-fast without a pgmap reference (F1, v4.5);
* leaving a patch out / adding a user patch file.
"""

from __future__ import annotations

import pytest

from zonedev.linux.drivers.example import ExampleDriver
from zonedev.patches import KERNELS, PatchFileError, UnknownKernel, kernel, version_key
from zonedev.sync import Scheduler, World, use_world
from zonedev.sync.world import WouldBlockForever


def V(name):
    return version_key(name)


class Inject(Scheduler):
    """Runs ``fn`` once, at the first point after a point labelled ``after`` (or just before a
    point labelled ``before``): a second thread's action placed at an exact spot."""

    def __init__(self, fn, after=None, before=None):
        self.fn, self.after, self.before, self.armed, self.done = fn, after, before, False, False

    def _fire(self, world):
        self.done = True
        world.scheduler = None
        try:
            self.fn()
        finally:
            world.scheduler = self

    def point(self, obj, kind, label, ready, reads):
        if not self.done:
            if self.armed or (self.before is not None and label == self.before):
                self._fire(obj.world)
            elif self.after is not None and label in self.after:
                self.armed = True
        if ready is not None and not ready():
            raise WouldBlockForever(label)

    def thread_name(self):
        return "main"


def kinds(world):
    return [v.kind for v in world.violations]


PRIVATE = [k for k in KERNELS if V(k) >= V("v4.14")]


# --- an extra put --------------------------------------------------------------------------------

@pytest.mark.parametrize("k", PRIVATE)
def test_extra_put_on_freed_private_page(k):
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "private")
        drv.probe()
        page, _ = drv.alloc()
        drv.release(page)                  # the legitimate final put
        assert kinds(w) == []
        kk.put_page(page)                  # the planted extra put
        try:
            drv.remove()
        except WouldBlockForever:
            pass
        got = kinds(w)
    v = V(k)
    if v < V("v5.0"):
        # HMM pages hold no per-page pgmap ref, yet 1->0 goes to __put_page -> put_dev_pagemap:
        # the pgmap percpu_ref underflows when it is killed
        assert "percpu_ref_underflow" in got and "page_free_twice" not in got
    elif v < V("v5.18"):
        # 1->0 drops the page's pgmap ref early; memunmap's put of each pfn then takes it 0->-1
        assert got == ["put_on_free_page"]
    elif v < V("v6.1"):
        # the free page sits at 1 (reset); the extra put frees it again
        assert got == ["page_free_twice"]
        assert [c for c, _ in drv.callbacks].count("page_free") == 2
    else:
        # free pages sit at 0: the put underflows, and page_free does not run again
        assert got == ["put_on_free_page"]
        assert [c for c, _ in drv.callbacks].count("folio_free" if V(k) >= V("v6.19") else "page_free") == 1


@pytest.mark.parametrize("k", KERNELS)
def test_extra_put_on_idle_generic_page(k):
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "generic")
        drv.probe()
        page = drv.pgmap.pages[0]
        kk.put_page(page)                  # nobody held it: the base reference goes
        try:
            drv.remove()
        except WouldBlockForever:
            pass
        got = kinds(w)
    v = V(k)
    if v < V("v4.12"):
        # 1->0 sends a ZONE_DEVICE page to the page allocator, and drops a pgmap ref it never took
        assert "device_page_to_allocator" in got and "percpu_ref_underflow" in got
    elif v < V("v5.18"):
        assert got == ["put_on_free_page"]          # memunmap's put of each pfn: 0 -> -1
    else:
        # 0 -> free_zone_device_page: device-dax has no page_free (WARN); v6.15 resets to 1
        assert got[0] == "free_without_page_free" if v < V("v6.15") else got == []


# --- allocation after memunmap began ------------------------------------------------------------

@pytest.mark.parametrize("k", PRIVATE)
def test_alloc_after_kill(k):
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "private")
        drv.probe()
        pages = []
        w.scheduler = Inject(lambda: pages.append(drv.alloc()[0]), after=("percpu_ref_kill", "hmm_devmem_ref_kill"))
        hung = False
        try:
            drv.remove()
        except WouldBlockForever:
            hung = True
        w.scheduler = None
        got = kinds(w)
    v = V(k)
    assert len(pages) == 1
    if v >= V("v6.1"):
        # zone_device_page_init: WARN_ON_ONCE(!percpu_ref_tryget_live(...)) (newest: tryget_many
        # on a drained ref); memunmap does not wait for the page it never counted -> UAF
        assert got[0] == "alloc_after_kill"
        assert "use_after_free" in got and not hung
    elif v >= V("v5.18"):
        # no check at allocation; the memmap goes while the page is allocated
        assert "alloc_after_kill" not in got and got == ["use_after_free"]
    elif v >= V("v5.0"):
        # get_page at allocation (1->2); the teardown put takes it to 1 = page_free on an
        # allocated page; its pgmap ref is never dropped, memunmap waits forever
        assert "alloc_after_kill" not in got
        assert "page_free_while_referenced" in got and hung
    else:
        # HMM pages hold no pgmap ref: the pages are removed under the allocated page
        assert "alloc_after_kill" not in got and "use_after_free" in got


# --- memunmap with a page still mapped (F8) -------------------------------------------------------

@pytest.mark.parametrize("k", [k for k in KERNELS if V(k) >= V("v5.3")])
def test_memunmap_with_mapped_page(k):
    """The page stays allocated (mapped) while the driver calls memunmap_pages."""
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "private")
        drv.probe()
        page, _ = drv.alloc()
        hung = False
        try:
            drv.remove()
        except WouldBlockForever:
            hung = True
        got = kinds(w)
    v = V(k)
    if V("v5.18") <= v < V("v6.1"):
        # F8: 27674ef6c73f dropped the per-page pgmap ref; memunmap returns, memmap gone under the page
        assert not hung and got == ["use_after_free"]
    elif v >= V("v6.1"):
        # 0dc45ca1ce18: memunmap waits for the allocated page (F10 if it never comes back)
        assert hung and got == []
    else:
        # 1-based: the teardown put (2->1) frees an allocated page, then the wait never ends
        assert hung and got == ["page_free_while_referenced"]


@pytest.mark.parametrize("k", [k for k in KERNELS if V(k) >= V("v5.3")])
def test_memunmap_waits_for_the_last_put(k):
    """The mapping goes away while memunmap waits: clean on the kernels that wait."""
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "private")
        drv.probe()
        page, _ = drv.alloc()
        w.scheduler = Inject(lambda: drv.release(page), before="wait_for_completion")
        drv.remove()
        w.scheduler = None
        got = kinds(w)
        state = (drv.pgmap.ref.exited, page.memmap_live)
    v = V(k)
    assert state == (True, False)
    if v >= V("v5.18"):
        # v6.1+: the wait covers the page; v5.18/v6.0: the put happened to come before the
        # memmap went (the unlucky order is test_memunmap_with_mapped_page)
        assert got == []
    else:
        assert got == ["page_free_while_referenced"]


def test_v61_without_0dc45ca1ce18_brings_f8_back():
    with use_world(World()) as w:
        kk = kernel("v6.1", without=["0dc45ca1ce18"])
        assert "0dc45ca1ce18" not in kk.name or "-0dc45ca1ce18" in kk.name
        drv = ExampleDriver(kk, "private")
        drv.probe()
        page, _ = drv.alloc()
        drv.remove()
        assert kinds(w) == ["use_after_free"]


def test_without_a_patch_not_in_that_kernel_is_an_error():
    with pytest.raises(UnknownKernel):
        kernel("v5.18", without=["0dc45ca1ce18"])


# --- F12: fsdax waiter never woken ---------------------------------------------------------------

@pytest.mark.parametrize("k", [k for k in KERNELS if V(k) >= V("v5.7")])
def test_fsdax_break_layouts_wakeup(k):
    """Truncate waits for a pinned fsdax page; the unpin must wake it."""
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "fsdax")
        drv.probe()
        page, _ = drv.alloc()
        kk.pin_user_page(page)
        if kk.fact("dax_mapping_takes_ref"):
            kk.put_page(page)               # v6.15: unmap_mapping_pages drops the mapping's ref first
        w.scheduler = Inject(lambda: kk.unpin_user_page(page), before="___wait_var_event (sleeping)")
        hung = False
        try:
            kk.dax_break_layouts([page])
        except WouldBlockForever:
            hung = True
        w.scheduler = None
        got = kinds(w)
    if k == "v5.18":
        assert hung and got == ["fsdax_waiter_never_woken"]
    else:
        assert not hung and got == []


# --- F1: GUP-fast without a pgmap reference (v4.5) -------------------------------------------

@pytest.mark.parametrize("k", ["v4.5", "v4.12"])
def test_gup_fast_speculative_ref(k):
    with use_world(World()) as w:
        kk = kernel(k)
        drv = ExampleDriver(kk, "generic")
        drv.probe()
        page = drv.pgmap.pages[0]
        assert kk.page_cache_get_speculative(page)
        kk.put_page(page)
        try:
            drv.remove()
        except WouldBlockForever:
            assert k == "v4.5"                     # the underflowed ref never drains
        got = kinds(w)
    if k == "v4.5":
        assert set(got) == {"percpu_ref_underflow"}  # "percpu ref (...) <= 0 (...) after switching to atomic"
    else:
        assert got == []                           # 71389703839e


def test_gup_slow_devmap_takes_pgmap_refs_v45():
    with use_world(World()):
        kk = kernel("v4.5")
        drv = ExampleDriver(kk, "generic")
        drv.probe()
        pfn = drv.pgmap.pages[1].pfn
        page = kk.follow_devmap_page(pfn)
        assert page._refcount.peek() == 2 and drv.pgmap.ref.count == 2
        drv.pgmap.ref.kill()
        assert kk.follow_devmap_page(pfn) is None      # tryget_live fails once killed


# --- user patches -------------------------------------------------------------------------------

def test_user_patch_file(tmp_path):
    f = tmp_path / "fix.py"
    f.write_text(
        "from zonedev import Patch\n"
        "PATCH = Patch(commit='deadbeef0001', title='test: never free', version='v6.1')\n"
        "@PATCH.define\n"
        "def free_zone_device_page(k, page):\n"
        "    k.world.event('free_zone_device_page', page.pfn, 'callback', None, 'user')\n")
    with use_world(World()) as w:
        kk = kernel("v6.1", extra=[str(f)])
        assert "+deadbeef0001" in kk.name
        drv = ExampleDriver(kk, "private")
        drv.probe()
        page, _ = drv.alloc()
        drv.release(page)
        assert drv.callbacks == [] and page._refcount.peek() == 0
        assert any(e.new == "user" for e in w.events)


def test_user_patch_file_error_names_the_line(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("from zonedev import Patch\n\nx = 1/0\n")
    with pytest.raises(PatchFileError, match=r"bad.py:3"):
        kernel("v6.1", extra=[str(f)])


def test_v518_without_5cbf9942c963_warns_for_non_private():
    for without, words in (((), "ops->page_free"), (("5cbf9942c963",), "is_device_private_page")):
        with use_world(World()) as w:
            kk = kernel("v5.18", without=list(without))
            drv = ExampleDriver(kk, "p2pdma")
            drv.probe()
            kk.put_page(drv.pgmap.pages[0])        # an idle p2pdma page taken to 0
            assert kinds(w) == ["free_without_page_free"] and words in w.violations[0].words


def test_every_single_revert_builds_or_is_refused_cleanly():
    """Leaving any one patch out of any kernel either runs every lifecycle or is refused with a
    message; leaving out a fix (a patch with Fixes:) always runs."""
    from zonedev.cli.lifecycle import lifecycle
    from zonedev.linux.drivers.example import TYPES
    from zonedev.patches import patches_for
    refused = 0
    for kn in KERNELS:
        for p in patches_for(kn):
            if p.commit.startswith("v4.5"):
                continue
            for t in TYPES:
                try:
                    lifecycle(kn, t, without=[p.commit])
                except UnknownKernel as e:
                    assert "cannot be left out" in str(e) and not p.fixes
                    refused += 1
                except (AttributeError, ValueError):
                    # the example driver needs what the patch provided (the CLI says so, exit 2)
                    assert not p.fixes
    assert refused > 0


def test_revert_refusal_names_the_dependency():
    # (d8ddc099c6b3 used to be the example: its revert brought back __unpin_devmap_managed_user_page,
    # which 4509b42c3896 (v5.11) deleted first, so that revert now applies)
    with pytest.raises(UnknownKernel, match=r"1e240e8d4a7d cannot be left out of v5.18: "
                                            r"devm_memremap_pages_release\(\).*would come back and calls dev_pagemap_cleanup"):
        kernel("v5.18", without=["1e240e8d4a7d"])
    with pytest.raises(UnknownKernel, match=r"3faa52c03f44 cannot be left out of v5.18: try_grab_page\(\) "
                                            r"from d8ddc099c6b3 .* calls pincount_add, which 3faa52c03f44 introduced"):
        kernel("v5.18", without=["3faa52c03f44"])
    with pytest.raises(UnknownKernel, match="cannot be left out"):
        kernel("v5.2", without=["a95c90f1e2c2"])
