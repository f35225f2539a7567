"""Invariants: a scenario's own (reported under the kind it names) and the kernel_eras.md §13
invariants the model checks by itself."""

import zonedev
from zonedev.sync import Lock, Var
from zonedev.rt.check import check

LOST_INCREMENT = zonedev.finding_kind("lost_increment", "a planted invariant of tests/test_invariants.py")


@zonedev.scenario(params={"locked": False}, kernel=False)
def counter_inv(k, locked):
    """Two threads increment a counter (an invariant 'at most 2' and a final check 'both
    counted', each with its own kind).  Unlocked, a read-modify-write can lose an increment."""
    lock = Lock("lock")
    counter = Var(0, "counter")

    def inc():
        if locked:
            lock.lock()
        v = counter.get("READ counter")
        counter.set(v + 1, "WRITE counter")
        if locked:
            lock.unlock()

    def both_counted():
        return None if counter.peek() == 2 else f"counter is {counter.peek()}, expected 2"

    return zonedev.Run({"a": inc, "b": inc},
                       invariants=[zonedev.Check(lambda: counter.peek() <= 2, "invariant", "at_most_2")],
                       finally_=[zonedev.Check(both_counted, LOST_INCREMENT, "both_counted")])


@zonedev.scenario(params={"bound": 2}, kernel=False)
def bounded(k, bound):
    """One thread counts to 2; the invariant Check(kind=lost_increment) fails when the counter
    passes ``bound``; a bare callable invariant is reported as kind 'invariant'."""
    counter = Var(0, "counter")

    def inc():
        counter.set(counter.get() + 1)
        counter.set(counter.get() + 1)

    return zonedev.Run({"a": inc},
                       invariants=[zonedev.Check(lambda: counter.peek() <= bound, LOST_INCREMENT, "at_most"),
                                   lambda: counter.peek() <= bound + 1])


def test_an_invariant_check_is_reported_under_its_own_kind():
    res = check(bounded, params={"bound": 1}, tables=False)
    assert {(f.kind, f.detail) for f in res.findings} == {(LOST_INCREMENT, "at_most")}
    assert all(f.step >= 0 for f in res.findings)          # after a step, not at the end


def test_a_bare_callable_invariant_keeps_kind_invariant():
    res = check(bounded, params={"bound": 0}, tables=False)
    assert {f.kind for f in res.findings} == {LOST_INCREMENT, "invariant"}


def test_invariant_holds_no_finding():
    assert check(bounded, params={"bound": 2}, tables=False).ok


def test_final_and_invariant_kinds_side_by_side():
    bad = check(counter_inv, params={"locked": False}, tables=False)
    assert {f.kind for f in bad.findings} == {LOST_INCREMENT}
    good = check(counter_inv, params={"locked": True}, tables=False)
    assert good.ok and good.exhaustive
