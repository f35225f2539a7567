"""State keys for the stateful search: the model's state plus every thread's position.

Two states may share a key only if every future of them is the same.  The key holds:

* the world's state (``World.state()``: every sync object's value, by ``oid``);
* each suspended thread's position, read from its greenlet's frame chain: for each frame the
  code, the instruction offset and the local variables, canonicalised;
* the scenario's thread functions, final checks and invariants (their closures: a list the
  threads append to, a process, a buffer), and its ``Run(state=...)``;
* what the world's state does not say about the sync objects: the names (roles) of those made
  after the setup, in ``oid`` order (``oid`` order depends on the interleaving), and the
  callbacks queued on RCU.

Canonical forms: plain values as they are; sync objects by ``oid``; model objects with
``_zd_key()`` by that key and their plain fields (the class's ``_zd_key`` must cover what else
of it can change); other model objects by their class and every field; lists, dicts, sets and
such objects by first visit within the key (two threads sharing one list are not two threads
holding equal copies); closures by code, cells and defaults; code objects by number (equal
code, one number: CPython does not cache a code object's hash, and hashing positions and
proxies that hold code objects was a third of a key); a fair retry loop
(:class:`~zonedev.sync.retry.RetryLoop`) relative to now -- the values its last attempt read and
whether each object was written since, and by this thread -- because that is what its
``ready()`` decides on and the write counts themselves grow without bound; the kernel by the
names of its attributes (lazily made ones included), once per key.  A value that cannot be canonicalised
makes the state uncacheable (it is then explored without pruning, which is sound).

Symmetry: threads are interchangeable when their whole stacks are equal, so the key lists the
threads in a canonical order (by their frame chains, then by their positions, each ranked in
order of first sight); thread names that appear in the key (a lock's owner) are renamed to the
rank of their thread in that order, consistently.

Audit (``AUDIT = True``, for tests): every merge of two states is checked against a
:class:`Fingerprint`, a walk of everything reachable from the kernel, the threads and the sync
objects that trusts no ``_zd_key`` (only ``Run(opaque=...)``, the scenario's promise that its
``state=`` covers what changes in them); a difference raises :class:`UnsoundKey` naming it.

Limitation (documented in docs/checker.md): values a thread holds on the interpreter's value
stack across a scheduling point (``a.get() + b.get()``) are invisible; model code keeps such
values in local variables.
"""

from __future__ import annotations

import marshal
import operator
import types
from typing import Any, Final

from ..sync.rcu import Rcu
from ..sync.retry import RetryLoop
from ..sync.world import SyncObject, World
from . import native
from .engine import POINT_CODE, Runner
from .unsound import Uncacheable, UnsoundKey

_PLAIN: Final = (int, str, bool, float, bytes, type(None))


#: audit every key against a full walk of the reachable state (tests; very slow)
AUDIT = False

#: a function object met again among the scenario's functions is not canonicalised again (when
#: nothing in its closure is numbered by first visit); False: every time (tests)
FUNC_MEMO = True


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if type(a) is tuple and type(b) is tuple:
        if len(a) != len(b):
            return f"{path}: lengths {len(a)} != {len(b)}: {str(a)[:300]} / {str(b)[:300]}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                tag = x[0] if type(x) is tuple and len(x) == 2 and type(x[0]) is str else i
                return _first_difference(x, y, f"{path}/{tag}")
    return f"{path}: {str(a)[:300]} != {str(b)[:300]}"


def _skip_codes() -> set:
    """The checker's own frames on a suspended thread's stack: ``world.point`` and the
    runner's points (the normal one and the one a replayed prefix hands over in)."""
    from ..sync import world as w
    codes = {Runner.point.__code__, w.World.point.__code__, POINT_CODE}
    for maker in ("_make_point", "_make_replay_point"):
        fn = getattr(Runner, maker, None)
        if fn is not None:
            codes.update(c for c in fn.__code__.co_consts if getattr(c, "co_name", None) == "point")
    return codes


