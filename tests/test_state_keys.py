"""The stateful search's state keys (src/zonedev/rt/state.py): what makes two states one.

Two states may share a key only if every future of them is the same.  These tests plant what a
key could miss -- a plain field of a model object, a list two threads share, a fair retry
loop's memory of what it read -- and check that the stateful search finds the bug only that
hidden state leads to (and, with the key weakened, that the search misses it and the audit,
``state.AUDIT``, names the merge).  Then: the real model's states are cacheable, and the
stateful search gives Optimal-DPOR's finding kinds on a fast subset of the library
(benchmarks/stateful_sweep.py runs every cell)."""

import importlib
from pathlib import Path

import pytest

import zonedev
from zonedev.rt import state
from zonedev.rt.check import check
from zonedev.sync import Lock, RetryLoop, Var

explore = importlib.import_module("zonedev.rt.explore")   # (zonedev.rt.explore is also a function's name)

ROOT = Path(__file__).resolve().parent.parent
SC = ROOT / "scenarios"


class Box:
    """A model object without ``_zd_key``: its plain field is state no sync object holds."""

    def __init__(self) -> None:
        self.who = ""


@pytest.fixture
def pure(monkeypatch):
    """The interpreted state.py, which the explorers then build their keys with: a compiled
    class's methods cannot be replaced, and these tests plant or count through them."""
    module = state.pure()
    monkeypatch.setattr(state, "StateKeys", module.StateKeys)        # what check() builds
    monkeypatch.setattr(explore, "StateKeys", module.StateKeys)      # what the explorers build
    return module


@zonedev.scenario(kernel=False)
def last_writer(k):
    """Two threads each set ``box.who`` under a lock; the check wants ``b`` last.  After both
    orders every sync object is the same (the lock free): only ``box.who`` tells them apart."""
    box = Box()
    lock = Lock("lock")

    def a():
        lock.lock()
        box.who = "a"
        lock.unlock()

    def b():
        lock.lock()
        box.who = "b"
        lock.unlock()

    return zonedev.Run({"a": a, "b": b},
                       finally_=[zonedev.Check(lambda: None if box.who == "b" else f"last writer {box.who}",
                                               "final", "b_last")])


@zonedev.scenario(kernel=False)
def shared_list(k):
    """Both threads append to one list under a lock, the check wants ``[1, 2]``: the list's
    contents are in the key through the threads' closures."""
    seen = []
    lock = Lock("lock")

    def one():
        lock.lock()
        seen.append(1)
        lock.unlock()

    def two():
        lock.lock()
        seen.append(2)
        lock.unlock()

    return zonedev.Run({"one": one, "two": two},
                       finally_=[zonedev.Check(lambda: None if seen == [1, 2] else f"order {seen}",
                                               "final", "one_first")])


@zonedev.scenario(kernel=False, params={"rewrite": 0})
def retry_until_set(k, rewrite):
    """A fair retry loop waits for ``flag``; the other thread writes ``rewrite`` to it.  Writing
    1 lets the loop finish; writing the 0 it already had lets it go round once more and then
    nothing changes: a livelock.  The loop's memory (which writes it has seen) is the state
    that decides, and the counts of writes are not in the world's state."""
    flag = Var(0, "flag")

    def waiter():
        loop = RetryLoop("waiter: retry")
        while not flag.get("read flag"):
            loop.retry([flag])

    def setter():
        flag.set(rewrite, "write flag")

    return zonedev.Run({"waiter": waiter, "setter": setter})


def _kinds(r):
    return {f.kind for f in r.findings}


@pytest.mark.parametrize("sc", [last_writer, shared_list])
def test_hidden_state_keeps_states_apart(sc):
    r = check(sc, mode="stateful", tables=False)
    assert r.exhaustive and _kinds(r) == {"final"} == _kinds(check(sc, mode="dpor", tables=False))
    assert "could not be cached" not in (r.note or "")


def test_a_key_without_the_hidden_field_merges_and_the_audit_says_so(monkeypatch, pure):
    """Planted: model objects keyed by their class alone.  The two end states merge, the search
    misses the bug, and the audit (a full walk of the reachable state) names the merge."""
    monkeypatch.setattr(pure.StateKeys, "_object", lambda self, v, t, depth: ("obj", t))
    r = check(last_writer, mode="stateful", tables=False)
    assert r.exhaustive and _kinds(r) == set() and r.pruned >= 1
    monkeypatch.setattr(pure, "AUDIT", True)
    with pytest.raises(state.UnsoundKey, match="who"):
        check(last_writer, mode="stateful", tables=False)


