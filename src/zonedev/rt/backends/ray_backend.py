"""``--backend ray``: the leaves of a split Optimal-DPOR exploration (:mod:`zonedev.rt.parallel`),
or the index ranges of a random/PCT search (:mod:`zonedev.rt.ranges`), as Ray tasks, on a local
Ray instance or a cluster (``--address``).

A Ray worker rebuilds the runner from what names it -- the scenario file and name, the kernel
name, parameters, patch files, ``--without`` -- once per worker process, and then explores the
leaves and ranges it is handed exactly as a local worker process does.  So every node of the cluster needs
zonedev installed (``pip install 'zonedev[ray]'``, same version) and the scenario file (and
patch files) at the same path, e.g. a shared checkout or a Ray ``runtime_env`` with
``working_dir``.  See docs/scale.md.
"""

from __future__ import annotations

from typing import Any

_RUNNERS: dict[str, Any] = {}
_OBS: list = []


def ray_missing() -> str:
    """Why the Ray backend cannot be used here ("" when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'zonedev[ray]')"
    return ""


def _runner(job: dict) -> Any:
    """This Ray worker process's runner for ``job`` (built on the first task it gets)."""
    key = repr(sorted(job.items()))
    runner = _RUNNERS.get(key)
    if runner is None:
        from ..check import build_kernel
        from ..engine import Runner
        from ..scenario import resolve
        found = resolve(job["spec"])
        if len(found) != 1:
            raise ValueError(f"{job['spec']}: {len(found)} scenarios on this Ray worker")
        sc = found[0]
        proto, _ = build_kernel(sc, job.get("kernel"), tuple(job.get("patches", ())), tuple(job.get("without", ())))
        runner = _RUNNERS[key] = Runner(sc, proto, job.get("params"))
    return runner


def _unit(job: dict, payload: bytes, observe: bool, max_steps: int, deadline: float | None,
          step_timeout: float | None, stop_first: bool) -> bytes:
    """One leaf of an Optimal-DPOR exploration (its subtree, for at most ``workers.TASK``
    seconds) in a Ray worker process."""
    from ..workers import run_unit
    runner = _runner(job)
    if observe and not _OBS:
        from ..observe import Observer
        obs = Observer()
        obs.__enter__()            # for this worker process's lifetime
        _OBS.append(obs)
    return run_unit(runner, payload, _OBS[0] if observe else None, max_steps, deadline, step_timeout, stop_first)


def _range(job: dict, payload: bytes, observe: bool, max_steps: int, deadline: float | None,
           step_timeout: float | None, stop_first: bool) -> bytes:
    """One index range of a random/PCT search in a Ray worker process (no observer: those
    searches run without one)."""
    from ..ranges import run_range
    return run_range(_runner(job), payload, max_steps, deadline, step_timeout, stop_first)


class RayBackend:
    """Units (``kind`` ``dpor``) or index ranges (``random``) as Ray tasks; ``jobs`` is how many
    may run at once (the coordinator keeps about twice that many handed out)."""

    def __init__(self, jobs: int, job: dict, observe: bool, max_steps: int, deadline: float | None,
                 step_timeout: float | None, address: str | None, stop_first: bool, kind: str = "dpor") -> None:
        import ray
        if not job.get("spec") or "::" not in job["spec"]:
            raise ValueError("--backend ray: the scenario must be named FILE::NAME (Ray workers load it)")
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": jobs}
            ray.init(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False, **kw)
        self.task = ray.remote(num_cpus=1, max_retries=2)(_range if kind == "random" else _unit)
        self.args = (job, observe, max_steps, deadline, step_timeout, stop_first)
        self.job = ray.put(job)
        self.submitted = 0

    def submit(self, payload: bytes) -> Any:
        self.submitted += 1
        job, *rest = self.args
        return self.task.remote(self.job, payload, *rest)

    def ready(self, handle: Any) -> bool:
        done, _ = self.ray.wait([handle], timeout=0)
        return bool(done)

    def get(self, handle: Any) -> bytes:
        return self.ray.get(handle)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
