"""CPUs, non-preemptible sections and per-CPU work items: enough to express a spinner that
starves a work item queued on its own CPU (F20 of kernel_2025_2026.md).

Kernel sources: include/linux/preempt.h (``preempt_disable``/``preempt_enable``),
kernel/workqueue.c (``queue_work_on``: the work runs in a kworker bound to that CPU;
``flush_work``: sleep until the last queueing of the work has finished), mm/swap.c
(``lru_add_drain_all``: queue the per-CPU drain work on every CPU with pages in its batches,
then ``flush_work`` each -- the model queues on every CPU).

What is modelled
----------------
* A :class:`Cpu` records which thread runs on it non-preemptibly (``preempt_disable`` to
  ``preempt_enable``, a spinlock held, a busy retry loop in a non-preemptible kernel).  The
  model's threads are not otherwise bound to CPUs: a thread that never disables preemption
  interleaves freely, as a preemptible task migrating between CPUs would.
* A :class:`Worker` is the kworker of one CPU, a thread of the scenario (``worker.kthread``).
  It runs queued work items one by one, and only while no *other* thread holds its CPU
  non-preemptibly: a busy-waiting thread that never gives up the CPU keeps the work from
  running.  With nothing queued it waits idle (an idle kworker at the end is no hang).
* ``queue_work_on`` / ``flush_work`` / :func:`lru_add_drain_all` as in the kernel, for one
  workqueue: a work already pending is not queued twice (``queue_work_on`` returns False).

Not modelled: CPU hotplug, unbound workqueues, rescuer threads, per-CPU batches (the drain work
is queued on every CPU), and preemption of a preemptible thread by a higher-priority one.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable  # noqa: F401

from .world import IDLE_LABELS, READ, WRITE, SyncObject

WORKER_IDLE = "worker_thread: waiting for work"
IDLE_LABELS.add(WORKER_IDLE)


class Cpu(SyncObject):
    """One CPU: the thread running on it non-preemptibly (None: preemptible)."""

    __slots__ = ("nr", "occupant", "depth")

    def __init__(self, nr: int) -> None:
        super().__init__(f"cpu{nr}")
        self.nr = nr
        self.occupant: str | None = None
        self.depth = 0

    def _zd_state(self) -> tuple:
        return (self.occupant, self.depth)

    def preempt_disable(self, label: str = "preempt_disable") -> None:
        """Run on this CPU non-preemptibly from now (nests)."""
        me = self.world.thread_name()
        self.world.point(self, WRITE, label, lambda: self.occupant in (None, me))
        self.occupant = me
        self.depth += 1

    def preempt_enable(self, label: str = "preempt_enable") -> None:
        self.world.point(self, WRITE, label)
        me = self.world.thread_name()
        if self.occupant != me:
            raise AssertionError(f"{label}: {self.name} is held by {self.occupant}, not {me}")
        self.depth -= 1
        if not self.depth:
            self.occupant = None


class Work(SyncObject):
    """``struct work_struct``: ``fn`` and whether it is pending; ``done`` counts completed runs."""

    __slots__ = ("fn", "pending", "running", "done")

    def __init__(self, fn: Callable[[], Any], name: str = "work") -> None:
        super().__init__(name)
        self.fn = fn
        self.pending = False
        self.running = False
        self.done = 0

    def _zd_state(self) -> tuple:
        return (self.pending, self.running, self.done)


class Worker(SyncObject):
    """The kworker bound to ``cpu``: its queue of work items."""

    __slots__ = ("cpu", "queue")

    def __init__(self, cpu: Cpu) -> None:
        super().__init__(f"kworker/{cpu.nr}")
        self.cpu = cpu
        self.queue: list[Work] = []

    def _zd_state(self) -> tuple:
        return tuple(w.oid for w in self.queue)

    def kthread(self) -> None:
        """``worker_thread``: run each queued work item while the CPU is not held by another
        thread; idle when nothing is queued."""
        me = self.name
        while True:
            # ready() runs in the checker, not in this thread: compare the occupant with our name
            self.world.point(self, WRITE, WORKER_IDLE,
                             lambda: bool(self.queue) and self.cpu.occupant in (None, me), (self.cpu,))
            work = self.queue.pop(0)
            work.world.point(work, WRITE, f"process_one_work: {work.name}")
            work.pending = False
            work.running = True
            work.fn()
            work.world.point(work, WRITE, f"process_one_work: {work.name} done")
            work.running = False
            work.done += 1


def queue_work_on(worker: Worker, work: Work, label: str = "queue_work_on") -> bool:
    """Queue ``work`` on ``worker``'s CPU; False if it was already pending."""
    worker.world.point(worker, WRITE, label, None, (work,))
    if work.pending:
        return False
    work.pending = True
    worker.queue.append(work)
    return True


def flush_work(work: Work, label: str = "flush_work") -> None:
    """Sleep until ``work`` is neither pending nor running."""
    work.world.point(work, READ, label, lambda: not work.pending and not work.running)


def lru_add_drain_all(workers: Iterable[Worker], works: Iterable[Work]) -> None:
    """mm/swap.c ``lru_add_drain_all()``: queue each CPU's drain work and flush them all."""
    pairs = list(zip(workers, works))
    for worker, work in pairs:
        queue_work_on(worker, work, "lru_add_drain_all: queue_work_on")
    for _, work in pairs:
        flush_work(work, "lru_add_drain_all: flush_work")
