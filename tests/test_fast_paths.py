"""The real model's fast paths (``zonedev.sync.world.FAST``, issue 11) against the previous code
path: the same executions, sleep-set-blocked executions, steps, findings, counterexamples and
interleaving tables, on library scenarios under Optimal-DPOR (observed footprints on), source-DPOR
and the stateful search, with executions started from a copy of the post-setup world from the
second one on (``rt.snapshot``); the observer's watched twins; and the setups a plan refuses."""

import contextlib
from pathlib import Path

import pytest

import zonedev
from zonedev.rt import snapshot
from zonedev.rt.check import check
from zonedev.rt.engine import Runner, SetupError
from zonedev.sync import world

ROOT = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture(autouse=True)
def plan_at_once(monkeypatch):
    """Read the setup's plan at the first execution (by default after 20 ms of setups)."""
    monkeypatch.setattr(snapshot, "AFTER", 0.0)


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


def _runner(fn, **kw):
    sc = zonedev.scenario(**kw)(fn)
    return Runner(sc, None, None)


def test_a_copy_is_a_new_world_equal_to_a_fresh_setup():
    from zonedev.sync import Atomic, Var
    calls = []

    def two_counters(k):
        calls.append(1)
        a, b = Atomic(1, "a"), Var(("x", 2), "b")
        shared = [a]
        box = {"b": b, 3: (a, b)}
        return zonedev.Run({"t0": lambda: a.add_return(1), "t1": lambda: shared.append(b.get())},
                           invariants=[lambda: None if a.peek() < 9 else "big"])

    r = _runner(two_counters)
    r.begin()
    r.end()
    assert r._plan is not None and r._plan_why == ""
    setups = len(calls)
    r.begin()                        # from the copy: the scenario function does not run
    w1, run1 = r.world, r.run
    r.step(0)
    r.end()
    r.begin()
    w2, run2 = r.world, r.run
    assert len(calls) == setups
    assert w1 is not w2 and run1.fns[0] is not run2.fns[0]
    assert [o.oid for o in w2.objects] == [0, 1] and all(o.world is w2 for o in w2.objects)
    assert w2.objects[0].value == 1          # the first copy's step did not reach the second
    assert w1.objects[0].value == 2
    assert run2.fns[0].__closure__[0].cell_contents is w2.objects[0]
    r.end()


_COUNTER = [0]


def test_a_setup_that_changes_globals_or_makes_what_cannot_be_copied_runs_every_time():
    from zonedev.sync import Atomic

    def counts_globally(k):
        global _SEEN
        _SEEN = _COUNTER[0] = _COUNTER[0] + 1
        a = Atomic(0, "a")
        return zonedev.Run({"t0": lambda: a.add_return(1)})

    def makes_a_generator(k):
        a = Atomic(0, "a")
        gen = iter(range(3))
        return zonedev.Run({"t0": lambda: a.add_return(next(gen))})

    for fn, why in ((counts_globally, "module globals"), (makes_a_generator, "range_iterator")):
        r = _runner(fn)
        r.begin()
        r.end()
        assert r._plan is None and why in r._plan_why
        r.begin()
        r.end()
        assert r._plan is None


def test_a_refused_setup_gives_the_same_answer():
    """Every execution gets its own generator (a shared one would hand the second execution 1,
    and t1 would read 2)."""
    from zonedev.sync import Atomic
    seen = []

    def with_generator(k):
        a = Atomic(0, "a")
        gen = iter(range(10))
        return zonedev.Run({"t0": lambda: a.add_return(next(gen) + 1), "t1": lambda: seen.append(a.read())})

    r = check(zonedev.scenario()(with_generator), mode="dpor", jobs=1)
    assert r.exhaustive and r.executions == 2 and sorted(seen) == [0, 1]


def test_an_execution_cut_short_unwinds_its_threads():
    """``Runner.end`` resumes each thread still at a point with ``aborting`` set, and the point
    raises ``Abort`` there (cheaper than greenlet's throw): the thread's ``finally`` runs, a
    point inside it raises again, and the greenlet is back at the top for the next execution,
    which runs whole."""
    from zonedev.sync import Var
    log = []

    @zonedev.scenario(kernel=False)
    def holder(k):
        x = Var(0, "x")

        def t0():
            try:
                x.set(1)
                x.set(2)
                log.append("ran on")
            finally:
                log.append("finally")
                x.set(3)                 # a point while unwinding
                log.append("past a point in finally")

        def t1():
            log.append(("read", x.get()))

        return zonedev.Run({"t0": t0, "t1": t1})

    r = Runner(holder, None, {})
    for _ in range(2):
        r.begin()
        r.step(0)                        # x.set(1); t0 stops at x.set(2), t1 at x.get()
        r.end()
        assert r.fin == [True, True] and log == ["finally"]
        log.clear()
    r.begin()
    while not all(r.fin):
        r.step(0 if not r.fin[0] else 1)
    r.end()
    assert log == ["ran on", "finally", "past a point in finally", ("read", 3)]


class _Box:
    """A model object with a slot the setup leaves unset and one it sets."""
    __slots__ = ("held", "late")


class _Plain:
    """A model object with a ``__dict__``."""


