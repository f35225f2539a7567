"""Starting an execution from a copy of the post-setup world instead of running the setup again.

Every execution the checker explores starts from a fresh setup: a new kernel object and the
scenario function run to its ``Run`` (on ``release_vs_fault`` 34 ``struct page``s, 297 sync
objects and ~200 scheduler-less points: a third of an execution).  Greenlets cannot be copied,
but the setup has no thread yet: what it leaves is a graph of plain Python objects (the world,
the kernel, the Run and the closures of its threads).  A :class:`Plan` is that graph, read once
from a fresh setup, compiled into one straight-line Python function that builds a new copy of it
(``object.__new__`` and field stores, cells and closures, lists and dicts in their order): much
cheaper than running the model code again, or than ``copy.deepcopy`` with its memo and reduce
protocol.

What is copied and what is shared: an object made during the setup (not alive before it, by the
garbage collector's list) is copied; anything older (modules, classes, functions, the kernel's
class, constants) is shared, as a fresh setup shares it.  Only plain types are copied: instances
of Python classes (``__dict__`` and slots), list, dict, set, tuple, frozenset, functions, cells
and bound methods; anything else made by the setup (a generator, an iterator, a lock, a subclass
of a builtin container) makes the plan refuse, and the runner goes on running the setup.

It is used only when it cannot change an answer (:meth:`Plan.build` checks, once):

* two fresh setups give the same graph (shape, types, values; old objects by identity), so the
  setup is deterministic;
* the setup leaves every module's globals and the classes in them as it found them (a setup
  that counts in a global would give every fresh execution something new);
* the copy has the graph of the fresh setup it was read from.

In every search ``check`` runs but the random walk (the runner's ``reuse``) one copy serves
every execution: :meth:`Plan.again` puts it back as the setup left it, by a second compiled
function, instead of making a new one whose cycles only the garbage collector would free.

``Run.opaque`` (identities for the stateful search) is keyed by ``id()``; the copy's is rebuilt
for the copied objects.  The runner uses a plan only for executions without the event log (the
explorers' hot loop; replays and counterexamples run the real setup) and after the setup has
cost ``AFTER`` seconds in the run (a short search never pays for building one).
"""

from __future__ import annotations

import gc
import sys
import types
from typing import Any

#: seconds of setup a runner spends before it reads a plan (tests set 0): about what reading one
#: costs (15-18 ms on the teardown family, most of it the two reads of every module's globals),
#: so a search that builds one has spent at most twice what it needed on setups
AFTER = 0.02

_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis),
                    type(NotImplemented)})
_LITERALS = frozenset({type(None), bool, int, str, bytes})
_UNSET = object()
_osa = object.__setattr__
_new = object.__new__


class Unsupported(Exception):
    """The setup's graph holds something a plan cannot copy."""


def _slot_names(cls: type) -> list[tuple[str, Any]]:
    """(attribute name, member descriptor) of every slot of ``cls`` and its bases."""
    out = []
    seen = set()
    for c in cls.__mro__:
        slots = c.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for s in slots:
            if s in ("__dict__", "__weakref__"):
                continue
            name = f"_{c.__name__.lstrip('_')}{s}" if s.startswith("__") and not s.endswith("__") else s
            if name in seen:
                continue
            seen.add(name)
            md = c.__dict__.get(name)
            if md is not None:
                out.append((name, md))
    return out


def _plain_class(cls: type) -> bool:
    """Instances can be made with ``object.__new__`` and have only slots and a ``__dict__``."""
    if not cls.__flags__ & (1 << 9):        # Py_TPFLAGS_HEAPTYPE: a class written in Python
        return False
    for c in cls.__mro__[1:]:
        if c is not object and not c.__flags__ & (1 << 9):
            return False
    return cls.__new__ is object.__new__


