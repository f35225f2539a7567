"""Fair retry loops (RetryLoop) and livelock detection: a spinner never needs a retry cap, an
unfair schedule cannot starve the thread it waits for, and a cycle of retries that nothing can
change is a ``livelock`` finding naming the loops."""

import pytest

import zonedev
from zonedev.rt.dpor import explore_dpor
from zonedev.rt.engine import Runner
from zonedev.rt.explore import explore_dfs
from zonedev.rt.outcome import Budget
from zonedev.sync import RetryLoop, Var, WouldBlockForever, use_world


def _kinds(out):
    return {sig[0] if sig[0] != "violation" else sig[1] for sig in out.findings}


def explore(sc, params, mode):
    runner = Runner(sc, None, params)
    if mode == "naive":
        return explore_dfs(runner, Budget())
    return explore_dpor(runner, Budget(), optimal=mode == "optimal")


@zonedev.scenario(kernel=False)
def spin_until_set(k):
    """A thread spins (cpu_relax) until another sets a flag: without fairness the explorer could
    run the spinner for ever; with RetryLoop every schedule is finite and ends well."""
    flag = Var(0, "flag")
    seen = Var(0, "seen")

    def spinner():
        loop = RetryLoop("spinner: cpu_relax")
        while not flag.get("READ_ONCE(flag)"):
            loop.retry([flag])
        seen.set(1)

    def setter():
        flag.set(1, "WRITE_ONCE(flag, 1)")

    def done():
        return None if seen.peek() == 1 else "spinner never saw the flag"

    return zonedev.Run({"spinner": spinner, "setter": setter},
                       finally_=[zonedev.Check(done, "final", "spinner_done")])


@pytest.mark.parametrize("mode", ["naive", "dpor", "optimal"])
def test_a_spinner_is_fair_every_schedule_finite_and_clean(mode):
    out = explore(spin_until_set, {}, mode)
    assert out.exhaustive and not out.note
    assert _kinds(out) == set()
    assert out.executions >= 2


@zonedev.scenario(params={"fixed": False}, kernel=False)
def flags(k, fixed):
    """Two threads each raise their flag and retry while the other's is up (the planted
    livelock: once both flags are up neither ever changes, both spin for ever).  fixed=True: the
    second thread backs off -- drops its flag while it waits -- so the first gets in, and then
    the second."""
    flag = [Var(0, "flag0"), Var(0, "flag1")]
    inside = Var(0, "inside")

    def thread(me):
        mine, other = flag[me], flag[1 - me]

        def run():
            loop = RetryLoop(f"t{me}: wait for the other's flag")
            mine.set(1)
            while other.get():
                if fixed and me == 1:
                    mine.set(0)
                    loop.retry([other])
                    mine.set(1)
                else:
                    loop.retry([other])
            inside.set(inside.get() + 1)
            mine.set(0)
        return run

    def both_got_in():
        return None if inside.peek() == 2 else f"{inside.peek()} of 2 threads got in"

    return zonedev.Run({"t0": thread(0), "t1": thread(1)},
                       finally_=[zonedev.Check(both_got_in, "final", "both_got_in")])


@pytest.mark.parametrize("mode", ["naive", "dpor", "optimal"])
def test_planted_livelock_is_found_and_names_the_loops(mode):
    out = explore(flags, {"fixed": False}, mode)
    assert out.exhaustive
    assert _kinds(out) == {"livelock"}
    (f,) = out.findings.values()
    assert "t0: wait for the other's flag" in f.message and "t1: wait for the other's flag" in f.message
    assert f.extra["loops"]


@pytest.mark.parametrize("mode", ["naive", "dpor", "optimal"])
def test_the_fixed_backoff_has_no_livelock(mode):
    out = explore(flags, {"fixed": True}, mode)
    assert out.exhaustive
    assert _kinds(out) == set()


def test_a_livelock_outside_the_checker_would_spin_for_ever():
    with use_world():
        flag = Var(0, "flag")
        loop = RetryLoop("lonely spinner")
        loop.retry([flag])                     # the first retry goes on
        with pytest.raises(WouldBlockForever):
            loop.retry([flag])                 # nothing can change the flag


def test_a_retry_must_name_its_inputs():
    with use_world():
        with pytest.raises(ValueError):
            RetryLoop("blind").retry([])


def test_model_code_has_no_retry_cap():
    """Every kernel retry loop in the model is a RetryLoop: no 'for _ in range(N)' retries left."""
    import pathlib
    import re
    root = pathlib.Path(zonedev.__file__).parent
    offenders = []
    for path in list((root / "linux").rglob("*.py")) + list((root / "patches").rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"for _\w* in range\((\d+)\)", text):
            offenders.append(f"{path.name}: {m.group(0)}")
        if re.search(r"no progress after \d+", text):
            offenders.append(f"{path.name}: a retry cap")
    assert offenders == []


# -- CPUs and work items: a non-preemptible spinner starves a work item on its CPU (F20's shape) --

from zonedev.sync import Cpu, Lock, Work, Worker, lru_add_drain_all  # noqa: E402


@zonedev.scenario(params={"fixed": False}, kernel=False)
def drain_starvation(k, fixed):
    """F20 (kernel_2025_2026.md §3, fixed by b570f37a2ce4) in miniature: a fault path on CPU0
    busy-retries a folio trylock without giving up the CPU; the lock holder (a migration) calls
    lru_add_drain_all(), which waits for the drain work queued on CPU0 -- which cannot run while
    the spinner holds CPU0.  fixed=True: on a failed trylock the fault sleeps until the holder
    unlocks (the CPU is free meanwhile), as b570f37a2ce4 does."""
    cpus = [Cpu(0), Cpu(1)]
    workers = [Worker(c) for c in cpus]
    drains = [Work(lambda: None, f"lru_add_drain_per_cpu/{c.nr}") for c in cpus]
    folio_lock = Lock("folio lock")

    def migration():
        folio_lock.lock("folio_lock")
        lru_add_drain_all(workers, drains)
        folio_lock.unlock("folio_unlock")

    def fault():
        cpus[0].preempt_disable()
        loop = RetryLoop("hmm_range_fault: folio_trylock failed, retry")
        while not folio_lock.trylock("folio_trylock"):
            if fixed:
                cpus[0].preempt_enable()
                folio_lock.lock("folio_lock (wait for the holder)")
                cpus[0].preempt_disable()
                break
            loop.retry([folio_lock])
        folio_lock.unlock("folio_unlock")
        cpus[0].preempt_enable()

    return zonedev.Run({"migration": migration, "fault": fault,
                        "kworker/0": workers[0].kthread, "kworker/1": workers[1].kthread})


@pytest.mark.parametrize("mode", ["dpor", "optimal"])
def test_a_spinner_starving_the_drain_work_on_its_cpu_is_a_livelock(mode):
    out = explore(drain_starvation, {"fixed": False}, mode)
    assert out.exhaustive
    assert _kinds(out) == {"livelock"}
    (f,) = out.findings.values()
    assert "hmm_range_fault: folio_trylock failed, retry" in f.message
    assert "migration waits in lru_add_drain_all: flush_work" in f.message


@pytest.mark.parametrize("mode", ["dpor", "optimal"])
def test_waiting_for_the_lock_holder_instead_has_no_livelock(mode):
    out = explore(drain_starvation, {"fixed": True}, mode)
    assert out.exhaustive
    assert _kinds(out) == set()      # idle kworkers at the end are no hang
