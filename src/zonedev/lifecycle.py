"""One device page's life on a modelled kernel: memremap, allocate, get, pin, put, unpin, free,
memunmap, with the page's refcount, the pgmap reference count and the callbacks after each step.

The run behind ``zonedev lifecycle`` (which draws it), ``zonedev trace`` (which exports its events
and learns from it which refcount changes a kernel makes itself) and the lifecycle tests.  The
driver is ``zonedev.linux.drivers.example``: each era's own allocation and free calls.
"""

from __future__ import annotations

from .linux.drivers.example import ExampleDriver, UnknownType
from .patches import kernel
from .sync import World, use_world
from .sync.world import WouldBlockForever

PHASES = ("memremap", "allocate", "get", "pin", "put", "unpin", "free", "memunmap")


def _callbacks(events, start: int) -> list[str]:
    out = []
    for e in events[start:]:
        f = e.field
        if f == "callback" or f.endswith(".callback"):
            out.append(e.new)
        elif f.endswith(".done"):
            out.append(e.func)
    return out


def lifecycle(kernel_name: str, kind: str, nr_pages: int = 4, without=(), extra=(), keep: dict | None = None,
              patches: tuple | None = None) -> dict:
    """Run the life of one page; the JSON object ``zonedev lifecycle --json`` prints.

    A kernel without that pgmap type gives ``{"kernel", "type", "absent": true, "steps": []}``.
    ``keep``, when given, receives the run's ``world``, kernel ``k`` and ``pgmap`` (for exports).
    ``patches``, when given, is the exact patch list to build (a prefix of the series, to find
    the patch that changed a step); ``kernel_name`` is then only a label.
    """
    with use_world(World()) as world:
        if patches is not None:
            from .linux.kernel import kernel_class
            k = kernel_class(kernel_name, patches)()
        else:
            k = kernel(kernel_name, without=tuple(without), extra=tuple(extra))
        try:
            drv = ExampleDriver(k, kind, nr_pages=nr_pages)
        except UnknownType as e:
            return {"kernel": kernel_name, "type": kind, "absent": True, "reason": str(e), "steps": []}
        pgmap = drv.pgmap
        if keep is not None:
            keep.update(world=world, k=k, pgmap=pgmap)
        steps: list[dict] = []
        page = None

        def step(phase, fn):
            ev, vi = len(world.events), len(world.violations)
            try:
                op = fn()
            except WouldBlockForever as e:
                op = f"hang: {e}"
            ref = pgmap.ref
            shown = page if page is not None else (pgmap.pages[0] if pgmap.pages else None)
            steps.append({
                "phase": phase,
                "op": op,
                "refcount": shown._refcount.peek() if shown is not None else None,
                "pgmap_refs": ref.count if ref is not None else None,
                "pgmap_ref_state": _ref_state(ref),
                "callbacks": _callbacks(world.events, ev),
                "violations": [v.kind for v in world.violations[vi:]],
                "violation_words": [v.words for v in world.violations[vi:]],
            })

        step("memremap", drv.probe)

        def allocate():
            nonlocal page
            page, op = drv.alloc()
            return op or "get_page, lock_page"   # the oldest kernels: a plain reference, locked
        step("allocate", allocate)
        step("get", lambda: (k.get_page(page), "get_page")[1])
        if k.has("pin_user_page"):
            step("pin", lambda: (k.pin_user_page(page), "pin_user_page")[1])
            step("put", lambda: (k.put_page(page), "put_page")[1])
            step("unpin", lambda: (k.unpin_user_page(page), "unpin_user_page")[1])
        else:   # before v5.6 a DMA user held a plain get_user_pages() reference
            step("pin", lambda: (k.get_user_page_ref(page), "get_user_pages")[1])
            step("put", lambda: (k.put_page(page), "put_page")[1])
            step("unpin", lambda: (k.put_page(page), "put_page")[1])
        step("free", lambda: drv.release(page))
        step("memunmap", drv.remove)
        out = {"kernel": kernel_name, "type": kind, "pgmap_type": drv.type, "pfn": page.pfn,
               "steps": steps}
        if without or extra:
            out["built_as"] = k.name
        return out


def _ref_state(ref) -> str | None:
    if ref is None:
        return None
    if ref.exited:
        return "exited"
    if ref.released:
        return "drained"
    if ref.dead:
        return "killed"
    return "live"


