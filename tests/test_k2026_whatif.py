"""scenarios/patches/device_private_no_phys.py: the pending "Remove device private pages from
physical address space" series as a what-if patch on newest."""

from __future__ import annotations

from pathlib import Path

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.sync import World, use_world

PATCH = str(Path(__file__).resolve().parents[1] / "scenarios" / "patches" / "device_private_no_phys.py")


def test_teardown_order_kill_wait_exit_free_erase():
    with use_world(World()) as w:
        k = zonedev.kernel("newest", extra=[PATCH])
        drv = ExampleDriver(k, "private", nr_pages=2)
        drv.probe()
        pfn = drv.pgmap.pages[0].pfn
        assert k.get_dev_pagemap(pfn) is None               # no physical range: not in pgmap_array
        assert k.device_private_offset_to_page(pfn) is drv.pgmap.pages[0]
        page, _ = drv.alloc()
        drv.release(page)
        n = len(w.events)
        drv.remove()
        labels = [e.func for e in w.events[n:]]
        order = [labels.index(x) for x in ("percpu_ref_kill", "percpu_ref_exit", "kvfree(pgmap->pages)")]
        assert order == sorted(order), labels
        assert not drv.pgmap.pages[0].memmap_live
        assert not w.violations, w.violations
        # the pgmap is gone from the tree: a stale offset finds nothing
        k.device_private_offset_to_page(pfn)
        assert [v.words for v in w.violations] == ["WARN_ON_ONCE(!pgmap)"]


def test_offset_lookup_between_kvfree_and_erase_is_a_use_after_free():
    with use_world(World()) as w:
        k = zonedev.kernel("newest", extra=[PATCH])
        drv = ExampleDriver(k, "private", nr_pages=1)
        drv.probe()
        pgmap = drv.pgmap
        pgmap.ref.kill("percpu_ref_kill")                   # the first steps of the teardown ...
        k.percpu_ref_exit_pgmap(pgmap, "percpu_ref_exit")
        k.remove_pages(pgmap, "kvfree(pgmap->pages)")       # ... the pages are freed, not yet erased
        k.device_private_offset_to_page(pgmap.pages[0].pfn)
        assert [v.kind for v in w.violations] == ["use_after_free"]


def test_memremap_pages_still_maps_other_types():
    with use_world(World()) as w:
        k = zonedev.kernel("newest", extra=[PATCH])
        drv = ExampleDriver(k, "coherent", nr_pages=1)
        drv.probe()
        assert k.get_dev_pagemap(drv.pgmap.pages[0].pfn) is drv.pgmap
        k.put_dev_pagemap(drv.pgmap)
        drv.remove()
        assert not w.violations


@pytest.mark.parametrize("scenario", ["hmm_races.py::release_vs_fault"])
def test_hmm_teardown_race_keeps_its_verdict(scenario):
    spec = str(Path(__file__).resolve().parents[1] / "scenarios" / scenario)
    res = zonedev.check(spec, kernel="newest", patches=[PATCH], executions=300, tables=False)
    assert res.verdict == "ok", [f.message for f in res.findings]