class _Walk:
    """The graph below ``roots``: nodes (the objects made since ``pre``) with their fields as
    references: ("a", atom), ("x", old object), ("o", node index)."""

    def __init__(self, roots: tuple, pre: set[int]) -> None:
        self.pre = pre
        #: a dict keyed by ``id()`` of objects (``Run.opaque``): its keys are compared as the
        #: objects they name
        self.idmap = id(getattr(roots[2], "opaque", None)) if len(roots) > 2 else 0
        self.index: dict[int, int] = {}
        self.nodes: list[list] = []        # [kind, obj, fields]
        self.todo: list[int] = []
        self.keep: list[Any] = []          # tuples made only for the walk stay alive
        self.roots = [self.ref(r) for r in roots]
        while self.todo:
            self._fields(self.todo.pop())

    def _node(self, kind: str, o: Any) -> tuple:
        i = len(self.nodes)
        self.index[id(o)] = i
        self.nodes.append([kind, o, None])
        self.todo.append(i)
        return ("o", i)

    def ref(self, o: Any) -> tuple:
        t = type(o)
        if t in _ATOMS:
            return ("a", o)
        i = self.index.get(id(o))
        if i is not None:
            return ("o", i)
        if t is tuple or t is frozenset:
            refs = [self.ref(x) for x in o]
            if not any(r[0] == "o" for r in refs):
                return ("a", o)          # immutable, nothing the setup made: shared as a value
            i = len(self.nodes)
            self.index[id(o)] = i
            self.nodes.append([t.__name__, o, refs])
            return ("o", i)
        if id(o) in self.pre:
            return ("x", o)
        if t is list or t is dict or t is set:
            return self._node(t.__name__, o)
        if t is types.FunctionType:
            if id(o.__globals__) not in self.pre:
                raise Unsupported(f"function {o.__qualname__} with globals made by the setup")
            return self._node("func", o)
        if t is types.CellType:
            return self._node("cell", o)
        if t is types.MethodType:
            return self._node("meth", o)
        if isinstance(o, (type, types.ModuleType)) or not _plain_class(t):
            raise Unsupported(f"{t.__module__}.{t.__qualname__} made by the setup")
        return self._node("inst", o)

    def _fields(self, i: int) -> None:
        node = self.nodes[i]
        kind, o = node[0], node[1]
        ref = self.ref
        if kind == "inst":
            try:
                d = object.__getattribute__(o, "__dict__")
            except AttributeError:
                d = None
            if d is not None and type(d) is not dict:
                raise Unsupported(f"{type(o).__qualname__} with a {type(d).__name__} for __dict__")
            items = [(k, ref(v)) for k, v in d.items()] if d is not None else None
            slots = []
            for name, md in _slot_names(type(o)):
                try:
                    v = md.__get__(o, type(o))
                except AttributeError:
                    continue
                slots.append((name, ref(v)))
            node[2] = (items, slots)
        elif kind == "list":
            node[2] = [ref(x) for x in o]
        elif kind == "dict":
            node[2] = [(ref(k), ref(v)) for k, v in o.items()]
            for r, _ in node[2]:
                self._hash_by_identity(r)
        elif kind == "set":
            node[2] = [ref(x) for x in o]
            for r in node[2]:
                self._hash_by_identity(r)
        elif kind == "func":
            node[2] = (ref(o.__defaults__), ref(o.__closure__), ref(o.__kwdefaults__),
                       ref(o.__dict__) if o.__dict__ else None)
        elif kind == "cell":
            try:
                node[2] = ref(o.cell_contents)
            except ValueError:           # an empty cell
                node[2] = None
        elif kind == "meth":
            node[2] = (ref(o.__func__), ref(o.__self__))

    def _hash_by_identity(self, r: tuple) -> None:
        """A key or set member the copy rebuilds: its hash must not depend on fields the copy
        fills in later (instances hash by identity; tuples of such are fine)."""
        if r[0] != "o":
            return
        kind, o, refs = self.nodes[r[1]]
        if kind == "inst" and type(o).__hash__ is not object.__hash__:
            raise Unsupported(f"{type(o).__qualname__} hashed by value as a key")
        if kind in ("tuple", "frozenset"):
            for x in refs:
                self._hash_by_identity(x)

    def shape(self) -> list:
        """The graph as plain data (old objects by identity): equal shapes, equal graphs."""
        def value(v: Any) -> Any:
            t = type(v)
            if t in _ATOMS:
                return (t.__name__, v)
            if t is tuple:
                return ("tuple", tuple(value(x) for x in v))
            if t is frozenset:
                return ("frozenset", frozenset(value(x) for x in v))
            return ("id", id(v))

        def norm(r: Any) -> Any:
            if r is None:
                return None
            if r[0] == "x":
                return ("x", id(r[1]))
            if r[0] == "a":
                return ("a", value(r[1]))
            return r
        out = [tuple(norm(r) for r in self.roots)]
        for kind, o, f in self.nodes:
            if kind == "inst":
                items, slots = f
                out.append((kind, id(type(o)), None if items is None else tuple((k, norm(v)) for k, v in items),
                            tuple((k, norm(v)) for k, v in slots)))
            elif kind in ("list", "set", "tuple", "frozenset"):
                out.append((kind, tuple(norm(x) for x in f)))
            elif kind == "dict" and id(o) == self.idmap:
                out.append((kind, tuple((("x", k[1]) if k[1] in self.pre else ("o", self.index.get(k[1])), norm(v))
                                        for k, v in f)))
            elif kind == "dict":
                out.append((kind, tuple((norm(k), norm(v)) for k, v in f)))
            elif kind == "func":
                out.append((kind, id(o.__code__), id(o.__globals__), o.__name__, o.__qualname__,
                            tuple(norm(x) for x in f)))
            elif kind == "cell":
                out.append((kind, norm(f)))
            else:
                out.append((kind, norm(f[0]), norm(f[1])))
        return out


