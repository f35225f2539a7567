"""Scenarios for the budget and interrupt tests (tests/test_budgets.py, tests/test_interrupts.py)."""

import zonedev
from zonedev.sync import Var


@zonedev.scenario(kernel=False, mode="stateful", params={"threads": 4, "writes": 6, "width": 1})
def scribblers(k, threads, writes, width):
    """Threads writing distinct values to shared variables: states hardly repeat, so the
    stateful search's visited set grows quickly.  ``width`` > 1 writes tuples of that many
    numbers instead of numbers (bigger states: the visited set grows faster)."""
    cells = [Var(0, f"cell{i}") for i in range(3)]

    def writer(t):
        def run():
            for j in range(writes):
                v = t * 100 + j
                cells[(t + j) % 3].set(v if width == 1 else tuple(range(v, v + width)), "WRITE")
        return run
    return zonedev.Run({f"w{t}": writer(t) for t in range(threads)}, symmetric=False)


@zonedev.scenario(kernel=False)
def spin(k):
    """Thread a loops for ever between two sync points (a spin on a plain Python value)."""
    v = Var(0, "v")

    def a():
        v.set(1, "WRITE")
        while True:
            pass

    def b():
        v.get("READ")
    return zonedev.Run({"a": a, "b": b})


@zonedev.scenario(kernel=False)
def spin_in_setup(k):
    """The scenario function itself never returns."""
    while True:
        pass
