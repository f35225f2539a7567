"""The ZONE_DEVICE teardown race (scenarios/teardown.py::teardown) as a musil model: NU users each
drop one reference to a device-private page while the driver's remove runs memunmap_pages.  The
same abstraction as benchmarks/teardown.pml (SPIN) and benchmarks/teardown.m.in (Rumur), written
by hand, for the musil side of ``benchmarks/run.py --only musil``.  It needs Python >= 3.12 and
musil (``pip install musil``); benchmarks/run.py makes a venv for it and runs this file there.

The rules (the kernel's, per version; zonedev's model names the same functions):

* put_page on a ZONE_DEVICE page (``page_ref_dec_and_test``, one atomic read-modify-write)
  reads the struct page, which must still exist: a put after memunmap_pages removed the memmap
  (``arch_remove_memory``) is the use-after-free.
* v5.18 (27674ef6c73f "mm: remove the extra ZONE_DEVICE struct page refcount",
  mm/memremap.c): the put that takes the count to 0 runs ``free_zone_device_page``, which
  re-arms the count to 1 for the next allocation and drops no pgmap reference;
  ``memunmap_pages`` kills the pgmap ref, drops its initial reference and the one
  memremap_pages took for the pages (``put_dev_pagemap_many``), waits for
  ``pgmap->done`` and removes the memmap -- while users may still hold references.
* v6.1 (0dc45ca1ce18 "mm/memremap.c: take a pgmap reference on page allocation"): a page
  holds a pgmap reference while allocated and ``free_zone_device_page`` drops it
  (``put_dev_pagemap``), so memunmap_pages' wait lasts until the last put: safe.

Users are interchangeable, so the state is canonicalised by sorting their program counters
(symmetry reduction, as Rumur's scalarset and zonedev's stateful search do).

    python teardown_musil.py --nu 4 --rules v5.18 --search first    # one JSON line
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace

from musil import Action, Model, check, check_all

# a user's program counter
BEFORE_PUT, FREEING, DONE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Teardown:
    users: tuple[int, ...]     # each user's program counter
    refcount: int              # the page's refcount: one reference per user
    pgref: int                 # the pgmap's percpu_ref: its initial reference + the pages'
    unmap: int = 0             # memunmap_pages' program counter (see _unmap_steps)
    dying: bool = False        # percpu_ref_kill done
    memmap_gone: bool = False  # arch_remove_memory done: the struct pages are gone
    uaf: bool = False          # a put_page ran on a struct page that was gone


def _set(t: tuple[int, ...], i: int, v: int) -> tuple[int, ...]:
    return t[:i] + (v,) + t[i + 1:]


def _put(i: int, v518: bool):
    def apply(s: Teardown) -> Teardown:
        c = s.refcount - 1
        return replace(s, users=_set(s.users, i, FREEING if c == 0 else DONE), refcount=c,
                       uaf=s.uaf or s.memmap_gone)
    return apply


def _free(i: int, v518: bool):
    def apply(s: Teardown) -> Teardown:
        if v518:      # free_zone_device_page re-arms the count (v5.18)
            return replace(s, users=_set(s.users, i, DONE), refcount=1)
        return replace(s, users=_set(s.users, i, DONE), pgref=s.pgref - 1)   # put_dev_pagemap (v6.1)
    return apply


def _unmap_steps(v518: bool) -> list[tuple[str, object, object]]:
    """memunmap_pages' steps in order: (name, enabled, apply)."""
    steps = [("percpu_ref_kill", lambda s: True, lambda s: replace(s, dying=True)),
             ("put initial ref", lambda s: True, lambda s: replace(s, pgref=s.pgref - 1))]
    if v518:
        steps.append(("put_dev_pagemap_many", lambda s: True, lambda s: replace(s, pgref=s.pgref - 1)))
    steps += [("wait_for_completion(pgmap->done)", lambda s: s.pgref == 0, lambda s: s),
              ("arch_remove_memory", lambda s: True, lambda s: replace(s, memmap_gone=True))]
    return steps


def model(nu: int, v518: bool) -> Model:
    actions = []
    for i in range(nu):
        actions.append(Action(f"user{i}: put_page", lambda s, i=i: s.users[i] == BEFORE_PUT, _put(i, v518)))
        actions.append(Action(f"user{i}: free_zone_device_page", lambda s, i=i: s.users[i] == FREEING,
                              _free(i, v518)))
    for pc, (name, enabled, apply) in enumerate(_unmap_steps(v518)):
        actions.append(Action(f"memunmap_pages: {name}",
                              lambda s, pc=pc, enabled=enabled: s.unmap == pc and enabled(s),
                              lambda s, apply=apply: replace(apply(s), unmap=s.unmap + 1)))
    last = len(_unmap_steps(v518))
    return Model(init=Teardown(users=(BEFORE_PUT,) * nu, refcount=nu, pgref=2),
                 actions=actions,
                 invariants={"use_after_free": lambda s: not s.uaf},
                 terminal=lambda s: s.unmap == last and all(u == DONE for u in s.users))


def canonical(s: Teardown) -> Teardown:
    return replace(s, users=tuple(sorted(s.users)))


def run(nu: int, rules: str, search: str) -> dict:
    """``search``: ``first`` (musil's check: breadth first, stops at the first violation) or
    ``full`` (check_all: the whole reachable space, every distinct violation)."""
    m = model(nu, rules == "v5.18")
    t = time.perf_counter()
    if search == "first":
        r = check(m, canonicalize=canonical)
        found = [] if r.ok else [r.invariant or r.kind]
        states = r.states_explored
    else:
        rs = check_all(m, canonicalize=canonical)
        found = sorted({r.invariant or r.kind for r in rs})
        states = None
    return {"nu": nu, "rules": rules, "search": search, "found": found, "states": states,
            "seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nu", type=int, default=2)
    ap.add_argument("--rules", choices=["v5.18", "v6.1"], default="v5.18")
    ap.add_argument("--search", choices=["first", "full"], default="first")
    a = ap.parse_args()
    print(json.dumps(run(a.nu, a.rules, a.search)))


if __name__ == "__main__":
    main()