@pytest.mark.parametrize("rewrite,kinds", [(1, set()), (0, {"livelock"})])
def test_retry_loop_memory_is_in_the_key(rewrite, kinds, monkeypatch):
    monkeypatch.setattr(state, "AUDIT", True)
    r = check(retry_until_set, params={"rewrite": rewrite}, mode="stateful", tables=False)
    assert r.exhaustive and _kinds(r) == kinds
    assert _kinds(check(retry_until_set, params={"rewrite": rewrite}, mode="dpor", tables=False)) == kinds
    assert "could not be cached" not in (r.note or "")


def test_the_hmm_driver_states_are_cacheable():
    """hmm_races::release_vs_fault (ioctl arguments, open files, a process, vm_fault,
    mmu_notifier_range, migrate_vma, page tables in the threads' locals) and the DRM GPU SVM
    driver: every state gets a key, and states repeat."""
    for spec, kn in ((f"{SC}/hmm_races.py::release_vs_fault", "v6.1"),
                     (f"{SC}/k2026.py::drm_fault_vs_evict", "v6.15")):
        r = check(spec, kn, mode="stateful", executions=40, tables=False, minimize=False)
        assert "could not be cached" not in (r.note or ""), (spec, r.note)
        assert r.pruned > 0 and r.states > 40


FAST = [("catalogue.py::f8_memunmap_vs_mapped_private_page", ["v5.17", "v5.18", "v6.1"]),
        ("catalogue.py::f5_release_pages_vs_break_layouts", ["v4.18", "v5.10"]),
        ("trust.py::get_dev_pagemap_vs_memunmap", ["v4.12", "v4.14"]),
        ("fsdax.py::odirect_after_munmap_vs_truncate", ["v4.18"]),
        ("shapes.py::gup_put_vs_devdax_unbind", ["v5.17", "v5.18"]),
        ("seeds.py::dax_free_path", ["v4.18"])]


@pytest.mark.parametrize("spec,kernels", FAST)
def test_stateful_gives_dpors_finding_kinds(spec, kernels):
    for kn in kernels:
        s = check(f"{SC}/{spec}", kn, mode="stateful", tables=False, minimize=False)
        d = check(f"{SC}/{spec}", kn, mode="dpor", tables=False, minimize=False)
        assert s.exhaustive and d.exhaustive, (spec, kn)
        assert _kinds(s) == _kinds(d), (spec, kn, _kinds(s), _kinds(d))
        assert "could not be cached" not in (s.note or "")


@zonedev.scenario(kernel=False, params={"users": 4, "same": True})
def counter_users(k, users, same):
    """``users`` threads each take and drop a reference on one counter; with ``same`` they are
    one function with equal captured values (identical), otherwise each has its own label."""
    from zonedev.sync import Atomic
    c = Atomic(1, "refcount")

    def make(i):
        label = "get" if same else f"get{i}"

        def user():
            c.add_return(1, label)
            if c.sub_return(1, "put") == 0:
                c.add_return(0, "freed")
        return user

    return zonedev.Run([make(i) for i in range(users)])


def test_auto_picks_stateful_for_identical_threads_and_dpor_otherwise():
    same = check(counter_users, tables=False)
    assert same.mode == "stateful" and "identical threads" in same.auto and same.exhaustive
    assert same.as_dict()["auto"] == same.auto
    differ = check(counter_users, params={"same": False}, tables=False)
    assert differ.mode == "dpor" and "no two threads identical" in differ.auto
    # the choice never changes the answer, only the work: 4 identical users are a handful of
    # states, and 4! = 24 orders of their gets and puts for DPOR
    d = check(counter_users, mode="dpor", tables=False)
    assert _kinds(d) == _kinds(same) == set() and same.executions < d.executions
    declared = check(f"{SC}/teardown.py::teardown3", "v6.1", tables=False, minimize=False)
    assert declared.mode == "stateful" and declared.auto == "the scenario declares it"
    assert check(counter_users, preemptions=1, tables=False).mode == "bounded(1)"


def test_auto_goes_on_with_the_stateful_search_when_dpor_does_not_finish(monkeypatch):
    """Threads that differ: auto runs Optimal-DPOR, and a search it has not finished after
    AUTO_SWITCH executions (20,000; 20 here) goes on as the stateful search -- the same findings
    (F9 on v5.10: the use-after-free and the signal), exhaustively, and the note says what DPOR
    ran first.  A search DPOR finishes, or an execution budget, keeps DPOR alone."""
    from zonedev.rt import check as check_mod
    f9 = f"{SC}/catalogue.py::f9_fault_vs_migrate_to_ram"
    dpor = check(f9, "v5.10", tables=False)
    assert dpor.mode == "dpor" and dpor.exhaustive and dpor.executions > 20
    monkeypatch.setattr(check_mod, "AUTO_SWITCH", 20)
    switched = check(f9, "v5.10", tables=False)
    assert switched.mode == "stateful" and "not finished after 20 executions" in switched.auto
    assert switched.exhaustive and _kinds(switched) == _kinds(dpor) == {"use_after_free", "signal"}
    assert "Optimal-DPOR ran 20 executions first" in switched.note
    assert check(f9, "v5.10", tables=False, executions=50).mode == "dpor"
    first = check(f9, "v5.10", tables=False, stop_first=True, minimize=False)
    assert first.findings and not first.exhaustive       # --first: found by whichever search ran
    monkeypatch.setattr(check_mod, "AUTO_SWITCH", 10_000)
    assert check(f9, "v5.10", tables=False).mode == "dpor"


