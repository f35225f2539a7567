"""Every named kernel x every pgmap type it has: the refcount that means free, the callbacks of
the final put and how often they run, the pgmap reference count after each step, and the
memunmap order -- against an oracle written from shared/reference/kernel_eras.md (§0, §11,
§13), independently of the model's code.
"""

from __future__ import annotations

import pytest

from zonedev.cli.lifecycle import PHASES, lifecycle
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.patches import KERNELS, kernel, version_key
from zonedev.sync import Scheduler, World, use_world
from zonedev.sync.world import WouldBlockForever

N = 4   # pages per pgmap in the lifecycle


def V(name):
    return version_key(name)


def present(k, kind):
    v = V(k)
    return {
        "generic": True,
        "private": v >= V("v4.14"),
        "public": V("v4.14") <= v < V("v5.3"),
        "fsdax": v >= V("v4.18"),
        "p2pdma": v >= V("v4.20"),         # 52916982af48
        "coherent": v >= V("v6.0"),
    }[kind]


CASES = [(k, t) for k in KERNELS for t in ("private", "public", "coherent", "fsdax", "generic", "p2pdma")
         if present(k, t)]
ABSENT = [(k, t) for k in KERNELS for t in ("private", "public", "coherent", "fsdax", "generic", "p2pdma")
          if not present(k, t)]


def oracle(k: str, t: str) -> dict:
    """Expected refcount / pgmap refs after each phase, and callbacks, from the eras reference."""
    v = V(k)
    bias = 1024 if v >= V("v5.7") else 1          # §6.2: FOLL_PIN counting from v5.7
    hmm = t in ("private", "public") and v < V("v5.0")   # §3: HMM pages hold no per-page pgmap ref
    freelist = t in ("private", "public", "coherent")
    zero_based = (freelist and v >= V("v6.1")) or (t in ("fsdax", "p2pdma") and v >= V("v6.15"))
    init = 0 if zero_based else 1
    per_page = 0 if (hmm or v < V("v4.12") or (freelist and v >= V("v6.1"))) else N
    base = 1 + per_page                              # the initial ref + one per page (§2, §5)

    if freelist:
        alloc = 2 if v < V("v5.18") else 1           # get_page+lock_page / lock_page / zone_device_page_init
        alloc_pgmap = base + (1 if v >= V("v6.1") else 0)
        free_rc = 0 if v >= V("v6.1") else 1
        free_pgmap = base
        free_cb = ["folio_free" if v >= V("v6.19") else "page_free"]
        unpin_cb = []
    elif t == "fsdax":
        alloc = 1
        alloc_pgmap = base
        free_rc = 0 if v >= V("v6.15") else 1
        free_pgmap = base
        if v >= V("v6.15"):
            unpin_cb, free_cb = [], ["wake_up_var"]
        elif v < V("v5.6"):
            unpin_cb, free_cb = ["page_free", "wake_up_var"], []   # pmem's page_free is the wake-up
        elif V("v5.18") <= v < V("v5.19"):
            unpin_cb, free_cb = [], []                              # F12: no wake-up
        else:
            unpin_cb, free_cb = ["wake_up_var"], []
    elif t == "generic":
        alloc = 2 if v >= V("v6.15") else 1
        alloc_pgmap = base
        free_rc = 1
        free_pgmap = base
        unpin_cb, free_cb = [], []
    else:   # p2pdma
        mmap = v >= V("v6.2")
        alloc = 1
        alloc_pgmap = base + 1                       # the pool's / the mapping's pgmap reference
        free_rc = 0 if v >= V("v6.15") else 1
        free_pgmap = base
        unpin_cb, free_cb = [], (["folio_free" if v >= V("v6.19") else "page_free"] if mmap else [])

    era_a = v < V("v4.12")
    # era A: get_page/put_page take/drop a pgmap ref per page ref (§1)
    g = 1 if era_a else 0
    refs = [init, alloc, alloc + 1, alloc + 1 + bias, alloc + bias, alloc, free_rc, None]
    pgmaps = [base, alloc_pgmap, alloc_pgmap + g, alloc_pgmap + 2 * g, alloc_pgmap + g, alloc_pgmap,
              free_pgmap, 0]
    # memunmap: the teardown put (v4.12-v5.17, not HMM before v5.0) takes an idle page to 0
    put_loop = V("v4.12") <= v < V("v5.18") and not hmm
    refs[7] = free_rc - 1 if put_loop else free_rc
    return {"refs": refs, "pgmaps": pgmaps, "free_cb": free_cb, "unpin_cb": unpin_cb}


