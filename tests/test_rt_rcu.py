"""RCU in zonedev.sync: a grace period waits for the readers that were inside when it began,
call_rcu callbacks run after one, and DPOR still agrees with naive enumeration on random
programs that use them (and fair retry loops, RetryLoop)."""

import random

import pytest

import zonedev
from zonedev.rt.dpor import explore_dpor
from zonedev.rt.engine import Runner
from zonedev.rt.explore import explore_dfs
from zonedev.rt.outcome import Budget
from zonedev.sync import Atomic, Rcu, RetryLoop, Var, current_world
from test_rt_dpor import assert_dpor_agrees, first_small


def _kinds(out):
    return {sig[0] if sig[0] != "violation" else sig[1] for sig in out.findings}


@zonedev.scenario(params={"rcu": True, "deferred": False}, kernel=False)
def lookup_vs_free(k, rcu, deferred):
    """A reader looks an object up through an RCU-protected pointer and uses it; the updater
    unpublishes it and frees it after a grace period (synchronize_rcu, or call_rcu with the
    grace-period kthread).  rcu=False: the lookup is outside a read-side section (the bug)."""
    state = Rcu("rcu")
    obj = Atomic(0, "obj.freed")
    ptr = Var("obj", "ptr")
    world = current_world()

    def reader():
        if rcu:
            state.read_lock()
        p = Rcu.dereference(ptr)
        if p is not None and obj.read("READ obj->field"):
            world.violate("use_after_free", "BUG: KASAN: use-after-free (object freed under a reader)")
        if rcu:
            state.read_unlock()

    def free():
        obj.set(1, "kfree")

    def updater():
        Rcu.assign_pointer(ptr, None)
        if deferred:
            state.call_rcu(free)
        else:
            state.synchronize()
            free()

    threads = {"reader": reader, "updater": updater}
    if deferred:
        threads["rcu_gp"] = state.gp_kthread
    return zonedev.Run(threads)


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("optimal", [False, True])
def test_lookup_outside_read_side_section_racing_a_free_is_found(deferred, optimal):
    out = explore_dpor(Runner(lookup_vs_free, None, {"rcu": False, "deferred": deferred}), Budget(),
                       optimal=optimal)
    assert out.exhaustive
    assert _kinds(out) == {"use_after_free"}


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("mode", ["naive", "dpor", "optimal"])
def test_the_same_lookup_under_rcu_is_clean(deferred, mode):
    runner = Runner(lookup_vs_free, None, {"rcu": True, "deferred": deferred})
    if mode == "naive":
        out = explore_dfs(runner, Budget())
    else:
        out = explore_dpor(runner, Budget(), optimal=mode == "optimal")
    assert out.exhaustive and out.executions > 1
    assert _kinds(out) == set()       # the idle grace-period kthread at the end is no hang


@zonedev.scenario(kernel=False)
def sync_in_reader(k):
    """synchronize_rcu inside a read-side section waits for itself."""
    state = Rcu("rcu")

    def t():
        state.read_lock()
        state.synchronize()
        state.read_unlock()

    return zonedev.Run({"t": t})


def test_synchronize_rcu_inside_a_reader_hangs():
    out = explore_dfs(Runner(sync_in_reader), Budget())
    assert _kinds(out) == {"hang"}
    (f,) = out.findings.values()
    assert "synchronize_rcu (grace period)" in f.message


def test_a_reader_that_starts_after_the_grace_period_began_is_not_waited_for():
    """The updater's grace period must not wait for a reader that entered after it started:
    with the reader spinning inside its section until the updater is done, a grace period
    that waited for late readers would hang."""
    @zonedev.scenario(kernel=False)
    def late_reader(k):
        state = Rcu("rcu")
        started = Var(0, "gp_started")
        done = Var(0, "updater_done")

        def updater():
            started.set(1)
            state.synchronize()
            done.set(1)

        def reader():
            while not started.get():
                pass
            state.read_lock()
            done.get()
            state.read_unlock()

        return zonedev.Run({"updater": updater, "reader": reader})

    out = explore_dfs(Runner(late_reader), Budget(executions=20000, max_steps=60))
    assert "hang" not in _kinds(out)


# -- DPOR against naive enumeration on random programs with RCU ---------------------------------

OPS = ["r", "w", "rcu_r", "rcu_r", "sync", "publish", "call_rcu", "nest", "spin"]


def random_rcu_program(seed):
    rng = random.Random(seed)
    nthreads = rng.choice([2, 2, 3])
    maxops = 3 if nthreads == 2 else 2
    progs = []
    for _ in range(nthreads):
        progs.append([(rng.choice(OPS), rng.randrange(2), rng.randrange(1, 4))
                      for _ in range(rng.randint(1, maxops))])
    return progs