def test_sleep_sets_keep_every_state_and_finding(monkeypatch):
    """Threads that differ: the stateful search skips, with sleep sets, the runs that go round a
    diamond of independent steps into a visited state.  It reaches the states and findings of
    the plain search in fewer executions; planted, with every pair of steps called independent,
    it loses states and the use-after-free (so the footprints are what keeps them)."""
    from zonedev.rt import check as check_mod, explore
    spec = f"{SC}/catalogue.py::f7_teardown_put_frees_busy_page"
    monkeypatch.setattr(check_mod, "SLEEP_SETS", False)
    plain = check(spec, "v5.2", mode="stateful", tables=False, minimize=False)
    monkeypatch.setattr(check_mod, "SLEEP_SETS", True)
    sleep = check(spec, "v5.2", mode="stateful", tables=False, minimize=False)
    assert _kinds(plain) == _kinds(sleep) == {"page_free_while_referenced", "use_after_free"}
    assert sleep.states == plain.states and sleep.executions < plain.executions
    assert plain.exhaustive and sleep.exhaustive
    monkeypatch.setattr(explore, "_fp_conflict", lambda a, b: False)
    planted = check(spec, "v5.2", mode="stateful", tables=False, minimize=False)
    assert "use_after_free" not in _kinds(planted) and planted.states < plain.states


def _f():
    return 1


def _g():
    return 2


def test_code_objects_are_numbered_by_value_and_the_numbers_survive_a_checkpoint():
    """A key holds a number for each code object (a code object's hash is not cached, and
    hashing them was a third of a key): equal code objects share one, and a checkpoint, whose
    code objects come back as equal copies, keeps the numbering, whatever order the resumed
    search meets them in (planted: a restore that numbers afresh gives g f's number)."""
    import pickle
    from zonedev.rt.checkpoint import _dumps
    from zonedev.rt.engine import Runner
    keys = state.StateKeys(Runner(last_writer, None, {}))
    f, g = _f.__code__, _g.__code__
    a, b = keys._cid(f), keys._cid(g)
    assert a != b and keys._cid(f.replace()) == a      # an equal copy: the same number
    saved = pickle.loads(_dumps(keys.save()))          # what --resume reads in another process
    again = state.StateKeys(Runner(last_writer, None, {}))
    again.restore(saved)
    assert again._cid(g) == b and again._cid(f) == a
    assert again._cid(test_code_objects_are_numbered_by_value_and_the_numbers_survive_a_checkpoint.__code__) \
        not in (a, b)


class Slot:
    """A model object with ``_zd_key`` whose plain field only the key's table of fields holds."""

    __slots__ = ("val",)

    def __init__(self) -> None:
        self.val = 0

    def _zd_key(self) -> tuple:
        return ("slot",)


@zonedev.scenario(kernel=False, params={"n": 3})
def lost_update(k, n):
    """n identical threads read ``slot.val`` and write it back plus one, with a point between:
    an update is lost unless they go one at a time.  Each thread holds the slot in a local."""
    slot = Slot()
    x = Var(0, "x")

    def worker():
        s = slot
        x.get()            # (every thread runs to its first point at the start)
        v = s.val
        x.get()
        s.val = v + 1

    return zonedev.Run({f"w{i}": worker for i in range(n)},
                       finally_=[zonedev.Check(lambda: None if slot.val == n else f"lost update: {slot.val}",
                                               "final", "all_counted")])


def test_a_position_lists_its_locals_in_the_codes_order():
    """``f_locals`` lists a frame's locals in the order they were first seen bound, which
    depends on whether the frame's locals were read before (an earlier key in the same
    execution): the same state gave two positions.  A position lists them in the code's order."""
    from zonedev.rt.engine import Runner
    r = Runner(lost_update, None, {"n": 2})
    keys = state.StateKeys(r)
    r.begin()
    keys.reset()
    keys.key()                 # reads w0's locals before v is bound
    r.step(0)                  # w0 reads slot.val into v, stops at its second point
    after_a_key = keys.position(0)
    assert after_a_key >= 0
    r.end()
    r.begin()                  # the same two steps, no key before them
    keys.reset()
    r.step(0)
    assert keys.position(0) == after_a_key
    r.end()


