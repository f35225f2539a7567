"""The step guard: a thread (or a scenario's setup) that runs too long without reaching a sync
point is stopped with :class:`StepTimeout`, naming the thread and where it was.

Model threads only give control back at ``world.point``; a loop that never reaches one (a spin
on a plain Python variable, a ``while True`` in a scenario) would hang the checker for ever.
An interval timer (``SIGALRM``, ten times a second) samples the runner: when the same thread
has been running with the world's step counter unchanged for ``limit`` seconds, the handler
raises :class:`StepTimeout` in that thread's code.  The runner turns it into a
``step_timeout`` finding (the frame the sample caught is the finding's detail) and the search
stops at the next execution boundary; during setup it is a setup error.  The hot path pays
nothing: no tracing, only a signal handler that runs ten times a second.

The guard needs the main thread (signals); elsewhere it is off.
"""

from __future__ import annotations

import signal
import time
import traceback
from contextlib import contextmanager
from typing import Any, Iterator

from greenlet import getcurrent

#: seconds a step may run without reaching a sync point (``--step-timeout``)
DEFAULT_STEP_TIMEOUT = 10.0
TICK = 0.1


class Interrupted(BaseException):
    """A second SIGINT/SIGTERM: stop at once (the first asks for a stop at the next execution
    boundary, see :func:`request_stop`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StepTimeout(BaseException):
    """Raised into code that ran ``limit`` seconds without reaching a sync point.  A
    BaseException, so that model code's ``except Exception`` does not swallow it."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def where(frame: Any) -> str:
    """``file:line in function: source`` of the innermost frame outside zonedev's checker."""
    stack = traceback.extract_stack(frame, limit=30)
    for fr in reversed(stack):
        if "/zonedev/rt/" not in fr.filename and "/greenlet" not in fr.filename:
            return f"{fr.filename}:{fr.lineno} in {fr.name}: {(fr.line or '').strip()}".rstrip(": ")
    return ""


@contextmanager
def step_guard(runner: Any = None, limit: float | None = DEFAULT_STEP_TIMEOUT,
               budget: Any = None, what: str = "setup") -> Iterator[None]:
    """Arm the guard over ``runner``'s executions (or, with no runner, over the block itself:
    loading a file, building a kernel -- ``what`` names it)."""
    if not limit or limit <= 0:
        yield
        return
    mark: list[Any] = [None, time.monotonic()]

    def handler(signum: int, frame: Any) -> None:
        now = time.monotonic()
        cur = getcurrent()
        if runner is None:
            state: Any = ("block",)
            who = what
        else:
            world = runner.world
            in_thread = cur is not runner.main
            if not in_thread and not runner.in_setup:
                mark[0], mark[1] = None, now      # the checker itself is running: not a step
                return
            state = (id(world), world.steps if world is not None else -1, id(cur), runner.in_setup)
            who = f"thread {runner.names[runner.cur]}" if in_thread else f"the setup of {runner.scenario.name}"
        if state != mark[0]:
            mark[0], mark[1] = state, now
            return
        if now - mark[1] >= limit:
            mark[0], mark[1] = None, now
            at = where(frame)
            if budget is not None:
                budget.stop("step guard")
            raise StepTimeout(f"{who} ran {limit:g} s without reaching a sync point"
                              + (f"; at {at}" if at else ""), at)

    try:
        old = signal.signal(signal.SIGALRM, handler)
    except ValueError:          # not the main thread
        yield
        return
    old_timer = signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, *old_timer) if old_timer[0] else signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