@pytest.mark.parametrize("k,t", CASES)
def test_lifecycle_matches_reference(k, t):
    r = lifecycle(k, t, nr_pages=N)
    exp = oracle(k, t)
    steps = r["steps"]
    assert [s["phase"] for s in steps] == list(PHASES)
    assert [s["refcount"] for s in steps] == exp["refs"], "refcount after each step"
    assert [s["pgmap_refs"] for s in steps] == exp["pgmaps"], "pgmap reference count after each step"
    # the free refcount is what the kernel's facts say
    assert steps[6]["refcount"] == kernel(k).fact("free_refcount")[r["pgmap_type"]]
    # callbacks of the final put, each exactly once
    assert [c for c in steps[6]["callbacks"]] == exp["free_cb"]
    assert [c for c in steps[5]["callbacks"]] == exp["unpin_cb"]
    # no other step runs page_free
    for s in steps[:5]:
        assert "page_free" not in s["callbacks"] and "folio_free" not in s["callbacks"]
    # the pgmap ref ends exited
    assert steps[7]["pgmap_ref_state"] == "exited"
    # a correct lifecycle breaks no rule, except F12's missing wake-up on v5.18 and v4.18's
    # clearing of a DAX page's ->mapping on the unpin that makes it idle (2fa147bdbf67)
    viol = [v for s in steps for v in s["violations"]]
    if t == "fsdax" and k == "v5.18":
        assert viol == ["fsdax_waiter_never_woken"]
    elif t == "fsdax" and k == "v4.18":
        assert viol == ["dax_mapping_lost"]
    else:
        assert viol == []


@pytest.mark.parametrize("k,t", ABSENT)
def test_absent_type_is_marked(k, t):
    r = lifecycle(k, t)
    assert r["absent"] is True and r["steps"] == []


# --- memunmap order -----------------------------------------------------------------------------

class Recorder(Scheduler):
    """Records every point (world step, label); never switches threads."""

    def __init__(self):
        self.points = []

    def point(self, obj, kind, label, ready, reads):
        self.points.append((obj.world.steps, label))
        if ready is not None and not ready():
            raise WouldBlockForever(label)

    def thread_name(self):
        return "main"


def teardown_order(k_name: str, t: str) -> list[str]:
    """The order of the teardown's landmarks: kill, the per-pfn put or the bulk put, the wait
    for the pgmap ref, the memmap removal, percpu_ref_exit."""
    with use_world(World()) as w:
        k = kernel(k_name)
        drv = ExampleDriver(k, t, nr_pages=N)
        drv.probe()
        rec = Recorder()
        w.scheduler = rec
        ev0 = len(w.events)
        drv.remove()
        w.scheduler = None
    marks = [((s, 0), "wait") for s, label in rec.points if label == "wait_for_completion"]
    for e in w.events[ev0:]:
        key = (e.step, 1)
        if e.field.endswith(".dead"):
            marks.append((key, "kill"))
        elif e.field.endswith(".teardown"):
            marks.append((key, "put_each_pfn"))
        elif e.func == "percpu_ref_put_many" and e.field.endswith(".ref"):
            marks.append((key, "put_many"))
        elif e.field == "memmap" and e.new is None:
            marks.append((key, "remove"))
        elif e.field.endswith(".exited"):
            marks.append((key, "exit"))
    return [m for _, m in sorted(marks)]


def expected_order(k: str, t: str) -> list[str]:
    v = V(k)
    hmm = t in ("private", "public") and v < V("v5.0")
    if hmm:
        return ["kill", "wait", "exit", "remove"]                  # hmm_devmem_remove (kernel, not §3(d))
    if v < V("v4.12"):
        return ["kill", "remove", "wait", "exit"]                  # the driver waits after release (F2)
    if v < V("v5.2"):
        return ["kill", "put_each_pfn", "remove", "wait", "exit"]  # F2: remove before the wait
    if v < V("v5.18"):
        return ["kill", "put_each_pfn", "wait", "exit", "remove"]  # 50f44ee7248a; exit before unmap (F11 window)
    if v < V("v6.0"):
        return ["kill", "put_many", "wait", "exit", "remove"]      # 27674ef6c73f
    if t in ("private", "coherent") and v >= V("v6.1"):
        return ["kill", "wait", "remove", "exit"]                  # 0dc45ca1ce18: no bulk put, waits for pages
    return ["kill", "put_many", "wait", "remove", "exit"]          # 1e57ffb6e3fd


@pytest.mark.parametrize("k,t", CASES)
def test_memunmap_order(k, t):
    assert teardown_order(k, t) == expected_order(k, t)
