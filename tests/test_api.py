"""The Python API takes what the command line takes, and kernels in a REPL stay apart."""

from pathlib import Path

import zonedev
from zonedev.linux.include.memremap import MEMORY_DEVICE_PRIVATE, dev_pagemap, dev_pagemap_ops

TEARDOWN = str(Path(__file__).resolve().parents[1] / "scenarios" / "teardown.py")


def test_check_takes_the_cli_kernel_forms():
    one = zonedev.check(f"{TEARDOWN}::teardown3", kernel="6.1.0-56-amd64")
    assert isinstance(one, zonedev.Result) and one.kernel == "v6.1" and one.ok
    many = zonedev.check(f"{TEARDOWN}::teardown3", kernel="v5.18,6.12")
    assert isinstance(many, zonedev.Results) and [r.kernel for r in many] == ["v5.18", "v6.2"]
    assert many.verdicts() == {"v5.18": ["use_after_free"], "v6.2": "safe"} and not many.ok
    assert len(zonedev.check(f"{TEARDOWN}::teardown3", kernel=["v6.1", "v6.1"], tables=False)) == 1


def test_each_kernel_in_a_repl_has_its_own_world():
    k1 = zonedev.kernel("v6.1")
    pgmap = dev_pagemap(MEMORY_DEVICE_PRIVATE, nr_pages=2, owner="me",
                        ops=dev_pagemap_ops(page_free=lambda page: None, migrate_to_ram=lambda vmf: 0))
    k1.memremap_pages(pgmap)
    page = pgmap.pages[0]
    k1.zone_device_page_init(page)
    k1.put_page(page)
    k1.put_page(page)                               # one put too many
    assert [v.kind for v in k1.world.violations] == ["put_on_free_page"]
    k2 = zonedev.kernel("v6.1")
    assert k2.world is not k1.world and k2.world.violations == [] and k2.world.events == []


def test_dump_page_in_each_eras_layout_reads_back_as_a_dump_page_block():
    from zonedev.linux.drivers.example import ExampleDriver
    from zonedev.trace.formats import parse_lines
    firsts = {}
    for name in ("v4.18", "v5.3", "v6.1", "v6.15"):
        k = zonedev.kernel(name)
        drv = ExampleDriver(k, "fsdax", nr_pages=2)
        drv.probe()
        page = drv.pgmap.pages[1]
        k.get_page(page)
        text = k.dump_page(page, "zonedev test")
        firsts[name] = text.splitlines()[0]
        rec, = parse_lines(text.splitlines(), "dump")
        want = 2 if name != "v6.15" else 1         # fsdax rests at 1 until v6.15, at 0 after
        assert rec.kind == "dump_page" and rec.fields["count"] == want and rec.fields["zone"] == 4
        assert rec.fields["reason"] == "zonedev test"
    assert " count:2 " in firsts["v4.18"] and "pfn:" not in firsts["v4.18"]
    assert " refcount:2 " in firsts["v5.3"] and "pfn:" not in firsts["v5.3"]
    assert firsts["v6.1"].endswith("index:0x0 pfn:0x100001") and not firsts["v6.1"].startswith("page: ")
    assert firsts["v6.15"].startswith("page: refcount:1 ")