def make_rcu_scenario(progs, outcomes):
    deferred = any(kind == "call_rcu" for ops in progs for kind, _, _ in ops)

    @zonedev.scenario(kernel=False)
    def prog(k):
        state = Rcu("rcu")
        xs = [Var(0, f"x{i}") for i in range(2)]
        logs = [[] for _ in progs]

        def thread(t, ops):
            def run():
                for kind, v, val in ops:
                    if kind == "r":
                        logs[t].append(xs[v].get())
                    elif kind == "w":
                        xs[v].set(val * 10 + t)
                    elif kind == "rcu_r":          # a reader: two loads in one section
                        state.read_lock()
                        logs[t].append((Rcu.dereference(xs[v]), xs[1 - v].get()))
                        state.read_unlock()
                    elif kind == "nest":           # nested sections
                        state.read_lock()
                        state.read_lock()
                        logs[t].append(Rcu.dereference(xs[v]))
                        state.read_unlock()
                        logs[t].append(xs[v].get())
                        state.read_unlock()
                    elif kind == "sync":
                        state.synchronize()
                        logs[t].append(xs[v].get())
                    elif kind == "publish":        # unpublish, wait, then reuse (the free)
                        Rcu.assign_pointer(xs[v], 0)
                        state.synchronize()
                        xs[v].set(100 + t)
                    elif kind == "spin":           # a fair retry loop until x[v] is set
                        loop = RetryLoop(f"t{t}: spin on x{v}")
                        while not xs[v].get():
                            loop.retry([xs[v]])
                        logs[t].append(("spun", v))
                    elif kind == "call_rcu":
                        state.call_rcu(lambda v=v, t=t: xs[v].set(200 + t, "rcu callback"))
            return run

        def record():
            outcomes.add((zonedev.sync.current_world().state(), tuple(map(tuple, logs))))

        threads = {f"t{t}": thread(t, ops) for t, ops in enumerate(progs)}
        if deferred:
            threads["rcu_gp"] = state.gp_kthread
        return zonedev.Run(threads, finally_=[record])
    return prog


def small_rcu_program(seed):
    return first_small(random_rcu_program, make_rcu_scenario, seed, budget=800)


@pytest.mark.parametrize("optimal", [False, True])
@pytest.mark.parametrize("seed", range(24))
def test_dpor_agrees_with_naive_enumeration_on_rcu_programs(seed, optimal):
    progs, naive_out, naive = small_rcu_program(seed)
    red = assert_dpor_agrees(progs, naive_out, naive, make_rcu_scenario, optimal, hang_kinds=("hang", "livelock"))
    if optimal:
        assert red.blocked == 0 or red.executions + red.blocked <= naive.executions


# -- RCU in the modelled kernel: F11 (1e57ffb6e3fd) --------------------------------------------

from pathlib import Path  # noqa: E402

from zonedev.patches import KERNELS  # noqa: E402
from zonedev.patches._patch import Patch  # noqa: E402
from zonedev.rt.check import check  # noqa: E402
from zonedev.rt.scenario import load_scenarios  # noqa: E402

TRUST = Path(__file__).resolve().parent.parent / "scenarios" / "trust.py"


@pytest.fixture(scope="module")
def f11():
    return load_scenarios(TRUST)["get_dev_pagemap_vs_memunmap"]


def test_f11_verdict_on_every_modelled_kernel(f11):
    seen = {}
    for name in KERNELS:
        if not f11.applies(name):
            continue
        res = check(f11, name, tables=False, minimize=False)
        assert res.exhaustive
        kinds = frozenset(f.kind for f in res.findings)
        assert kinds == f11.expected(name), name
        seen[name] = kinds
    assert seen["v5.10"] == {"percpu_ref_use_after_exit"} and seen["v5.19"] == {"percpu_ref_use_after_exit"}
    assert seen["v6.0"] == frozenset() and seen["newest"] == frozenset()


NO_RCU = Patch(commit="0000000000", title="planted: get_dev_pagemap without rcu_read_lock", version="v6.0",
               confidence="UNCONFIRMED", replaces="the lookup's read-side section")


@NO_RCU.define
def get_dev_pagemap(k, pfn, pgmap=None):
    pgmap = k.find_dev_pagemap(pfn, "xa_load")
    if pgmap is not None and not pgmap.ref.tryget_live("percpu_ref_tryget_live"):
        pgmap = None
    return pgmap


def test_the_f11_fix_is_correct_only_through_the_grace_period(f11):
    """v6.0's order (erase, synchronize_rcu, exit) with the lookup outside a read-side section:
    the lookup can load the pgmap before the erase and take the reference after the exit."""
    res = check(f11, "v6.0", patches=[NO_RCU], tables=False)
    assert {f.kind for f in res.findings} == {"percpu_ref_use_after_exit"}