def _globals_state() -> list:
    """Every module's globals, and the dicts of the classes defined in them, by identity (and
    the sizes of the containers among them); not the current world, which a setup makes."""
    from ..sync import world as world_mod
    out = []
    for m in list(sys.modules.values()):
        d = getattr(m, "__dict__", None)
        if type(d) is not dict:
            continue
        name = getattr(m, "__name__", None)
        for k, v in list(d.items()):
            if k == "_current" and m is world_mod:
                continue
            t = type(v)
            out.append((id(d), k, id(v), len(v) if t is list or t is dict or t is set else -1))
            if isinstance(v, type) and getattr(v, "__module__", None) == name:
                for ck, cv in list(v.__dict__.items()):
                    ct = type(cv)
                    out.append((id(v), ck, id(cv), len(cv) if ct is list or ct is dict or ct is set else -1))
    return out


class Plan:
    """A compiled copier of one setup's graph: :meth:`clone` returns new roots."""

    def __init__(self, walk: _Walk, want: tuple[int, ...] = ()) -> None:
        consts: list[Any] = []
        cidx: dict[int, int] = {}

        def const(v: Any) -> str:
            if type(v) in _LITERALS:
                return repr(v)
            i = cidx.get(id(v))
            if i is None:
                i = cidx[id(v)] = len(consts)
                consts.append(v)
            return f"x{i}"

        def val(r: Any) -> str:
            if r[0] == "o":
                return f"v{r[1]}"
            return const(r[1])

        alloc, build, fill_i, fill_l, fill_d = [], [], [], [], []
        # the same fields stored again into the copy an execution used (:meth:`again`): its
        # class back (a watched twin, :mod:`zonedev.rt.observe`), slots it set and the setup
        # had not unset, containers emptied before they are filled
        again_i: list[str] = []
        again_c: list[str] = []
        funcs: dict[int, list[str]] = {}
        slot_maps: dict[type, dict[str, Any]] = {}
        for i, (kind, o, f) in enumerate(walk.nodes):
            v = f"v{i}"
            if kind == "inst":
                alloc.append(f"{v} = N({const(type(o))})")
                items, slots = f
                cls = type(o)
                again_i.append(f"if type({v}) is not {const(cls)}: {v}.__class__ = {const(cls)}")
                fast_set = cls.__setattr__ is object.__setattr__
                sm = slot_maps.get(cls)
                if sm is None:
                    sm = slot_maps[cls] = dict(_slot_names(cls))
                for name, r in slots:
                    md = sm[name]
                    if fast_set and name.isidentifier() and _lookup(cls, name) is md:
                        line = f"{v}.{name} = {val(r)}"
                    else:
                        line = f"{const(md.__set__)}({v}, {val(r)})"
                    fill_i.append(line)
                    again_i.append(line)
                filled = {name for name, _ in slots}
                for name, md in sm.items():
                    if name not in filled:
                        again_i.append(f"UNSET({const(md.__delete__)}, {v})")
                if items is not None:
                    body = ", ".join(f"{k!r}: {val(r)}" for k, r in items) if all(type(k) is str for k, _ in items) else None
                    if body is None:
                        raise Unsupported(f"{cls.__qualname__} with a non-string attribute name")
                    fill_i.append(f"OSA({v}, '__dict__', {{{body}}})")
                    again_i.append(fill_i[-1])
            elif kind == "list":
                alloc.append(f"{v} = []")
                if f:
                    fill_l.append(f"{v}.extend(({', '.join(val(r) for r in f)},))")
                again_c.append(f"{v}[:] = ({', '.join(val(r) for r in f)},)" if f else f"{v}.clear()")
            elif kind == "dict":
                alloc.append(f"{v} = {{}}")
                again_c.append(f"{v}.clear()")
                if f:
                    fill_d.append(f"{v}.update({{{', '.join(f'{val(k)}: {val(x)}' for k, x in f)}}})")
                    again_c.append(fill_d[-1])
            elif kind == "set":
                alloc.append(f"{v} = set()")
                again_c.append(f"{v}.clear()")
                if f:
                    fill_d.append(f"{v}.update(({', '.join(val(r) for r in f)},))")
                    again_c.append(fill_d[-1])
            elif kind == "cell":
                alloc.append(f"{v} = CELL()")
                if f is not None:
                    fill_i.append(f"{v}.cell_contents = {val(f)}")
                    again_i.append(fill_i[-1])
                else:
                    again_i.append(f"EMPTY({v})")
            elif kind in ("tuple", "frozenset"):
                items = ", ".join(val(r) for r in f)
                build.append((i, f"{v} = ({items},)" if kind == "tuple" else f"{v} = frozenset(({items},))"))
            elif kind == "func":
                defaults, closure, kwdefaults, fdict = f
                fl = funcs[i] = [f"{v} = FN({const(o.__code__)}, {const(o.__globals__)}, {o.__name__!r}, "
                                 f"{val(defaults)}, {val(closure)})",
                                 f"{v}.__qualname__ = {o.__qualname__!r}"]
                if kwdefaults[1] is not None:
                    fl.append(f"{v}.__kwdefaults__ = {val(kwdefaults)}")
                if fdict is not None:
                    fl.append(f"{v}.__dict__ = {val(fdict)}")
                if o.__module__ != o.__globals__.get("__name__"):
                    fl.append(f"{v}.__module__ = {o.__module__!r}")
                if o.__doc__ != (o.__code__.co_consts[0] if o.__code__.co_consts and
                                 type(o.__code__.co_consts[0]) is str else None):
                    fl.append(f"{v}.__doc__ = {const(o.__doc__)}")
                if o.__annotations__:
                    fl.append(f"{v}.__annotations__ = {const(o.__annotations__)}")
            elif kind == "meth":
                funcs[i] = [f"{v} = METH({val(f[0])}, {val(f[1])})"]
        # tuples, functions and methods: each after what it holds
        made = {i: [line] for i, line in build}
        made.update(funcs)
        lines = alloc + _in_order(walk, made) + fill_i + fill_l + fill_d
        roots = ", ".join(val(r) for r in walk.roots)
        extra = "".join(f"v{i}, " for i in want)
        # the constants as locals (one unpacking instead of a subscript at every use)
        unpack = [f"{''.join(f'x{i}, ' for i in range(len(consts)))}= X"] if consts else []
        src = "def clone(X, N, OSA, CELL, FN, METH):\n    " + "\n    ".join(unpack + lines or ["pass"]) + \
              f"\n    return ({roots},), ({extra}), ({''.join(f'v{i}, ' for i in range(len(walk.nodes)))})\n"
        # (the objects are the copy's, in node order; the containers are refilled after the
        # instances' fields, as the copy fills them)
        nodes = "".join(f"v{i}, " for i in range(len(walk.nodes)))
        again = (f"({nodes}) = V" if nodes else "pass")
        src += "\n\ndef reset(X, V, OSA, UNSET, EMPTY):\n    " + "\n    ".join(
            unpack + [again] + again_i + again_c) + "\n"
        ns: dict[str, Any] = {}
        exec(compile(src, "<zonedev setup plan>", "exec"), ns)
        self._fn = ns["clone"]
        self._reset = ns["reset"]
        self._consts = consts
        self.nodes = len(walk.nodes)
        self.lines = len(lines)
        #: the copy :meth:`again` hands out: (roots, every node's object, ``Run.opaque``'s
        #: items for it or None)
        self._last: tuple | None = None

        #: ``Run.opaque`` of the copy: (index into the wanted nodes or None, old key, value)
        self.opaque: list[tuple[int | None, int, Any]] | None = None

    def clone(self) -> tuple:
        """New roots: a copy of the setup's graph."""
        return self._copy()[0]

    def _copy(self) -> tuple:
        roots, extra, objs = self._fn(self._consts, _new, _osa, types.CellType, types.FunctionType, types.MethodType)
        opaque = None
        if self.opaque is not None:
            opaque = [(key if j is None else id(extra[j]), v) for j, key, v in self.opaque]
            roots[2].opaque = dict(opaque)
        return roots, objs, opaque

    def again(self) -> tuple:
        """The roots of one copy, every time put back as the setup left it: its objects' fields
        stored again, its containers refilled, the classes the observer changed restored.  For
        every search ``check`` runs but the random walk (the runner's ``reuse``,
        :meth:`Runner.reusing`): no copy is made and none becomes garbage -- each copy is a graph of cycles that only the
        collector frees (13 % of ``release_vs_fault``'s search went to that).  What an execution
        made itself drops out of the graph; the copy's objects keep their identities."""
        last = self._last
        if last is None:
            last = self._last = self._copy()
        else:
            self._reset(self._consts, last[1], _osa, _unset, _empty)
            if last[2] is not None:     # (the reset put back the setup's own, keyed by its objects)
                last[0][2].opaque = dict(last[2])
            if AUDIT_AGAIN:
                why = self.differs(last)
                assert why is None, why
        return last[0]

    def differs(self, copy: tuple) -> str | None:
        """Why ``copy`` (as :meth:`again` keeps it) is not the graph a new copy has, or None:
        both walked with every object that is not one of the copy's own taken as shared."""
        def shape(roots: tuple, objs: tuple, opaque: Any) -> list:
            own = {id(o) for o in objs}
            if opaque is not None:
                own.add(id(roots[2].opaque))     # made after the copy, keyed by its objects
            return _Walk(roots, _NotIn(own)).shape()
        fresh = self._copy()
        a, b = shape(*copy), shape(*fresh)
        if a == b:
            return None
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"the copy put back differs from a new one at node {i - 1}: {a[i] if i < len(a) else None!r:.200}"


