"""zonedev's events as page_ref tracepoint lines (include/trace/events/page_ref.h), so a
lifecycle or a counterexample loads in the tools trace-cmd and KernelShark users already have.

Each refcount change of the event log becomes one line of the raw tracefs ``trace`` layout of a
6.x kernel (kernel_traces.md §1.1): ``comm-pid [cpu] flags ts: event: pfn=... count=... val=...``.
The event follows the kernel's accessor: ``set_page_count`` -> page_ref_set, a decrement that
tests for zero (the put_page path) -> page_ref_mod_and_test with ``ret``, any other change ->
page_ref_mod.  The thread is the comm, its index the pid and cpu; one step is one microsecond.
A ``# zonedev: pgmap`` header line per pgmap records the pfn range and the kernel's enum value
of its type, which ``zonedev trace check`` reads back.
"""

from __future__ import annotations

from typing import Any, Iterable

from .follow import enum_types

#: model functions whose refcount change is a set_page_count()/folio_set_count() in the kernel
#: (mm/memremap.c zone_device_page_init and the free path's reset to 1; mm/mm_init.c)
SETS = frozenset({"set_page_count", "init_page_count", "folio_set_count", "page_ref_unfreeze",
                  "zone_device_page_init", "zone_device_folio_init", "free_zone_device_page",
                  "free_zone_device_folio", "__init_zone_device_page", "memmap_init_zone_device"})


def pgmap_header(k: Any, pgmap: Any) -> str:
    by_name = {t: v for v, t in enum_types(k).items()}
    start = pgmap.pages[0].pfn if pgmap.pages else 0
    return (f"# zonedev: pgmap type={by_name.get(pgmap.type, 0)} ({pgmap.type}) "
            f"start_pfn={start:#x} nr={len(pgmap.pages)} kernel={k.name}")


def page_ref_lines(events: Iterable[Any], threads: list[str] | None = None) -> list[str]:
    """``World.events`` (their ``_refcount`` changes) -> page_ref tracepoint lines."""
    out = []
    names = list(threads or [])
    for e in events:
        if e.field != "_refcount" or e.pfn is None or not isinstance(e.new, int) or not isinstance(e.old, int):
            continue
        who = (e.thread or "setup").replace(" ", "_")
        if who not in names:
            names.append(who)
        tid = names.index(who)
        val = e.new - e.old
        if e.func in SETS:
            event, tail = "page_ref_set", f"val={e.new}"
        elif val < 0:
            event, tail = "page_ref_mod_and_test", f"val={val} ret={int(e.new == 0)}"
        else:
            event, tail = "page_ref_mod", f"val={val}"
        ts = 1.0 + e.step * 1e-6
        out.append(f"{who:>16}-{100 + tid:<7} [{tid % 1000:03d}] ..... {ts:12.6f}: {event}: pfn={e.pfn:#x} "
                   f"flags=none count={e.new} mapcount=0 mapping=0000000000000000 mt=0 {tail}")
    return out
