"""RCU: read-side critical sections, grace periods and deferred callbacks, as the checker sees them.

Kernel sources: include/linux/rcupdate.h (``rcu_read_lock``, ``rcu_read_unlock``,
``rcu_dereference``, ``rcu_assign_pointer``, ``call_rcu``), kernel/rcu/tree.c
(``synchronize_rcu``: "wait until a full grace period has elapsed ... all currently executing RCU
read-side critical sections have completed"; callbacks are invoked after a grace period by
``rcu_do_batch``, from softirq or the rcuc kthreads), Documentation/RCU/whatisRCU.rst.

What is modelled
----------------
* One :class:`Rcu` object per world holds who is inside a read-side section.  ``rcu_read_lock``
  and ``rcu_read_unlock`` *write* it (a scheduling point each), so they are dependent with every
  grace period and DPOR explores the orders of readers and updaters.  Nesting is counted; each
  outermost section gets a new generation number, so a grace period can tell a reader that
  left and came back from one that never left.
* ``synchronize_rcu`` is two points: the start of the grace period (a read of the RCU state that
  notes every reader inside *now*) and, if there was one, a blocking wait whose ``ready()`` is
  "none of those readers is still in the section it was in".  Readers that enter after the
  start are not waited for, exactly the guarantee the kernel gives.  A ``synchronize_rcu``
  inside a read-side section waits for itself: the checker reports the hang (lockdep's
  "Illegal synchronize_rcu() in RCU read-side critical section").
* ``call_rcu(fn)`` queues ``fn`` with the readers inside at that moment; :meth:`Rcu.gp_kthread`
  is a thread (add it to the scenario's ``Run``) that runs each callback once its grace period
  has elapsed (``rcu_do_batch``).  With nothing to do it waits idle; an idle grace-period
  thread at the end of an execution is not a hang.
* ``rcu_dereference`` / ``rcu_assign_pointer`` are a read and a write of a :class:`~.Var`.  Under
  sequential consistency (the model's memory model) their ordering guarantees (address
  dependency, release store) hold by construction; what RCU adds is the lifetime rule, which
  the grace period enforces.

Not modelled: RCU flavours are one (``synchronize_rcu`` waits for ``rcu_read_lock_sched`` and
irq-off regions too since v4.20's flavour consolidation; the model treats every read-side
marker alike), expedited grace periods (same guarantee, faster), and ``kfree_rcu`` batching.
"""

from __future__ import annotations

from typing import Any, Callable

from .primitives import Var
from .world import IDLE_LABELS, READ, WRITE, SyncObject

GP_KTHREAD = "rcu_gp_kthread: waiting for callbacks"
IDLE_LABELS.add(GP_KTHREAD)


class Rcu(SyncObject):
    """The RCU state of one world: readers inside, their generations, queued callbacks."""

    __slots__ = ("inside", "gens", "callbacks")

    def __init__(self, name: str = "rcu") -> None:
        super().__init__(name)
        self.inside: dict[str, tuple[int, int]] = {}    # thread -> (nesting, generation)
        self.gens: dict[str, int] = {}                   # thread -> outermost sections entered
        self.callbacks: list[tuple[str, frozenset, Callable[[], Any]]] = []

    def _zd_state(self) -> tuple:
        return (tuple(sorted(self.inside.items())), tuple(sorted(self.gens.items())),
                tuple((label, tuple(sorted(snap))) for label, snap, _ in self.callbacks))

    # -- readers -----------------------------------------------------------------------------
    def read_lock(self, label: str = "rcu_read_lock") -> None:
        self.world.point(self, WRITE, label)
        me = self.world.thread_name()
        n, g = self.inside.get(me, (0, 0))
        if n == 0:
            g = self.gens[me] = self.gens.get(me, 0) + 1
        self.inside[me] = (n + 1, g)

    def read_unlock(self, label: str = "rcu_read_unlock") -> None:
        self.world.point(self, WRITE, label)
        me = self.world.thread_name()
        n, g = self.inside.get(me, (0, 0))
        if n == 0:
            raise AssertionError(f"{label}: {me} is not in an RCU read-side critical section")
        if n == 1:
            del self.inside[me]
        else:
            self.inside[me] = (n - 1, g)

    def read_lock_held(self) -> bool:
        """``rcu_read_lock_held()`` for the running thread (no scheduling point: a check)."""
        return self.world.thread_name() in self.inside

    # -- updaters ----------------------------------------------------------------------------
    def _snapshot(self) -> frozenset:
        return frozenset((t, g) for t, (n, g) in self.inside.items())

    def _elapsed(self, snap: frozenset) -> bool:
        inside = self.inside
        for t, g in snap:
            cur = inside.get(t)
            if cur is not None and cur[1] == g:
                return False
        return True

    def synchronize(self, label: str = "synchronize_rcu") -> None:
        """Return once every reader that was inside when this call began has left."""
        self.world.point(self, READ, label)
        snap = self._snapshot()
        if snap:
            self.world.point(self, READ, label + " (grace period)", lambda: self._elapsed(snap))

    def call_rcu(self, fn: Callable[[], Any], label: str = "call_rcu") -> None:
        """Queue ``fn`` to run after a grace period (in :meth:`gp_kthread`)."""
        self.world.point(self, WRITE, label)
        self.callbacks.append((label, self._snapshot(), fn))

    def _callback_ready(self) -> bool:
        return any(self._elapsed(snap) for _, snap, _ in self.callbacks)

    def gp_kthread(self) -> None:
        """The grace-period machinery as a thread: run each queued callback after its grace
        period (``rcu_do_batch``), forever; idle when there is nothing to run."""
        while True:
            self.world.point(self, WRITE, GP_KTHREAD, self._callback_ready)
            for i, (label, snap, fn) in enumerate(self.callbacks):
                if self._elapsed(snap):
                    del self.callbacks[i]
                    fn()
                    break

    # -- RCU-protected pointers --------------------------------------------------------------
    @staticmethod
    def dereference(var: Var, label: str = "rcu_dereference") -> Any:
        """``rcu_dereference(p)``: a read of the pointer (see the module docstring)."""
        return var.get(label)

    @staticmethod
    def assign_pointer(var: Var, value: Any, label: str = "rcu_assign_pointer") -> Any:
        """``rcu_assign_pointer(p, v)``: a write of the pointer; returns the old value."""
        return var.set(value, label)
