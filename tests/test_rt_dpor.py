"""DPOR: exact execution counts on the standard benchmark programs, and agreement with naive
exhaustive enumeration on small random programs (reachable final states, read values, hangs)."""

import random
from pathlib import Path

import pytest

import zonedev
from zonedev.rt.dpor import explore_dpor
from zonedev.rt.engine import Runner
from zonedev.rt.explore import explore_dfs
from zonedev.rt.outcome import Budget
from zonedev.rt.scenario import load_scenarios
from zonedev.sync import Atomic, Completion, Lock, Var

BENCH = Path(__file__).resolve().parent.parent / "scenarios" / "dpor_benchmarks.py"


@pytest.fixture(scope="module")
def bench():
    return load_scenarios(BENCH)


def dpor(sc, **params):
    """Both DPOR variants; the optimal one must never be sleep-set blocked here."""
    src = explore_dpor(Runner(sc, None, params), Budget())
    opt = explore_dpor(Runner(sc, None, params), Budget(), optimal=True)
    assert opt.exhaustive and src.exhaustive
    assert opt.executions == src.executions
    assert opt.blocked == 0
    return src


@pytest.mark.parametrize("n", range(1, 9))
def test_readers_count_is_two_to_the_n(bench, n):
    out = dpor(bench["readers"], n=n)
    assert (out.executions, out.blocked, out.exhaustive) == (2 ** n, 0, True)


@pytest.mark.parametrize("n", range(1, 7))
def test_lastzero_count(bench, n):
    out = dpor(bench["lastzero"], n=n)
    expected = {1: 2, 2: 5}.get(n, (n + 3) * 2 ** (n - 2))
    assert out.executions == expected
    assert out.exhaustive


@pytest.mark.parametrize("n,expected", [(11, 1), (12, 8), (13, 64)])
def test_indexer_count(bench, n, expected):
    assert dpor(bench["indexer"], n=n).executions == expected


@pytest.mark.parametrize("n,expected", [(13, 1), (14, 2), (15, 4), (16, 8)])
def test_filesystem_count(bench, n, expected):
    assert dpor(bench["filesystem"], n=n).executions == expected


@pytest.mark.parametrize("n,expected", [(1, 4), (2, 140)])
def test_refcount_has_no_reduction(bench, n, expected):
    # one counter, every step an RMW: DPOR must explore every interleaving (multinomial)
    assert dpor(bench["refcount"], n=n).executions == expected
    assert explore_dfs(Runner(bench["refcount"], None, {"n": n}), Budget()).executions == expected


# -- DPOR against naive enumeration on random programs -------------------------------------------

def random_program(seed, peeks=False):
    rng = random.Random(seed)
    nthreads = rng.choice([2, 2, 3])
    maxops = 4 if nthreads == 2 else 3
    progs = []
    for t in range(nthreads):
        ops = []
        for _ in range(rng.randint(1, maxops)):
            kind = rng.choice(["r", "r", "w", "w", "rmw", "lock", "wait", "complete", "read2"]
                              + (["peek", "peek", "peekw"] if peeks else []))
            ops.append((kind, rng.randrange(2), rng.randrange(1, 4)))
        progs.append(ops)
    return progs


def make_scenario(progs, outcomes):
    @zonedev.scenario(kernel=False)
    def prog(k):
        xs = [Var(0, f"x{i}") for i in range(2)]
        a = Atomic(0, "a")
        lock = Lock("l")
        done = Completion("c")
        logs = [[] for _ in progs]

        def thread(t, ops):
            def run():
                for kind, v, val in ops:
                    if kind == "r":
                        logs[t].append(xs[v].get())
                    elif kind == "w":
                        xs[v].set(val * 10 + t)
                    elif kind == "rmw":
                        logs[t].append(a.add_return(val))
                    elif kind == "lock":
                        with lock:
                            x = xs[v].get()
                            xs[v].set(x + val)
                    elif kind == "wait":
                        done.wait_for_completion()
                    elif kind == "complete":
                        done.complete()
                    elif kind == "read2":
                        logs[t].append((xs[0].get(), xs[1].get()))
                    elif kind == "peek":      # announced access to a, unannounced look at x[v]
                        logs[t].append((a.add_return(val), xs[v].peek()))
                    elif kind == "peekw":     # announced read of x[v], unannounced write of x[1-v]
                        x = xs[v].get()
                        xs[1 - v].value = x + val
            return run

        def record():
            outcomes.add((zonedev.sync.current_world().state(), tuple(map(tuple, logs))))

        return zonedev.Run({f"t{t}": thread(t, ops) for t, ops in enumerate(progs)},
                           finally_=[record])
    return prog


def first_small(generate, make, seed, budget=4000):
    """The first random program ``generate(seed)`` from ``seed`` on (stepping the seed by
    10,000) whose every interleaving can be enumerated naively within ``budget`` executions,
    with that enumeration: ``(program, outcomes, naive outcome)``."""
    for attempt in range(50):
        progs = generate(seed + 10_000 * attempt)
        outcomes = set()
        naive = explore_dfs(Runner(make(progs, outcomes)), Budget(executions=budget))
        if naive.exhaustive:
            return progs, outcomes, naive
    raise AssertionError(f"no small enough program from seed {seed}")


def small_program(seed, **kw):
    return first_small(lambda s: random_program(s, **kw), make_scenario, seed)


def assert_dpor_agrees(progs, naive_out, naive, make, optimal, hang_kinds=("hang",)):
    """DPOR explores the whole space, reaches the same final states and the same hangs as naive
    enumeration, in no more executions; returns DPOR's outcome."""
    dpor_out = set()
    red = explore_dpor(Runner(make(progs, dpor_out)), Budget(), optimal=optimal)
    assert red.exhaustive
    assert dpor_out == naive_out
    hangs = lambda o: {sig for sig in o.findings if sig[0] in hang_kinds}
    assert hangs(red) == hangs(naive)
    assert red.executions <= naive.executions
    return red


@pytest.mark.parametrize("optimal", [False, True])
@pytest.mark.parametrize("seed", range(120))
def test_dpor_agrees_with_naive_enumeration(seed, optimal):
    progs, naive_out, naive = small_program(seed)
    assert_dpor_agrees(progs, naive_out, naive, make_scenario, optimal)


@pytest.mark.parametrize("optimal", [False, True])
@pytest.mark.parametrize("seed", range(60))
def test_dpor_with_observed_footprints_agrees_on_programs_that_peek(seed, optimal):
    from zonedev.rt.observe import Observer
    progs, naive_out, naive = small_program(1000 + seed, peeks=True)
    dpor_out = set()
    with Observer() as obs:
        red = explore_dpor(Runner(make_scenario(progs, dpor_out)), Budget(), obs, optimal=optimal)
    assert red.exhaustive
    assert dpor_out == naive_out