class StateKeys:
    def __init__(self, runner: Runner, symmetry: bool = True) -> None:
        self.runner = runner
        self.symmetry = symmetry
        self.skip = _skip_codes()
        #: the same, by id (``id(code) in set``: a code object's own hash is not cached)
        self.skip_ids: set[int] = {id(c) for c in self.skip}
        #: code object -> its number, by value (what a key holds instead of the code); saved
        self.code_num: dict[Any, int] = {}
        #: id(code) -> its number, for the code objects met in this process (held in
        #: ``code_alive``, so that their ids stay theirs)
        self.cids: dict[int, int] = {}
        #: code number -> its local variables' names, in the code's order: the order of a
        #: position's locals (``f_locals`` lists them in the order they were first seen bound,
        #: which depends on when the frame's locals were first read: the same state gave two
        #: positions)
        self.lnames: dict[int, list] = {}
        self.code_alive: list = []
        self.stop = Runner._body.__code__
        self.retry_code = RetryLoop.retry.__code__
        self.pk: list[Any] = []
        self.pure: list[bool] = []
        #: thread -> its position holds values identified by first visit (no symmetric moves)
        self.ident: list[bool] = []
        #: thread -> the model objects with ``_zd_key`` its position names, (key, object)
        self.pobjs: list[list] = []
        #: the model objects with ``_zd_key`` met so far in the key being computed
        self.keyed: list = []
        #: id(function) -> its canonical form, while the key's functions are canonicalised
        self.fmemo: dict[int, Any] | None = None
        #: thread -> the rank of its frame chain (:meth:`_order`), -1: not known
        self.prank: list[int] = []
        #: thread -> its ``pobjs`` are an earlier execution's objects (:meth:`at_node`)
        self.borrowed: list[bool] = []
        #: ``_zd_key`` -> the object of this execution met with it (:meth:`at_node`), and the
        #: keys met with two objects
        self.live: dict[Any, Any] = {}
        self.ambiguous: set = set()
        self.names: dict[str, Any] = {}
        self.tnames: frozenset = frozenset()
        self.named = True
        self.hit_name = False
        self.dirty: set = set()
        self.slot_names: dict[type, list | None] = {}
        self.getters: dict[type, Any] = {}
        #: type -> how its values are canonicalised (:meth:`_kind`)
        self.kinds: dict[type, int] = {}
        #: mutable values seen in the key being computed: id -> (first-visit index, the value);
        #: the value is held so that its id is not reused while the key is being computed
        self.seen: dict[int, tuple[int, Any]] = {}
        #: False once the position being computed met a mutable value (it is not cached)
        self.clean = True
        #: True once the position being computed met a value numbered by first visit
        self.numbered = False
        self.me = ""
        #: names of the sync objects made after the setup (their roles), by oid
        self.created: tuple = ()
        #: how many sync objects the setup makes (those after it are named in the key)
        self.nsetup: int | None = None
        self.rcus: list = []
        #: position -> its rank, in the order positions were first seen: the symmetric order of
        #: threads (a process-independent order, unlike ``hash``, so a checkpoint resumes in kind)
        self.rank: dict[Any, int] = {}
        #: long tuples met in keys, one copy each (a user buffer many positions hold)
        self.shared: dict[tuple, tuple] = {}
        #: every part of a key seen so far -> its number (a key is the numbers of its parts)
        self.interned: dict[Any, int] = {}
        #: every thread position seen so far -> its number, what :meth:`position` returns: a
        #: position is a nested tuple (frames, their code, offsets and canonical locals) whose
        #: hash CPython does not cache, and the key, the symmetric order and :meth:`dedupe` each
        #: hashed or compared it again (a sixth of the stateful search's time)
        self.pids: dict[Any, int] = {}
        #: every frame entry (code, offset, canonical locals) seen so far -> its number: a
        #: position is a tuple of these (callers' frames repeat across positions)
        self.eids: dict[Any, int] = {}
        #: the explorer reports what each step touched (:meth:`touched`): the world's state is
        #: then kept up to date object by object
        self.incremental = False
        self.cstate: list | None = None
        self.stale: set = set()
        self.dyn: set = set()
        #: the threads in the order of the last key (thread ``order[i]`` is the key's ``i``-th)
        self.order: list[int] = []
        #: key -> :class:`Fingerprint` of the first state with that key, when auditing keys
        self.audit: dict | None = {} if AUDIT else None
        try:
            from ..linux.kernel import Kernel
            self.kernel_cls: type | None = Kernel
        except Exception:  # pragma: no cover
            self.kernel_cls = None

    def save(self) -> dict:
        """What a checkpoint keeps (see :mod:`zonedev.rt.checkpoint`)."""
        return {"rank": self.rank, "nsetup": self.nsetup, "interned": self.interned, "pids": self.pids,
                "codes": self.code_num, "eids": self.eids}

    def restore(self, saved: dict) -> None:
        self.rank = saved["rank"]
        self.nsetup = saved.get("nsetup")
        self.interned = saved.get("interned", {})
        self.pids = saved.get("pids", {})
        self.code_num = saved.get("codes", {})
        self.eids = saved.get("eids", {})
        self.cids = {}

    def _cid(self, code: Any) -> int:
        """``code``'s number: equal code objects have one (in this process and in a checkpoint
        resumed elsewhere), found by id after the first time."""
        i = self.cids.get(id(code))
        if i is None:
            j = self.code_num.get(code)
            if j is None:
                j = self.code_num[code] = len(self.code_num)
            i = self.cids[id(code)] = j
            self.code_alive.append(code)
        return i

    def reset(self) -> None:
        n = self.runner.n
        self.pk = [None] * n
        self.pure = [False] * n
        self.ident = [False] * n
        self.pobjs = [[] for _ in range(n)]
        self.borrowed = [False] * n
        self.prank = [-1] * n
        self.live = {}
        self.ambiguous = set()
        self.cstate = None              # the world's canonical state, rebuilt on the first key
        self.stale = set()
        self.dirty = set(range(n))
        self.tnames = frozenset(self.runner.names)
        objs = self.runner.world.objects
        if self.nsetup is None:        # the first execution, right after its setup (the same
            self.nsetup = len(objs)    # for every execution: the setup is deterministic)
        self.created = ()
        self.rcus = [o for o in objs if isinstance(o, Rcu)]      # (watched twins too)

    def node(self) -> tuple | None:
        """The threads' positions at this state, right after :meth:`key` (None if it was
        uncacheable): for :meth:`at_node` in a later execution that replays to this state."""
        if any(x is None for x in self.pk):
            return None
        return (self.pk[:], self.pure[:], self.ident[:], self.pobjs[:], self.prank[:])

    def at_node(self, saved: tuple) -> None:
        """After :meth:`reset`, at a state an earlier execution computed a key at (its prefix
        replayed: the same state, deterministically): the threads' positions are the ones
        :meth:`node` saved there, and a pure one is not walked again until its thread moves.
        Its model objects with ``_zd_key`` (whose plain fields the key reads afresh) are that
        execution's; :meth:`_own_objects` finds this execution's by their keys.  The stateful
        search's executions each start with the replay of a prefix: without this every
        thread's frames were walked again at its first key (12 of 13 threads on
        ``teardown`` with 12 users, a third of its time)."""
        pk, pure, ident, pobjs, prank = saved
        self.prank = prank[:]
        self.pk = pk[:]
        self.pure = pure[:]
        self.ident = ident[:]
        self.pobjs = pobjs[:]
        self.borrowed = [bool(x) for x in pobjs]
        self.dirty = set()

    def _own_objects(self, t: int) -> list:
        """Thread ``t``'s model objects with ``_zd_key``, of this execution: its borrowed ones
        by their keys among the objects this key met elsewhere (one object to a key), else
        from its frames again (the same position: a pure one only changes when it moves)."""
        live = self.live
        amb = self.ambiguous
        out = []
        for k, _ in self.pobjs[t]:
            v = live.get(k)
            if v is None or k in amb:
                break
            out.append((k, v))
        else:
            if AUDIT:                       # the tests' check: the same as walking the frames
                self._walk_again(t, out)
            self.pobjs[t] = out
            self.borrowed[t] = False
            return out
        self._walk_again(t)
        return self.pobjs[t]

    def _walk_again(self, t: int, found: list | None = None) -> None:
        """Walk thread ``t``'s frames again: a pure position restored from an earlier execution
        must come out the same (and, given, its objects found by key must be the frames')."""
        keyed = self.keyed
        pid = self.pk[t]
        same = self.position(t) == pid and (
            found is None or [(k, id(v)) for k, v in self.pobjs[t]] == [(k, id(v)) for k, v in found])
        self.keyed = keyed
        if not same:                    # pragma: no cover - a checker bug, never a verdict
            raise UnsoundKey(f"thread {self.runner.names[t]}: a position restored from an earlier execution, "
                             f"or its objects found by key, differ from its frames")

    def moved(self, t: int) -> None:
        self.dirty.add(t)

    def touched(self, oids: Any) -> None:
        """The sync objects (``oid``) a step read or wrote: the others kept their state.  Only
        for an explorer that observes every access (:func:`~zonedev.rt.explore.explore_stateful_sleep`);
        a field mutated in place is read first, so reads are included."""
        if self.cstate is not None:
            self.stale.update(oids)

    def _world_state(self) -> tuple:
        """``canon(World.state())``, recomputing only the objects touched since the last key
        (when the explorer reports them) and the entries whose canonical form depends on the key
        (mutable values numbered by first visit, thread names)."""
        objs = self.runner.world.objects
        if not self.incremental:
            return self.canon(tuple([o._zd_state() for o in objs]))
        cs = self.cstate
        if cs is None:
            cs = self.cstate = []
            self.dyn = set()
        dyn = self.dyn
        n = len(cs)
        if self.stale or n < len(objs):
            cs.extend([None] * (len(objs) - n))          # objects made since: all new
            for oid in list(range(n, len(objs))) + [o for o in self.stale if o < n]:
                raw = objs[oid]._zd_state()
                if type(raw) in _FAST:
                    cs[oid] = raw
                    dyn.discard(oid)
                else:
                    dyn.add(oid)             # canonicalised below, in oid order
            self.stale = set()
        canon = self.canon
        done = []
        for oid in sorted(dyn):             # in oid order, as a walk of the whole state would
            clean, numbered, hit = self.clean, self.numbered, self.hit_name
            self.clean, self.hit_name = True, False
            cs[oid] = canon(objs[oid]._zd_state())
            if self.clean and not self.hit_name:
                done.append(oid)             # plain data: kept until the object is touched
            self.clean, self.numbered, self.hit_name = clean, numbered, hit or self.hit_name
        dyn.difference_update(done)
        return tuple(cs)

    # -- canonicalisation -------------------------------------------------------------------
    def _mutable(self, v: Any) -> tuple | None:
        """A mutable value met before in this key: a back reference (identity, not value, is
        what two references to one list share)."""
        self.clean = False
        self.numbered = True
        seen = self.seen.get(id(v))
        if seen is not None:
            return ("ref", seen[0])
        self.seen[id(v)] = (len(self.seen), v)
        return None

    def canon(self, v: Any, depth: int = 0) -> Any:
        t = type(v)
        if t in _PLAIN:
            if t is str and v in self.tnames:
                self.hit_name = True
                return self.names.get(v, v)
            return v
        if depth > 60:
            raise Uncacheable
        kind = self.kinds.get(t)
        if kind is None:
            kind = self.kinds[t] = self._kind(t)
        if kind == _SYNC:
            return ("o", v.oid)
        if kind == _TUPLE:
            out = tuple([x if type(x) in _FAST else self.canon(x, depth + 1) for x in v])
            return self.shared.setdefault(out, out) if len(out) > 8 else out
        if kind == _OBJECT:
            op = self.runner.run.opaque.get(id(v))
            if op is not None:
                return ("opaque", op)
            return self._object(v, t, depth)
        if kind == _KEYED:
            k = v._zd_key()
            # its plain fields go in the key's table of keyed objects, looked at afresh for
            # every key, so that a position naming it stays the same (and cached)
            self.keyed.append((k, v))
            old = self.live.setdefault(k, v)
            if old is not v:
                self.ambiguous.add(k)
            return ("k", k)
        if kind == _LIST:
            back = self._mutable(v)
            if back is not None:
                return back
            out = tuple([x if type(x) in _FAST else self.canon(x, depth + 1) for x in v])
            if len(out) > 8:             # one copy of a buffer the keys of many states hold
                out = self.shared.setdefault(out, out)
            return ("L", len(self.seen) - 1, out)
        if kind == _DICT:
            back = self._mutable(v)
            if back is not None:
                return back
            idx = len(self.seen) - 1
            pairs = [(self.canon(a, depth + 1), self.canon(b, depth + 1)) for a, b in v.items()]
            try:
                pairs.sort(key=_first)
            except TypeError:            # keys of several types: by their text
                pairs.sort(key=repr)
            return ("d", idx) + tuple(pairs)
        if kind == _FUNC:
            memo = self.fmemo
            if memo is not None:
                got = memo.get(id(v))
                if got is not None:
                    return got
                clean, hit = self.clean, self.hit_name
                self.clean, self.hit_name = True, False
            cells = v.__closure__
            out = ("f", self._cid(v.__code__),
                   tuple([self.canon(c.cell_contents, depth + 1) if _full(c) else ("empty",) for c in cells])
                   if cells else (),
                   tuple([self.canon(d, depth + 1) for d in v.__defaults__]) if v.__defaults__ else (),
                   tuple(sorted((a, self.canon(b, depth + 1)) for a, b in v.__kwdefaults__.items()))
                   if v.__kwdefaults__ else ())
            if memo is not None:
                if self.clean and not self.hit_name:     # nothing numbered by first visit
                    memo[id(v)] = out
                self.clean, self.hit_name = clean and self.clean, hit or self.hit_name
            return out
        if kind == _METHOD:
            return ("m", self._cid(v.__func__.__code__), self.canon(v.__self__, depth + 1))
        if kind == _KERNEL:
            return ("kernel",)           # its attributes' names are in the key once (hidden)
        if kind == _CONSTANT:            # a class, a module, code: constants
            return v
        if kind == _RETRY:
            return self._retry(v.label, v.snap)
        if kind == _FROZENSET:
            return ("s",) + tuple(sorted((self.canon(x, depth + 1) for x in v), key=repr))
        if kind == _SET:
            return self._mutable(v) or ("S", len(self.seen) - 1) + tuple(sorted(
                (self.canon(x, depth + 1) for x in v), key=repr))
        if kind == _RANGE:
            return ("range", v.start, v.stop, v.step)
        if kind == _WORLD:
            return ("world",)
        if kind == _EXC:
            return ("exc", t, self.canon(v.args, depth + 1))
        raise Uncacheable

    def _kind(self, t: type) -> int:
        """How values of type ``t`` are canonicalised (decided once per type)."""
        if issubclass(t, SyncObject):
            return _SYNC
        if t is tuple:
            return _TUPLE
        if t is list:
            return _LIST
        if t is dict:
            return _DICT
        if t is types.FunctionType:
            return _FUNC
        if t is types.MethodType:
            return _METHOD
        if t is RetryLoop:
            return _RETRY
        if t is type or t in _CONST or issubclass(t, type):
            return _CONSTANT
        if self.kernel_cls is not None and issubclass(t, self.kernel_cls):
            return _KERNEL
        if callable(getattr(t, "_zd_key", None)):
            return _KEYED
        if t is frozenset:
            return _FROZENSET
        if t is set:
            return _SET
        if t is range:
            return _RANGE
        if issubclass(t, World):
            return _WORLD
        if issubclass(t, BaseException):
            return _EXC
        if t.__flags__ & _HEAPTYPE and t.__module__ not in _FOREIGN:
            return _OBJECT
        return _UNKNOWN

    def _object(self, v: Any, t: type, depth: int) -> Any:
        """A model object without ``_zd_key`` (an ioctl's argument, a ``vm_fault``, a process,
        a ``migrate_vma``): its class and every field, itself by first visit in this key."""
        back = self._mutable(v)
        if back is not None:
            return back
        idx = len(self.seen) - 1
        names: Any = self.slot_names.get(t, False)
        if names is False:
            names = []
            for klass in t.__mro__:
                sl = getattr(klass, "__slots__", ())
                names.extend((sl,) if isinstance(sl, str) else sl)
            if not names:
                names = None
            self.slot_names[t] = names
        fields: list = []
        if names:
            for n in names:
                if n not in ("__dict__", "__weakref__"):
                    fields.append((n, self.canon(getattr(v, n, _MISSING), depth + 1)))
        d = getattr(v, "__dict__", None)
        if d is not None:
            for n in sorted(d):
                fields.append((n, self.canon(d[n], depth + 1)))
        return ("obj", t, idx, tuple(fields))

    def _retry(self, label: str, snap: tuple | None) -> tuple:
        """A fair retry loop's memory, relative to now: for each object its previous attempt
        read, the value it read and whether someone wrote it since (and whether that was this
        thread): what ``RetryLoop.retry``'s ``ready()`` decides on.  The write counts
        themselves grow without bound and are not state."""
        self.clean = False
        if snap is None:
            return ("retry", label, None)
        objs = self.runner.world.objects
        me = self.me
        out = []
        for oid, ver, val in snap:
            o = objs[oid]
            changed = o.wver != ver
            out.append((oid, self.canon(val), changed, changed and o.wlast == me))
        return ("retry", label, tuple(out))

    def _plain_slots(self, v: Any, t: type) -> tuple:
        """A model object's plain fields (``page.memmap_live``): hidden state the world's sync
        objects do not hold.  Object-valued fields are the ``_zd_key``'s to cover."""
        get = self.getters.get(t, False)
        if get is False:
            names: list = []
            for klass in t.__mro__:
                sl = getattr(klass, "__slots__", ())
                names.extend((sl,) if isinstance(sl, str) else sl)
            names = [n for n in names if n not in ("__dict__", "__weakref__")]
            if hasattr(v, "__dict__") or not names:
                get = None
            else:
                get = operator.attrgetter(*names) if len(names) > 1 else (lambda o, n=names[0]: (getattr(o, n),))
            self.getters[t] = get
        if get is None:
            d = getattr(v, "__dict__", None)
            if not d:
                return ()
            return tuple([x for n, x in sorted(d.items()) if type(x) in _PLAIN])
        return tuple([x for x in get(v) if type(x) in _PLAIN])

    def position(self, t: int) -> int:
        """Thread ``t``'s position: its frames (code, offset, canonical locals), by number
        (:attr:`pids`); -1: it finished."""
        self.keyed = self.pobjs[t] = []
        self.borrowed[t] = False
        r = self.runner
        if r.fin[t]:
            self.clean = True
            self.numbered = False
            return -1
        f = r.pool[t].gr_frame
        parts: list[Any] = []
        skip = self.skip_ids
        stop = self.stop
        self.me = r.names[t]
        self.clean = True
        self.numbered = False
        while f is not None:
            code = f.f_code
            if code is stop:
                break
            if code is self.retry_code:
                # retry(): its locals are the loop, the objects and the snapshot ready() holds
                loc = f.f_locals
                rd = loc.get("ready")
                snap = rd.__defaults__[1] if rd is not None and rd.__defaults__ else None
                parts.append((self._cid(code), f.f_lasti, self._retry(loc["self"].label, snap),
                              self.canon(loc.get("objs"))))
            elif id(code) not in skip:
                loc = f.f_locals
                cid = self._cid(code)
                names = self.lnames.get(cid)
                if names is None:
                    names = self.lnames[cid] = list(dict.fromkeys(code.co_varnames + code.co_cellvars
                                                                  + code.co_freevars))
                ls = []
                for k in names:
                    x = loc.get(k, _MISSING)
                    if x is not _MISSING and (k != "self" or type(x) is not Runner):
                        ls.append((k, self.canon(x)))
                entry = (cid, f.f_lasti, tuple(ls))
                eids = self.eids     # a frame by number: the position's tuple hashes cheaply
                parts.append(eids.setdefault(entry, len(eids)))
            f = f.f_back
        objs = self.pobjs[t]
        if len(objs) > 1:            # one entry a key (callers' frames hold the same page)
            one: dict = {}
            for kv in objs:
                if kv[0] not in one:
                    one[kv[0]] = kv[1]
            if len(one) < len(objs):
                self.pobjs[t] = list(one.items())
        out = tuple(parts)
        pids = self.pids
        pid = pids.get(out)
        if pid is None:
            pid = pids[out] = len(pids)
        return pid

    def _created(self) -> tuple:
        objs = self.runner.world.objects
        nsetup = self.nsetup or 0
        if len(self.created) != len(objs) - nsetup:
            self.created = tuple([o.name for o in objs[nsetup:]])
        return self.created

    def _proxy(self, t: int) -> tuple:
        """Thread ``t``'s frame chain without its locals: what orders symmetric threads."""
        r = self.runner
        if r.fin[t]:
            return ("done",)
        f = r.pool[t].gr_frame
        out = []
        stop = self.stop
        skip = self.skip_ids
        while f is not None:
            code = f.f_code
            if code is stop:
                break
            if id(code) not in skip:
                out.append((self._cid(code), f.f_lasti))
            f = f.f_back
        return tuple(out)

    def _order(self) -> list[int]:
        """The threads in a canonical order: by their frame chains (codes and offsets), and
        threads at one place by their whole positions, each ranked in order of first sight."""
        r = self.runner
        n = r.n
        rank = self.rank
        prank = self.prank
        dirty = self.dirty
        for t in range(n):                       # a thread that has not moved is where it was
            if prank[t] < 0 or t in dirty:
                prank[t] = rank.setdefault(("p", self._proxy(t)), len(rank))
        ranks: list[Any] = prank[:]
        if len(set(ranks)) < n:                  # threads at one place: their locals decide
            pk = self.pk
            for t in range(n):
                if ranks.count(ranks[t]) > 1:
                    if t in self.dirty or not self.pure[t]:
                        self.seen = {}
                        self.hit_name = False
                        pk[t] = self.position(t)
                        if self.clean and not self.hit_name:     # what key() would compute
                            self.pure[t] = True
                            self.ident[t] = self.numbered
                            self.dirty.discard(t)
                    ranks[t] = (ranks[t], rank.setdefault(pk[t], len(rank)))
                else:
                    ranks[t] = (ranks[t], -1)
        return sorted(range(n), key=ranks.__getitem__)

    def key(self) -> Any:
        r = self.runner
        n = r.n
        self.names = {}
        self.named = True
        self.seen = {}
        self.hit_name = False
        try:
            pk = self.pk
            pure = self.pure
            run = r.run
            if self.symmetry and run.symmetric and n > 1:
                order = self._order()
                self.names = {r.names[t]: ("T", i) for i, t in enumerate(order)}
            else:
                order = list(range(n))
            self.order = order
            self.seen = {}
            self.hit_name = False
            keyed: list = []
            self.keyed = keyed
            state: Any = self._world_state()
            # mutable values are numbered across all threads (sharing is state)
            positions = []
            dirty = self.dirty
            borrowed = self.borrowed
            late: list[int] = []
            for t in order:
                if t in dirty or not pure[t]:
                    hit = self.hit_name
                    self.hit_name = False
                    pk[t] = self.position(t)
                    pure[t] = self.clean and not self.hit_name
                    self.ident[t] = self.numbered
                    self.hit_name = self.hit_name or hit
                if borrowed[t]:
                    late.append(t)
                positions.append(pk[t])
            self.dirty = set()
            rest: list = []
            self.keyed = rest
            # the threads' functions: identical threads are often one function object, its
            # closure canonicalised once (when nothing in it is numbered by first visit)
            self.fmemo = {} if FUNC_MEMO else None
            fns = self.canon((run.fns, run.finals, run.invariants))
            self.fmemo = None
            k = r.world.kernel
            hidden = (self._created(), tuple(k.__dict__) if k is not None else (), tuple([tuple([self.canon(fn) for _, _, fn in c.callbacks])
                                              for c in self.rcus]))
            extra = self.canon(run.state()) if run.state is not None else None
            for t in late:              # the objects the other parts met first (they are theirs)
                self._own_objects(t)
            # the world's, the threads' in their order, the rest's: as if every position was walked
            keyed = keyed + [kv for t in order for kv in self.pobjs[t]] + rest
            self.keyed = keyed
            # the plain fields of every model object with _zd_key named anywhere in the key
            fields = {}
            for k, v in keyed:
                if k not in fields:
                    fields[k] = self._plain_slots(v, type(v))
            self.named = self.hit_name
            # stored compactly: the world's state as marshal bytes (version 2: no references,
            # so equal values give equal bytes), every part interned (threads' positions, the
            # closures, ... repeat across states); the key is six small ints
            try:
                state = marshal.dumps(state, 2)
            except ValueError:
                pass
            intern = self.interned
            key = tuple([intern.setdefault(x, len(intern)) for x in
                         (state, tuple(positions), fns, hidden, extra, tuple(fields.items()))])
            if self.audit is not None:
                self._audit(key, order)
            return key
        except Uncacheable:
            self.dirty = set(range(n))
            self.pk = [None] * n
            self.named = True
            return None
        finally:
            self.names = {}
            self.seen = {}
            self.fmemo = None

    def _audit(self, key: Any, order: Any) -> None:
        fp = Fingerprint(self).of(order)
        assert self.audit is not None
        old = self.audit.setdefault(key, fp)
        if old != fp:
            raise UnsoundKey(_first_difference(old, fp))

    def identical(self) -> list[int]:
        """Threads whose position (after :meth:`key`) equals another thread's."""
        pk = self.pk
        n = len(pk)
        return [t for t in range(n) if pk[t] is not None and any(pk[u] == pk[t] for u in range(n) if u != t)]

    def dedupe(self, options: list[int]) -> list[int]:
        """Among enabled threads with equal positions, keep one (their moves are symmetric).
        Not done when thread names appear in the shared state or a position holds mutable
        values (two threads holding one list are not interchangeable with two holding copies)."""
        r = self.runner
        if not (self.symmetry and r.run.symmetric) or self.named:
            return options
        out: list[int] = []
        pk = self.pk
        ident = self.ident
        for t in options:
            k = pk[t]
            if k is None or ident[t]:
                return options
            if all(pk[u] != k for u in out):
                out.append(t)
        return out


