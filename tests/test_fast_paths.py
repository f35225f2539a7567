"""The real model's fast paths (``zonedev.sync.world.FAST``, issue 11) against the previous code
path: the same executions, sleep-set-blocked executions, steps, findings, counterexamples and
interleaving tables, on library scenarios under Optimal-DPOR (observed footprints on), source-DPOR
and the stateful search; and an unannounced access made after an execution's first recorded
step, to an object made during it, is still observed."""

from pathlib import Path

import pytest

import zonedev
from zonedev.rt.check import check
from zonedev.sync import world

ROOT = Path(__file__).resolve().parent.parent / "scenarios"


def answer(r):
    return (r.verdict, r.executions, r.blocked, r.steps, r.exhaustive, r.states, r.pruned,
            [(f.kind, f.signature, f.schedule, f.preemptions, f.steps, f.message, f.detail, f.table)
             for f in r.findings])


def both(spec, kernel, **kw):
    out = []
    for fast in (False, True):
        world.FAST = fast
        try:
            out.append(check(str(ROOT / spec) if "::" in spec else spec, kernel, jobs=1, **kw))
        finally:
            world.FAST = True
    return out


@pytest.mark.parametrize("spec,kernel,kw", [
    ("teardown.py::getput", "v5.18", {"params": {"users": 2}, "mode": "dpor"}),
    ("teardown.py::getput", "v6.1", {"params": {"users": 2}, "mode": "source-dpor"}),
    ("teardown.py::getput", "v5.18", {"params": {"users": 2}, "mode": "stateful"}),
    ("hmm_races.py::release_vs_fault", "v6.1", {"mode": "dpor", "executions": 250}),
    ("hmm_races.py::anon_teardown", "v6.1", {"mode": "dpor"}),
    ("k2026.py::f20_hmm_range_fault_livelock", "newest", {"mode": "dpor"}),
    ("catalogue.py::f8_memunmap_vs_mapped_private_page", "v5.18", {"mode": "dpor"}),
    ("fsdax.py::f12_truncate_vs_odirect_unpin", "v5.18", {"mode": "dpor"}),
])
def test_same_answer_as_the_previous_path(spec, kernel, kw):
    old, new = both(spec, kernel, **kw)
    assert old.verdict != "error", old.error
    assert answer(new) == answer(old)


def test_objects_are_watched_only_from_the_first_recorded_step():
    """FAST: an execution's sync objects stay plain until recording is first switched on in it;
    then they, and objects made after that, are observed (the DPOR footprints' extra reads and
    writes); a new world starts plain again."""
    from zonedev.rt.observe import Observer
    from zonedev.sync import Atomic, Var, use_world
    with Observer() as obs:
        with use_world() as w:
            a = Atomic(0, "a")
            v = Var(1, "v")
            a.value = 3                           # not recording: nothing seen, a stays plain
            assert type(a) is Atomic and not obs.w
            obs.on = True
            obs.r.clear()
            obs.w.clear()
            b = Atomic(0, "b")                    # made while watched: its init is a write
            b.value = 5
            x = a.value + v.peek()
            obs.on = False
            assert x == 4
            assert obs.w == {b.oid} and obs.r == {a.oid, v.oid}
            assert type(a).__name__ == "Atomic" and isinstance(a, Atomic) and type(a) is not Atomic
            obs.r.clear()
            obs.w.clear()
            b.value = 6                           # recording off again
            assert not obs.w and not obs.r
        with use_world():
            c = Atomic(0, "c")
            assert type(c) is Atomic              # the next execution starts plain
    assert type(Atomic(0, "d")) is Atomic