def _changes_everything(k):
    from zonedev.sync import Atomic, Var
    a = Atomic(1, "a")
    box, plain = _Box(), _Plain()
    box.held = [a]
    plain.n = 1
    table = {"a": a}
    seen = set()
    flag = Var(0, "flag")
    last = None

    def t0():
        nonlocal last
        a.add_return(1)
        box.late = Atomic(7, "made by t0")      # an object the execution makes, in a slot
        box.held.append(box.late)
        plain.extra = box.late                  # an attribute the setup did not set
        plain.n += 1
        table["b"] = box.late
        seen.add(3)
        last = box.late

    def t1():
        flag.set(a.read())

    def t2():
        flag.set(a.add_return(1))

    return zonedev.Run({"t0": t0, "t1": t1, "t2": t2}, invariants=[lambda: None if a.peek() < 9 else "big"])


def test_a_copy_put_back_is_the_setup_again(monkeypatch):
    """``Plan.again`` (the runner's ``reuse``): the same objects, every field, container, cell
    and class as the setup left them, whatever the execution changed or made; a put-back that
    leaves one thing behind is caught by ``Plan.differs``."""
    monkeypatch.setattr(snapshot, "AUDIT_AGAIN", True)     # every put-back against a new copy
    r = _runner(_changes_everything, kernel=False)
    r.reuse = True
    r.begin()
    r.end()
    plan = r._plan
    assert plan is not None and plan._last is None      # (the first execution ran the setup)
    first = None
    for _ in range(3):
        r.begin()
        w, run = r.world, r.run
        first = first or (w, run)
        assert (w, run) == first                        # one copy, put back
        box = next(c.cell_contents for c in run.fns[0].__closure__ if type(c.cell_contents) is _Box)
        assert [o.name for o in w.objects] == ["a", "flag"] and w.objects[0].value == 1
        assert box.held == [w.objects[0]] and not hasattr(box, "late")
        r.step(0)
        r.step(1)
        r.step(2)
        assert w.objects[0].value == 3 and [o.name for o in w.objects] == ["a", "flag", "made by t0"]
        assert box.late.value == 7
        r.end()
    # a put-back that does not unset what the setup left unset: caught
    monkeypatch.setattr(snapshot, "_unset", lambda delete, obj: None)
    with pytest.raises(SetupError, match="differs from a new one"):
        r.begin()


def test_a_put_back_that_misses_something_is_caught_by_the_audit(monkeypatch):
    """With ``AUDIT_AGAIN`` (the tests' check) a search whose put-back copy is not the setup's
    graph stops with an error instead of exploring a wrong world."""
    monkeypatch.setattr(snapshot, "AUDIT_AGAIN", True)
    sc = zonedev.scenario(kernel=False, mode="dpor")(_changes_everything)
    good = check(sc, jobs=1)
    assert good.verdict != "error", good.error
    assert good.executions >= 4          # the setup thrice, a copy, then put back at least once
    monkeypatch.setattr(snapshot, "_empty", lambda cell: None)     # `last` is a cell set by t0
    monkeypatch.setattr(snapshot, "_unset", lambda delete, obj: None)
    bad = check(sc, jobs=1)
    assert bad.verdict == "error" and "differs from a new one" in bad.error


@pytest.mark.parametrize("spec,kernel,kw", [
    ("teardown.py::getput", "v5.18", {"params": {"users": 2}, "mode": "dpor"}),
    ("hmm_races.py::release_vs_fault", "v6.1", {"mode": "dpor", "executions": 150}),
    ("hmm_races.py::fault_vs_migrate", "v6.1", {"mode": "dpor", "executions": 150}),
    ("k2026.py::f20_hmm_range_fault_livelock", "newest", {"mode": "dpor"}),
    ("fsdax.py::f12_truncate_vs_odirect_unpin", "v5.18", {"mode": "dpor"}),
    ("teardown.py::teardown", "v5.18", {"params": {"users": 4}, "mode": "stateful"}),
    ("hmm_races.py::release_vs_fault", "v6.1", {"mode": "stateful", "executions": 100}),
    ("hmm_races.py::fault_vs_migrate", "v6.1", {"mode": "bounded", "preemptions": 1, "executions": 150}),
])
def test_a_put_back_copy_gives_the_same_answer_as_new_copies(monkeypatch, spec, kernel, kw):
    """Optimal-DPOR, the stateful and the bounded search with executions from one copy put back (audited
    after every put-back; the teardown family's state keys too) and from a new copy each: the
    same answer."""
    from zonedev.rt import state
    monkeypatch.setattr(state, "AUDIT", spec.startswith("teardown.py::teardown"))
    monkeypatch.setattr(snapshot, "AUDIT_AGAIN", True)
    reused = check(str(ROOT / spec), kernel, jobs=1, **kw)
    assert reused.verdict != "error", reused.error
    monkeypatch.setattr(Runner, "reusing", lambda self: contextlib.nullcontext())
    copied = check(str(ROOT / spec), kernel, jobs=1, **kw)
    assert answer(reused) == answer(copied)


def test_the_random_walk_starts_from_new_copies(monkeypatch):
    """``check`` searches inside ``Runner.reusing``; the random walk steps out of it (its
    distinct final states may hold model objects, compared by identity): no put-back there,
    one in a DPOR search of the same scenario."""
    calls = []
    real = snapshot.Plan.again

    def again(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(snapshot.Plan, "again", again)
    sc = zonedev.scenario(kernel=False)(_changes_everything)
    r = check(sc, mode="random", executions=20, jobs=1)
    assert r.verdict != "error", r.error
    assert r.executions == 20 and not calls
    assert check(sc, mode="dpor", jobs=1).executions >= 4 and calls
