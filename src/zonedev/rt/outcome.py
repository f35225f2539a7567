"""What an exploration returns, and the bookkeeping every explorer shares."""

from __future__ import annotations

import time
from typing import Any, Callable

from .engine import Finding


class Budget:
    """Execution and time limits, and a progress callback."""

    def __init__(self, executions: int | None = None, seconds: float | None = None,
                 progress: Callable[[int], None] | None = None, stop_first: bool = False,
                 max_steps: int = 20000) -> None:
        self.executions = executions
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds if seconds else None
        self.progress = progress
        self.stop_first = stop_first
        self.max_steps = max_steps

    def exhausted(self, execs: int) -> bool:
        if self.executions is not None and execs >= self.executions:
            return True
        if self.progress is not None:
            self.progress(execs)
        return self.deadline is not None and time.perf_counter() >= self.deadline


class Outcome:
    """The result of one exploration of one scenario on one kernel."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.executions = 0       # complete (maximal) executions explored
        self.blocked = 0          # executions cut because every enabled thread was asleep (DPOR)
        self.pruned = 0           # stateful: transitions into already-visited states
        self.steps = 0            # steps executed, replays included
        self.states = 0           # distinct states (stateful) or final states (random/PCT)
        self.traces = 0           # distinct Mazurkiewicz traces seen (random/PCT)
        self.exhaustive = False   # the search space was covered (within the mode's reduction)
        self.elapsed = 0.0
        self.findings: dict[Any, Finding] = {}
        self.note = ""

    def add(self, f: Finding, schedule: list[int], preemptions: int, names: list[str]) -> bool:
        """Keep ``f`` unless one of its kind with no more preemptions is already known."""
        old = self.findings.get(f.signature)
        if old is not None and (old.preemptions, old.steps) <= (preemptions, len(schedule)):
            return False
        f.schedule = schedule_string(schedule)
        f.preemptions = preemptions
        f.steps = len(schedule)
        f.names = list(names)
        self.findings[f.signature] = f
        return True


def preemptions_of(schedule: list[int], enabled: list[int]) -> int:
    """Switches away from a thread that could have gone on (``enabled``: masks before each step)."""
    n = 0
    for i in range(1, len(schedule)):
        a, b = schedule[i - 1], schedule[i]
        if a != b and enabled[i] >> a & 1:
            n += 1
    return n


def schedule_string(schedule: list[int]) -> str:
    """Thread indexes per step, dot-separated, runs written ``T*K``: ``0*3.1.2*2``."""
    out = []
    i, n = 0, len(schedule)
    while i < n:
        t = schedule[i]
        j = i
        while j < n and schedule[j] == t:
            j += 1
        out.append(str(t) if j - i == 1 else f"{t}*{j - i}")
        i = j
    return ".".join(out)


class BadSchedule(ValueError):
    pass


def parse_schedule(text: str) -> list[int]:
    out: list[int] = []
    text = text.strip().strip('"')
    if not text:
        return out
    for part in text.replace(",", ".").split("."):
        part = part.strip()
        try:
            if "*" in part:
                t, k = part.split("*", 1)
                out.extend([int(t)] * int(k))
            else:
                out.append(int(part))
        except ValueError:
            raise BadSchedule(f"bad schedule element {part!r} (expected T or T*K)") from None
    return out