# how a type's values are canonicalised (StateKeys._kind); Final: compiled, they are constants
_SYNC: Final = 0
_TUPLE: Final = 1
_LIST: Final = 2
_DICT: Final = 3
_FUNC: Final = 4
_METHOD: Final = 5
_RETRY: Final = 6
_CONSTANT: Final = 7
_KERNEL: Final = 8
_KEYED: Final = 9
_FROZENSET: Final = 10
_SET: Final = 11
_RANGE: Final = 12
_WORLD: Final = 13
_EXC: Final = 14
_OBJECT: Final = 15
_UNKNOWN: Final = 16


def _first(pair: tuple) -> Any:
    return pair[0]


_WALKED = frozenset({list, dict, set, types.FunctionType, types.MethodType})
_FAST: Final = frozenset({int, bool, float, type(None)})
_HEAPTYPE = 1 << 9
_FOREIGN = frozenset({"greenlet", "builtins", "threading", "_thread", "asyncio"})
_CONST = (types.BuiltinFunctionType, types.ModuleType, types.CodeType, types.BuiltinMethodType)
_MISSING = ("unset",)


def _full(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _frozen(t: type) -> bool:
    p = getattr(t, "__dataclass_params__", None)
    return p is not None and p.frozen


def _strings(v: Any):
    t = type(v)
    if t is str:
        yield v
    elif t is tuple or t is list or t is frozenset:
        for x in v:
            yield from _strings(x)


class Fingerprint:
    """The whole reachable state, walked without trusting ``_zd_key`` or ``_zd_state``: every
    field of every object reachable from the kernel, the scenario's threads and checks and every
    sync object, each object numbered by first visit.  What the audit (``StateKeys.audit``)
    compares when two states share a key: equal keys with different fingerprints are a key that
    misses a hidden field.  Slow; for tests on small scenarios only."""

    def __init__(self, keys: "StateKeys") -> None:
        self.keys = keys
        self.r = keys.runner
        self.seen: dict[int, int] = {}
        self.hold: list = []
        self.ready_code = _retry_ready_code()

    def walk(self, v: Any, depth: int = 0) -> Any:
        t = type(v)
        if t in _PLAIN:
            return self.keys.names.get(v, v) if t is str else v
        if depth > 400:
            raise Uncacheable
        if t is tuple or t is frozenset:
            items = [self.walk(x, depth + 1) for x in v]
            return (t.__name__,) + tuple(items if t is tuple else sorted(items, key=repr))
        if t is type or t in _CONST:
            return v
        if isinstance(v, (World, Runner)) or (t.__module__ in _FOREIGN and t not in _WALKED):
            return (t.__name__,)
        if t is range:
            return ("range", v.start, v.stop, v.step)
        op = self.r.run.opaque.get(id(v))
        if op is not None:         # Run(opaque=...): the scenario vouches that state= covers it
            return ("opaque", op)
        i = self.seen.get(id(v))
        if i is not None:
            return ("ref", i)
        i = self.seen[id(v)] = len(self.seen)
        self.hold.append(v)
        if t is list:
            return ("L", i) + tuple([self.walk(x, depth + 1) for x in v])
        if t is dict:
            items = sorted(v.items(), key=lambda kv: repr(kv[0]) if type(kv[0]) in _PLAIN else "~")
            return ("d", i) + tuple([(self.walk(a, depth + 1), self.walk(b, depth + 1)) for a, b in items])
        if t is set:
            return ("S", i) + tuple(sorted((self.walk(x, depth + 1) for x in v), key=repr))
        if t is types.FunctionType:
            if v.__code__ is self.ready_code:      # RetryLoop.retry's ready(): relative to now
                objs, snap, me = v.__defaults__
                self.keys.me = me
                return ("f", v.__code__, self.keys._retry("", snap), self.walk(objs, depth + 1))
            cells = v.__closure__
            return ("f", i, v.__code__,
                    tuple([self.walk(c.cell_contents, depth + 1) if _full(c) else ("empty",) for c in cells]) if cells else (),
                    self.walk(v.__defaults__, depth + 1), self.walk(v.__kwdefaults__, depth + 1))
        if t is types.MethodType:
            return ("m", v.__func__.__code__, self.walk(v.__self__, depth + 1))
        if t is RetryLoop:
            return ("retry", v.label, self.walk(self._snap_rel(v.snap), depth + 1))
        if isinstance(v, BaseException):
            return ("exc", t, self.walk(v.args, depth + 1))
        fields = []
        for klass in t.__mro__:
            sl = getattr(klass, "__slots__", ())
            for n in ((sl,) if isinstance(sl, str) else sl):
                if n in ("__dict__", "__weakref__", "world", "wver", "wlast", "oid"):
                    continue
                fields.append((n, self.walk(getattr(v, n, _MISSING), depth + 1)))
        d = getattr(v, "__dict__", None)
        if d is not None:
            for n in sorted(d):
                if n != "world":
                    fields.append((n, self.walk(d[n], depth + 1)))
        return ("obj", t, i, tuple(fields))

    def _snap_rel(self, snap: tuple | None) -> Any:
        if snap is None:
            return None
        objs = self.r.world.objects
        return tuple((oid, val, objs[oid].wver != ver, objs[oid].wlast if objs[oid].wver != ver else None)
                     for oid, ver, val in snap)

    def frames(self, t: int) -> Any:
        r = self.r
        if r.fin[t]:
            return ("done",)
        out = []
        f = r.pool[t].gr_frame
        while f is not None and f.f_code is not self.keys.stop:
            if f.f_code not in self.keys.skip:
                out.append((f.f_code, f.f_lasti, self.walk(dict(f.f_locals))))
            f = f.f_back
        return (tuple(out), self.walk(r.p_obj[t]), r.p_label[t], self.walk(r.p_ready[t]))

    def of(self, order: Any) -> Any:
        r = self.r
        run = r.run
        k = r.world.kernel
        return (tuple([self.frames(t) for t in order]),
                self.walk((run.fns, run.finals, run.invariants)),
                self.walk(k),
                tuple([self.walk(o) for o in r.world.objects]))


def _retry_ready_code() -> Any:
    for c in RetryLoop.retry.__code__.co_consts:
        if getattr(c, "co_name", None) == "ready":
            return c
    return None


# -- the compiled copy -------------------------------------------------------------------------
# setup.py compiles this file with mypyc as ``zonedev.rt._state_native``; its classes run
# instead of the ones above while this file is the source it was built from (zonedev.rt.native).

def _state_keys_native(runner: Runner, symmetry: bool = True) -> Any:
    NATIVE.AUDIT = AUDIT            # the flags are read where the code runs
    NATIVE.FUNC_MEMO = FUNC_MEMO
    return NATIVE.StateKeys(runner, symmetry)


def pure() -> Any:
    """This module interpreted, whichever is in use (``zonedev.rt._state_pure``)."""
    return native.interpreted("zonedev.rt.state", __file__)


#: the compiled module in use, or None (not built, built from another source, or ZONEDEV_PURE)
NATIVE: Any = native.use(globals(), ("Fingerprint",), {"StateKeys": _state_keys_native})
