"""Fair retry loops: ``cond_resched()`` / ``cpu_relax()`` / a fault that returns to be retried.

A kernel retry loop (a CPU fault that retries until the PTE allows the access,
``hmm_range_fault()`` returning -EBUSY until the notifier sequence is stable, migration backing
off on an extra reference, a ``trylock`` loop) terminates in a real kernel because the *other*
CPUs make progress while this one spins: the scheduler is fair.  A model checker's schedules are
not; a schedule that runs only the spinner would exhaust any fixed retry cap and report an
exception, lost data or a hang that no fair kernel execution has.

:class:`RetryLoop` replaces every such cap.  ``loop.retry(reads)`` is a blocking point whose
``ready()`` is "another thread wrote one of ``reads`` after this thread last touched it": between
two retries the attempt read those objects; if nobody else wrote them since, running the attempt
again would read the same values and fail the same way, so the thread waits (the first retry
always goes on).  Writes are counted (``SyncObject.wver``, bumped when a non-READ access is
performed, with the writing thread in ``wlast``), not values compared: a value that changed and
changed back (A-B-A) after the attempt read it still lets the retry go on.  No wake-up is lost:
a write by another thread after this thread's last access to the object comes after the
previous retry (the attempt lies between the two) and is the object's last write.  The
thread's own writes count only when they changed the value (its own invalidation bumped the
notifier sequence: the next attempt differs), not when they left it as it was (a failed
``trylock`` is an access of the lock that changes nothing).  ``reads`` must name every object the attempt's outcome depends on (the PTE,
the page lock, the notifier sequence, ...).

When every unfinished thread is blocked and some of them wait in a retry, the checker reports a
``livelock`` naming the loops (in the kernel those CPUs spin for ever); see
``zonedev.rt.engine.Runner.findings_at_end``.
"""

from __future__ import annotations

from typing import Iterable

from .world import READ, SyncObject, current_world

#: labels of retry points (the checker tells a livelock from a hang by them)
RETRY_LABELS: set[str] = set()


class RetryLoop:
    """One execution of one retry loop (make it where the loop starts; it is thread-local)."""

    __slots__ = ("label", "snap", "retries", "world")

    def __init__(self, label: str) -> None:
        self.label = label
        RETRY_LABELS.add(label)
        self.snap: tuple | None = None
        self.retries = 0
        self.world = current_world()

    def retry(self, reads: Iterable[SyncObject]) -> None:
        """Go round again once something in ``reads`` changed since the previous retry."""
        objs = tuple(reads)
        if not objs:
            raise ValueError(f"{self.label}: a retry must name what the attempt read")
        snap = self.snap
        ready = None
        if snap is not None:
            me = self.world.thread_name()
            if tuple([o.oid for o in objs]) != tuple([s[0] for s in snap]):
                ready = None             # a different set of inputs (a PTE appeared) is a change
            else:
                def ready(objs=objs, snap=snap, me=me) -> bool:
                    for o, (_, v, s) in zip(objs, snap):
                        if o.wver != v and (o.wlast != me or o._zd_state() != s):
                            return True
                    return False
        self.world.point(objs[0], READ, self.label, ready, objs[1:])
        self.snap = tuple([(o.oid, o.wver, o._zd_state()) for o in objs])
        self.retries += 1
