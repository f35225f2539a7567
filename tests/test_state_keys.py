"""The stateful search's state keys (src/zonedev/rt/state.py): what makes two states one.

Two states may share a key only if every future of them is the same.  These tests plant what a
key could miss -- a plain field of a model object, a list two threads share, a fair retry
loop's memory of what it read -- and check that the stateful search finds the bug only that
hidden state leads to (and, with the key weakened, that the search misses it and the audit,
``state.AUDIT``, names the merge).  Then: the real model's states are cacheable, and the
stateful search gives Optimal-DPOR's finding kinds on a fast subset of the library
(benchmarks/stateful_sweep.py runs every cell)."""

from pathlib import Path

import pytest

import zonedev
from zonedev.rt import state
from zonedev.rt.check import check
from zonedev.sync import Lock, RetryLoop, Var

ROOT = Path(__file__).resolve().parent.parent
SC = ROOT / "scenarios"


class Box:
    """A model object without ``_zd_key``: its plain field is state no sync object holds."""

    def __init__(self) -> None:
        self.who = ""


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


def test_a_key_without_the_hidden_field_merges_and_the_audit_says_so(monkeypatch):
    """Planted: model objects keyed by their class alone.  The two end states merge, the search
    misses the bug, and the audit (a full walk of the reachable state) names the merge."""
    monkeypatch.setattr(state.StateKeys, "_object", lambda self, v, t, depth: ("obj", t))
    r = check(last_writer, mode="stateful", tables=False)
    assert r.exhaustive and _kinds(r) == set() and r.pruned >= 1
    monkeypatch.setattr(state, "AUDIT", True)
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
