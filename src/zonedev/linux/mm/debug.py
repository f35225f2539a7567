"""``dump_page()`` (mm/debug.c): a struct page as the kernel prints it, in each era's layout.

The first line changed three times (kernel_traces.md §1.2, read in torvalds/linux mm/debug.c and
Debian 6.1/6.12): ``count:`` until ~v5.1, ``refcount:`` from v5.2, ``pfn:`` from v5.10, and
v6.9's ``__dump_folio`` drops the page pointer.  A modelled kernel prints the layout of the
release it is named after (v6.2, which stands for 6.2-6.14, prints the pre-6.9 layout).  The
model has no addresses: the page pointer is the x86_64 ``vmemmap_base + pfn * 64`` of a
``nokaslr`` boot (printed raw where the kernel used ``%px``, hashed-looking where it used ``%p``),
the mapping is 0 or a stable stand-in.  Flags are printed by name, as ``show_page_flags`` does;
their hex is the model's bits (the kernel's bit numbers differ by version: parse the names), and
ZONE_DEVICE is ``zone=4`` (x86_64 with ZONE_MOVABLE: DMA, DMA32, NORMAL, MOVABLE, DEVICE).
"""

from __future__ import annotations

import re

from ..include.mm_types import PAGE_FLAG_NAMES, ZONE_DEVICE

VMEMMAP_BASE = 0xffffea0000000000
#: model-only page bits (zonedev's bookkeeping), never printed
_MODEL_ONLY = {"zd_free", "zd_nobase", "memmap_gone", "zd_uncharged"}


def _release(k) -> tuple[int, int]:
    m = re.match(r"v(\d+)\.(\d+)", getattr(k, "name", "") or "")
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def dump_page(k, page, reason: str = "") -> str:
    """mm/debug.c ``dump_page(page, reason)``: the era's lines, returned (and not printed: the
    REPL shows them; ``print(k.dump_page(page))``).

    Kernel: mm/debug.c, v4.5+."""
    rel = _release(k)
    ptr = VMEMMAP_BASE + page.pfn * 64
    count = page._refcount.peek()
    mapcount = page._mapcount.peek() + 1
    m = page.mapping.peek()
    mapping = 0 if m is None else 0xffff888000000000 | (id(m) & 0xffffffff) << 4
    index = page.index.peek() or 0
    if rel < (5, 2):
        first = f"page:{ptr:016x} count:{count} mapcount:{mapcount} mapping:{mapping:016x} index:{index:#x}"
    elif rel < (5, 10):
        first = f"page:{ptr:016x} refcount:{count} mapcount:{mapcount} mapping:{mapping:016x} index:{index:#x}"
    elif rel < (6, 9):
        first = (f"page:{ptr & 0xffffffff:016x} refcount:{count} mapcount:{mapcount} mapping:{mapping:016x} "
                 f"index:{index:#x} pfn:{page.pfn:#x}")
    else:
        first = f"page: refcount:{count} mapcount:{mapcount} mapping:{mapping:016x} index:{index:#x} pfn:{page.pfn:#x}"
    bits = page.flags.bits
    names = [n for b, n in sorted(PAGE_FLAG_NAMES.items()) if bits >> b & 1 and n not in _MODEL_ONLY]
    kbits = sum(1 << b for b, n in PAGE_FLAG_NAMES.items() if bits >> b & 1 and n not in _MODEL_ONLY)
    zone = 4 if page.zone == ZONE_DEVICE else 2
    flags = f"flags: {kbits:#x}({'|'.join(names + ['node=0', f'zone={zone}'])})"
    pgmap = page.pgmap
    raw = f"raw: {kbits:016x} {(id(pgmap) & 0xffffffffffff) if pgmap is not None else 0:016x} 0000000000000000 {mapping:016x}"
    lines = [first, flags, raw]
    if reason:
        lines.append(f"page dumped because: {reason}")
    return "\n".join(lines)


FUNCTIONS = (dump_page,)