def test_a_replayed_state_keeps_its_positions(monkeypatch, pure):
    """The stateful search starts each execution at a state an earlier one computed a key at
    (its prefix replayed): the threads' positions there are reused (``StateKeys.at_node``) until
    each moves, and their model objects with ``_zd_key`` found again, by key, among this
    execution's.  The same states, executions and findings as walking every position again,
    with the audit on; planted -- the earlier execution's objects kept, whose plain fields are
    that execution's -- the audit names the merge it causes."""
    from zonedev.rt.unsound import UnsoundKey
    monkeypatch.setattr(pure, "AUDIT", True)
    calls = []
    at_node = pure.StateKeys.at_node
    monkeypatch.setattr(pure.StateKeys, "at_node", lambda self, saved: calls.append(1) or at_node(self, saved))

    def answer():
        r = check(lost_update, params={"n": 4}, mode="stateful", minimize=False, tables=False)
        return r.verdict, r.executions, r.states, r.exhaustive, [(f.kind, f.schedule) for f in r.findings]

    reused = answer()
    assert reused[0] == "found" and reused[3] and len(calls) == reused[1] - 1 > 0   # every one but the first
    node = pure.StateKeys.node
    monkeypatch.setattr(pure.StateKeys, "node", lambda self: None)
    assert answer() == reused
    monkeypatch.setattr(pure.StateKeys, "node", node)
    monkeypatch.setattr(pure.StateKeys, "_own_objects", lambda self, t: self.pobjs[t])
    with pytest.raises(UnsoundKey, match="val"):
        answer()


def test_a_thread_that_has_not_moved_keeps_its_rank_in_the_symmetric_order(monkeypatch, pure):
    """The symmetric order ranks threads by their frame chains; a thread's chain is walked
    again only when it has moved since the last key (or the execution started elsewhere), and
    the search is the one that walks every chain at every key (planted -- a rank kept after its
    thread moved -- teardown with 5 users on v5.17 went from 416 to 668 states)."""
    walks = []
    proxy = pure.StateKeys._proxy
    monkeypatch.setattr(pure.StateKeys, "_proxy", lambda self, t: walks.append(t) or proxy(self, t))

    def answer():
        walks.clear()
        r = check(f"{SC}/teardown.py::teardown", "v5.17", params={"users": 5}, mode="stateful",
                  minimize=False, tables=False)
        return (r.executions, r.states, sorted((f.kind, f.schedule) for f in r.findings)), len(walks)

    cached, fewer = answer()
    key = pure.StateKeys.key

    def every_chain(self):
        self.prank = [-1] * len(self.prank)
        return key(self)

    monkeypatch.setattr(pure.StateKeys, "key", every_chain)
    walked, every = answer()
    assert cached == walked and cached[0] > 100
    assert fewer < every / 3


@zonedev.scenario(kernel=False, params={"n": 3})
def appenders(k, n):
    """n identical threads (one function object) append to one list under a lock: the list is
    in every thread's closure, numbered by first visit in the key."""
    seen = []
    lock = Lock("lock")

    def worker():
        lock.lock()
        seen.append(len(seen))
        lock.unlock()

    return zonedev.Run({f"w{i}": worker for i in range(n)},
                       finally_=[zonedev.Check(lambda: None if len(seen) == n else f"{len(seen)} appends",
                                               "final", "all_appended")])


@pytest.mark.parametrize("sc,memoised", [(lost_update, True), (appenders, False)])
def test_a_function_met_again_is_canonicalised_once(monkeypatch, pure, sc, memoised):
    """Identical threads are often one function object, and the key canonicalised its closure
    once per thread.  It now reuses the first form when nothing in the closure is numbered by
    first visit (a list two threads share is, and is walked every time): the same answers as
    canonicalising every time (``state.FUNC_MEMO = False``), the audit on."""
    monkeypatch.setattr(pure, "AUDIT", True)
    hits = []
    canon = pure.StateKeys.canon

    def counting(self, v, depth=0):
        if self.fmemo is not None and id(v) in self.fmemo:
            hits.append(1)
        return canon(self, v, depth)

    monkeypatch.setattr(pure.StateKeys, "canon", counting)

    def answer():
        r = check(sc, params={"n": 4}, mode="stateful", minimize=False, tables=False)
        return r.verdict, r.executions, r.states, sorted((f.kind, f.schedule) for f in r.findings)

    once = answer()
    assert bool(hits) == memoised
    monkeypatch.setattr(pure, "FUNC_MEMO", False)
    assert answer() == once and once[1] > 1
