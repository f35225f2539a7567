"""Planted-bug scenarios (and their correct versions) written with sync primitives, for the
checker's tests.  Not collected by pytest (no test_ prefix)."""

import zonedev
from zonedev.sync import Atomic, Completion, Lock, PercpuRef, Var, WaitQueue, current_world


def _freed_once(frees):
    def freed_exactly_once():
        n = frees.peek()
        return None if n == 1 else f"object freed {n} times, expected once"
    return freed_exactly_once


@zonedev.scenario(params={"users": 2, "atomic": False}, kernel=False)
def dec_and_test(k, users, atomic):
    """users threads each drop one reference; the last one frees.  With atomic=False the
    dec-and-test is a plain read then a plain write (the planted bug)."""
    if atomic:
        count = Atomic(users, "obj.refcount")
    else:
        count = Var(users, "obj.refcount")
    frees = Atomic(0, "obj.frees")

    def put():
        if atomic:
            last = count.sub_return(1, "atomic_dec_and_test") == 0
        else:
            v = count.get("READ refcount")
            count.set(v - 1, "WRITE refcount")
            last = v - 1 == 0
        if last:
            frees.add_return(1, "kfree")

    return zonedev.Run({f"put{i}": put for i in range(users)},
                       finally_=[zonedev.Check(_freed_once(frees), "leak", "freed_once")])


@zonedev.scenario(params={"wake": False}, kernel=False)
def wakeup(k, wake):
    """A waiter sleeps until a flag is set; the setter forgets the wake-up unless wake=True."""
    flag = Var(0, "flag")
    wq = WaitQueue("flag_wq")

    def waiter():
        wq.wait_event(lambda: flag.peek() == 1, reads=[flag], label="wait_var_event")

    def setter():
        flag.set(1, "WRITE_ONCE(flag, 1)")
        if wake:
            wq.wake_up("wake_up_var")

    return zonedev.Run({"waiter": waiter, "setter": setter})


@zonedev.scenario(params={"buggy": True}, kernel=False)
def release_twice(k, buggy):
    """Two holders drop their references; the release callback must run once.  The buggy put
    re-reads the count after the decrement (check-then-act), so both can see zero."""
    count = Atomic(2, "ref.count")
    released = Atomic(0, "ref.released")
    world = current_world()

    def release():
        if released.add_return(1, "release") > 1:
            world.violate("release_twice", "release callback run twice (double free)")

    def put():
        if buggy:
            count.sub_return(1, "atomic_dec")
            if count.read("atomic_read") == 0:
                release()
        else:
            if count.sub_return(1, "atomic_dec_and_test") == 0:
                release()

    return zonedev.Run({"holder0": put, "holder1": put})


@zonedev.scenario(kernel=False)
def crash(k):
    """Model code raising an exception under one interleaving only."""
    ptr = Var("object", "ptr")

    def user():
        p = ptr.get("READ_ONCE(ptr)")
        if p is None:
            raise AttributeError("'NoneType' object has no attribute 'refcount' (NULL dereference)")

    def clearer():
        ptr.set(None, "WRITE_ONCE(ptr, NULL)")

    return zonedev.Run({"user": user, "clearer": clearer})


@zonedev.scenario(kernel=False)
def lock_invariant(k):
    """Two threads increment a counter under a lock; the invariant counter <= 2 holds, the
    planted invariant 'counter is even' fails after the first increment."""
    lock = Lock("lock")
    counter = Var(0, "counter")

    def inc():
        with lock:
            counter.set(counter.get() + 1)

    return zonedev.Run({"a": inc, "b": inc},
                       invariants=[lambda: counter.peek() <= 2,
                                   zonedev.Check(lambda: counter.peek() % 2 == 0, "invariant", "even")])


@zonedev.scenario(params={"users": 3, "drain": True}, kernel=False, mode="stateful")
def teardown_like(k, users, drain):
    """users drop references on a percpu_ref while the owner kills it and waits for it to
    drain; with drain=False the owner frees without waiting (a use after free)."""
    done = Completion("done")
    ref = PercpuRef(lambda r: done.complete("release"), "ref")
    for _ in range(users):
        ref.get()
    gone = Var(False, "memory_gone")
    world = current_world()

    def user():
        if gone.get("READ memory"):
            world.violate("use_after_free", "user touched freed memory")
        ref.put()

    def owner():
        ref.kill()
        if drain:
            done.wait_for_completion()
        gone.set(True, "free memory")

    return zonedev.Run({**{f"user{i}": user for i in range(users)}, "owner": owner})


@zonedev.scenario(params={"ordered": False}, kernel=False)
def abba(k, ordered):
    """Two locks taken in opposite orders (ABBA deadlock) unless ordered=True."""
    a, b = Lock("lock_a"), Lock("lock_b")

    def t1():
        with a:
            with b:
                pass

    def t2():
        first, second = (a, b) if ordered else (b, a)
        with first:
            with second:
                pass

    return zonedev.Run({"t1": t1, "t2": t2})