class _NotIn:
    """``pre`` for :class:`_Walk` over a copy: everything but the copy's own objects is shared."""

    def __init__(self, ids: set[int]) -> None:
        self.ids = ids

    def __contains__(self, i: int) -> bool:
        return i not in self.ids


#: check every copy :meth:`Plan.again` puts back against a new copy (slow: the tests)
AUDIT_AGAIN = False


def _unset(delete: Any, obj: Any) -> None:
    """A slot the setup left unset, unset again (an execution may have set it)."""
    try:
        delete(obj)
    except AttributeError:
        pass


def _empty(cell: Any) -> None:
    try:
        del cell.cell_contents
    except ValueError:
        pass


def _lookup(cls: type, name: str) -> Any:
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__dict__[name]
    return None


def _in_order(walk: _Walk, made: dict[int, list[str]]) -> list[str]:
    """The lines of tuples, functions and methods, each after those of what it holds (a tuple
    may hold a function or a method, a function holds its defaults and closure tuples, a method
    its function and its object)."""
    out: list[str] = []
    done: set[int] = set()
    stack: set[int] = set()

    def deps(i: int) -> list[int]:
        kind, o, f = walk.nodes[i]
        if kind in ("tuple", "frozenset"):
            refs = f
        elif kind == "func":
            refs = [r for r in f[:3]]
        else:
            refs = list(f)
        return [r[1] for r in refs if r[0] == "o" and r[1] in made]

    def visit(i: int) -> None:
        if i in done:
            return
        if i in stack:
            raise Unsupported("a cycle through tuples and functions")
        stack.add(i)
        for j in deps(i):
            visit(j)
        stack.discard(i)
        done.add(i)
        out.extend(made[i])

    for i in sorted(made):
        visit(i)
    return out


