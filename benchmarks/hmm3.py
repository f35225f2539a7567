"""The 3-thread HMM scenario shape from issue 11 (a driver author's): two CPUs fault the same
device-private page while the driver evicts the device memory (HMM_DMIRROR_RELEASE:
``migrate_device_range`` then ``memunmap_pages``), on v6.1.  The second CPU's thread also exits
the process once both faults are done (release_vs_fault's exit, folded into it: otherwise an
eviction that had to skip the page waits in ``memunmap_pages`` and the search reports that
transient wait as a hang).

    zonedev check benchmarks/hmm3.py::two_faults_and_evict --kernel v6.1 --jobs 2 --time 300
    python benchmarks/hmm3.py [SECONDS]    # DPOR, stateful with and without sleep sets, same run

Run as a program it gives each search the same time budget and prints, for each, executions,
distinct states, CPU time and whether it finished (CPU time: the machine is shared).
"""

import zonedev
from zonedev.linux.lib.test_hmm import HMM_DMIRROR_RELEASE, hmm_dmirror_cmd

import importlib.util
import pathlib

_spec = importlib.util.spec_from_file_location(
    "_hmm_races", pathlib.Path(__file__).resolve().parent.parent / "scenarios" / "hmm_races.py")
_hmm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hmm)


@zonedev.scenario(kernels=["v6.1"])
def two_faults_and_evict(k):
    """Two CPU faults on one device-private page and an eviction of the device memory (v6.1)."""
    from zonedev.sync import Completion
    mod, proc, fd, addr, data = _hmm._device_private_buffer(k)
    signals = []
    faulted = Completion("cpu_fault_a done")

    def cpu_fault_a():
        _hmm._user_fault(k, proc, addr, signals)
        faulted.complete()

    def cpu_fault_b():
        _hmm._user_fault(k, proc, addr, signals)
        faulted.wait_for_completion()
        proc.exit()

    def evict():
        proc.ioctl(fd, HMM_DMIRROR_RELEASE, hmm_dmirror_cmd(addr, [], 1))

    return zonedev.Run({"cpu_fault_a": cpu_fault_a, "cpu_fault_b": cpu_fault_b, "evict": evict},
                       finally_=[_hmm._no_signal(signals)])


if __name__ == "__main__":
    import sys
    import time

    from zonedev.rt import check as check_mod

    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 300.0
    spec = f"{pathlib.Path(__file__).resolve()}::two_faults_and_evict"
    for label, mode, sleep in (("Optimal-DPOR", "dpor", True), ("stateful + sleep sets", "stateful", True),
                               ("stateful, plain", "stateful", False)):
        check_mod.SLEEP_SETS = sleep
        t0 = time.process_time()
        r = check_mod.check(spec, "v6.1", mode=mode, seconds=budget, tables=False, minimize=False)
        print(f"{label:22} {r.executions:8} executions {r.states:8} states "
              f"{time.process_time() - t0:7.1f} s CPU  {'exhaustive' if r.exhaustive else 'NOT exhaustive'}"
              f"  {', '.join(sorted({f.kind for f in r.findings})) or 'no violation'}", flush=True)
