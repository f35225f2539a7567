"""What an exploration returns, and the bookkeeping every explorer shares."""

from __future__ import annotations

import time
from typing import Any, Callable

from .engine import Finding
from .guard import Interrupted


_stop = [0]


def request_stop(signum: int) -> None:
    """Ask every running exploration to stop at its next execution boundary (a signal handler
    calls this; the CLI exits 128 + ``signum``)."""
    _stop[0] = signum


def stop_requested() -> int:
    """The signal that asked for a stop, 0 when none did."""
    return _stop[0]


def clear_stop() -> None:
    _stop[0] = 0


#: the default ``memory`` budget: the process's resident size at which a search stops
DEFAULT_MEMORY = 4 << 30


def rss() -> int:
    """This process's resident set size in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


try:
    import os as _os
    _PAGE = _os.sysconf("SC_PAGE_SIZE")
except (ValueError, OSError, AttributeError):   # pragma: no cover - not Linux
    _PAGE = 4096


class Budget:
    """Execution, time and memory limits, a progress callback, and checkpoints.

    :meth:`exhausted` is asked before every execution but the first (so ``executions=N`` runs
    exactly N, and ``seconds`` is overshot by at most one execution); ``reason`` says which
    limit stopped the search (``executions``, ``time``, ``memory``, ``interrupted``,
    ``step guard``), empty when none did.  ``checkpoint``: a callable taking the explorer's
    state (a picklable dict): after :meth:`exhausted`, an explorer hands its state to
    :meth:`save` when ``due`` is set (every ``checkpoint_every`` seconds, and when the search
    stops early); ``resume``: such a state to continue from.  ``out``: the explorer's
    :class:`Outcome` so far (what an interrupt reports).
    """

    def __init__(self, executions: int | None = None, seconds: float | None = None,
                 progress: Callable[[int], None] | None = None, stop_first: bool = False,
                 max_steps: int = 20000, memory: int | None = None,
                 checkpoint: Callable[[dict], None] | None = None, checkpoint_every: float = 60.0,
                 resume: dict | None = None) -> None:
        self.executions = executions
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds if seconds else None
        self.progress = progress
        self.stop_first = stop_first
        self.max_steps = max_steps
        self.memory = memory
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.reason = ""
        self.out: Outcome | None = None
        self.due = False
        self._slow = time.perf_counter()          # when memory and checkpoints were last seen to
        self._saved = self._slow

    def stop(self, reason: str) -> None:
        """Stop at the next execution boundary (the step guard calls this)."""
        if not self.reason:
            self.reason = reason

    def exhausted(self, execs: int) -> bool:
        if self.reason:
            return self._stopping()
        if _stop[0]:
            self.reason = "interrupted"
            return self._stopping()
        if self.executions is not None and execs >= self.executions:
            self.reason = "executions"
            return self._stopping()
        if self.progress is not None:
            self.progress(execs)
        now = time.perf_counter()
        if self.deadline is not None and now >= self.deadline:
            self.reason = "time"
            return self._stopping()
        if now - self._slow >= 0.05:
            self._slow = now
            if self.memory is not None and rss() >= self.memory:
                self.reason = "memory"
                return self._stopping()
            if self.checkpoint is not None and now - self._saved >= self.checkpoint_every:
                self.due = True
        return False

    def _stopping(self) -> bool:
        self.due = self.checkpoint is not None
        return True

    def save(self, state: dict) -> None:
        """Hand the explorer's state (at an execution boundary) to ``checkpoint``."""
        self.due = False
        if self.checkpoint is not None:
            self.checkpoint(state)
            self._saved = time.perf_counter()

    def note(self) -> str:
        """What stopped the search early, for the result's note."""
        return {
            "executions": f"stopped at the execution limit ({self.executions})",
            "time": f"stopped at the time limit ({self.seconds:g} s)" if self.seconds else "",
            "memory": f"stopped at the memory limit ({(self.memory or 0) / (1 << 20):.0f} MiB resident)",
            "interrupted": "interrupted",
            "step guard": "stopped by the step guard",
        }.get(self.reason, "")


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
        self.covered = False      # bounded search: every schedule within the bound was explored
        self.truncated = 0        # executions cut at max_steps (their tails were not explored)
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

    def add_found(self, found: list[Finding], schedule: list[int], enabled: list[int], names: list[str]) -> None:
        """The findings of one execution (``schedule``, with the enabled sets of its steps): each
        kept by :meth:`add`'s rule."""
        pre = preemptions_of(schedule, enabled)
        for f in found:
            self.add(f, schedule, pre, names)


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


#: the longest schedule ``parse_schedule`` accepts (steps)
MAX_SCHEDULE = 1_000_000


def parse_schedule(text: str, limit: int = MAX_SCHEDULE) -> list[int]:
    """``0*3.1.2`` -> ``[0, 0, 0, 1, 2]``; :class:`BadSchedule` for what is not a schedule or is
    longer than ``limit`` steps (checked before anything is allocated)."""
    parts: list[tuple[int, int]] = []
    text = text.strip().strip('"')
    if not text:
        return []
    total = 0
    for part in text.replace(",", ".").split("."):
        part = part.strip()
        t, star, k = part.partition("*")
        if not (t.isdigit() and t.isascii() and (not star or (k.isdigit() and k.isascii()))):
            raise BadSchedule(f"bad schedule element {part!r} (expected T or T*K)")
        count = int(k) if star else 1
        if len(t) > 4 or count < 1:
            raise BadSchedule(f"bad schedule element {part!r} (thread {t}, {count} steps)")
        total += count
        if total > limit:
            raise BadSchedule(f"schedule longer than {limit} steps")
        parts.append((int(t), count))
    out: list[int] = []
    for t, count in parts:
        out.extend([t] * count)
    return out