def build(make: Any, roots_of: Any) -> tuple[Plan | None, Any, str]:
    """Read a plan from fresh setups: ``make()`` runs one fresh setup and returns what it made,
    ``roots_of(made)`` its roots (a tuple: world, kernel, Run).  Runs the setup three times; returns
    (the plan or None, the last setup's result for the caller's execution, why there is no
    plan)."""
    gc_was = gc.isenabled()
    gc.disable()
    made: list = []
    try:
        made.append(make())           # first, so that what the setup imports is old below
        alive = gc.get_objects()
        pre = {id(o) for o in alive}
        made.append(make())
        shape1 = _Walk(roots_of(made[-1]), pre).shape()
        before = _globals_state()
        made.append(make())
        after = _globals_state()
        if before != after:
            return None, made[-1], "the setup changes module globals"
        roots = roots_of(made[-1])
        walk = _Walk(roots, pre)
        shape2 = walk.shape()
        if shape1 != shape2:
            return None, made[-1], "two setups differ"
        opaque = getattr(roots[2], "opaque", None)     # Run.opaque: {id(object): index}
        want: list[int] = []
        fix = []
        for key, v in (opaque or {}).items():
            if key in pre:
                fix.append((None, key, v))
            elif key in walk.index:
                fix.append((len(want), key, v))
                want.append(walk.index[key])
            else:
                return None, made[-1], "Run(opaque=...) names an object the setup's graph does not hold"
        plan = Plan(walk, tuple(want))
        if opaque:
            plan.opaque = fix
        copy = plan.clone()
        if _Walk(copy, pre).shape() != shape2:
            return None, made[-1], "the copy differs from the setup"
        return plan, made[-1], ""
    except Unsupported as e:
        return None, made[-1], str(e)
    finally:
        alive = None
        if gc_was:
            gc.enable()
