"""The 3-thread HMM scenario shape from issue 11 (a driver author's): two CPUs fault the same
device-private page while the driver evicts the device memory (HMM_DMIRROR_RELEASE:
``migrate_device_range`` then ``memunmap_pages``), on v6.1.  The second CPU's thread also exits
the process once both faults are done (release_vs_fault's exit, folded into it: otherwise an
eviction that had to skip the page waits in ``memunmap_pages`` and the search reports that
transient wait as a hang).

    zonedev check benchmarks/hmm3.py::two_faults_and_evict --kernel v6.1 --jobs 2 --time 300
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
