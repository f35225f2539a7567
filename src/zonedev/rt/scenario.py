"""Scenarios: what the checker runs.

A scenario is a function that sets up a kernel and the objects the threads share, and returns a
:class:`Run`: the threads to run concurrently (each a plain function calling model code), plus
invariants (checked after every step) and final checks (checked when every thread is done)::

    @zonedev.scenario(params={"users": 2}, kernels=["v5.18", "v6.1"])
    def teardown(k, users):
        pgmap = ...; page = ...
        return zonedev.Run(
            threads={f"user{i}": (lambda: k.put_page(page)) for i in range(users)} | {
                     "unmap": lambda: k.memunmap_pages(pgmap)},
            finally_=[zonedev.expect_refs(page._refcount, 1, "device page")])

The function is called afresh for every execution the checker explores, inside a fresh
:class:`~zonedev.sync.World`, with ``k`` a freshly built kernel; it must be deterministic.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["Check", "Run", "Scenario", "ScenarioFileError", "expect_page_freed", "expect_refs",
           "load_scenarios", "resolve", "scenario"]


class ScenarioFileError(ValueError):
    """A scenario file or name that cannot be used: ``file:line: reason``."""


class NoScenarios(ScenarioFileError):
    """A Python file that loads but defines no scenario (a helper module, not a scenario file)."""


@dataclass
class Check:
    """An invariant or final check.  ``fn()`` returns None/True when it holds; False, a message
    string, or an AssertionError when it does not.  ``kind`` names the finding it raises."""

    fn: Callable[[], Any]
    kind: str = "check"
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = getattr(self.fn, "__name__", "check")
            if self.name == "<lambda>":
                self.name = "check"

    def failure(self) -> str | None:
        """None when the check holds, else what is wrong."""
        try:
            r = self.fn()
        except AssertionError as e:
            return str(e) or self.name
        except Exception as e:   # a check that crashes has not shown that it holds
            return f"{self.name} raised {type(e).__name__}: {e}"
        except BaseException as e:   # SystemExit, KeyboardInterrupt, ... raised by the check
            from .guard import Interrupted
            if isinstance(e, Interrupted):
                raise
            return f"{self.name} raised {type(e).__name__}: {e}"
        if r is None or r is True:
            return None
        if r is False:
            return f"{self.name} failed"
        return str(r)


def expect_refs(obj: Any, expected: int = 0, what: str | None = None) -> Check:
    """Final check: ``obj`` (an ``Atomic`` refcount, a ``PercpuRef``, or anything with ``peek()``)
    holds ``expected`` at the end; more means references nobody owns (a *leak*), less an
    over-put."""
    label = what or getattr(obj, "name", "refcount")

    def refs_gone() -> str | None:
        n = obj.peek()
        if n == expected:
            return None
        if n > expected:
            return (f"{label}: {n} references at the end, expected {expected}: "
                    f"{n - expected} held that no thread owns")
        return f"{label}: {n} references at the end, expected {expected} (put too often)"

    return Check(refs_gone, "leak", f"refs({label})")


def expect_page_freed(k: Any, page: Any) -> Check:
    """Final check: ``page`` is back with its driver at the end -- the kernel ``k`` no longer
    counts it referenced (``k.zd_page_referenced``: the era's idle refcount, 0 or 1); anything
    more is a reference nobody owns (a *leak*)."""
    def page_freed() -> str | None:
        if k.zd_page_referenced(page):
            return f"page {page.pfn:#x}: refcount {page._refcount.peek()} at the end: a reference nobody owns"
        return None
    return Check(page_freed, "leak", "page_freed")


class Run:
    """What a scenario returns: the threads to interleave, and what must hold.

    ``threads``: a dict name -> callable, or a list of callables (named after the functions).
    ``invariants``: checked after every step; ``finally_``: checked when all threads are done
    (use :func:`expect_refs` for "these references must be gone").  Each is a callable or a
    :class:`Check`.  ``state``: optional callable returning plain data for model state kept
    outside sync objects (for the stateful mode's state key).  ``symmetric``: whether threads
    with identical stacks may be treated as interchangeable by the stateful mode.
    ``opaque``: objects (a driver) that the stateful mode may identify by identity alone because
    whatever in them changes is covered by ``state``.
    """

    __slots__ = ("names", "fns", "invariants", "finals", "state", "symmetric", "opaque")

    def __init__(self, threads: dict[str, Callable[[], Any]] | Iterable[Callable[[], Any]],
                 invariants: Iterable[Any] = (), finally_: Iterable[Any] = (),
                 state: Callable[[], Any] | None = None, symmetric: bool = True,
                 opaque: Iterable[Any] = ()) -> None:
        if isinstance(threads, dict):
            self.names = list(threads)
            self.fns = list(threads.values())
            for name in self.names:
                if not isinstance(name, str) or not name:
                    raise TypeError(f"thread name {name!r}: thread names are non-empty strings")
        elif isinstance(threads, (str, bytes)) or not isinstance(threads, Iterable):
            raise TypeError(f"threads must be a dict name -> callable or a list of callables, "
                            f"not {type(threads).__name__}")
        else:
            self.fns = list(threads)
            self.names = []
            for i, fn in enumerate(self.fns):
                base = getattr(fn, "__name__", "thread")
                self.names.append(f"{'t' if base == '<lambda>' else base}{i}")
        if not all(map(callable, self.fns)):
            for name, fn in zip(self.names, self.fns):
                if not callable(fn):
                    raise TypeError(f"thread {name!r} is not callable")
        if not self.fns:
            raise ValueError("Run() needs at least one thread")
        if state is not None and not callable(state):
            raise TypeError(f"state= must be a callable returning plain data, not {type(state).__name__}")
        for what, checks in (("invariants", invariants), ("finally_", finally_)):
            for c in checks or ():
                if not isinstance(c, Check) and not callable(c):
                    raise TypeError(f"{what}: {c!r} is not callable (give a function or a zonedev.Check)")
        # (built afresh for every execution the checker explores: the empty cases cost nothing)
        self.invariants = [c if isinstance(c, Check) else Check(c, "invariant") for c in invariants] if invariants else []
        self.finals = [c if isinstance(c, Check) else Check(c, "final") for c in finally_] if finally_ else []
        self.state = state
        self.symmetric = symmetric
        self.opaque = {id(o): i for i, o in enumerate(opaque)} if opaque else {}


@dataclass(eq=False)
class Scenario:
    """A registered scenario (see :func:`scenario`)."""

    fn: Callable[..., Run]
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    kernels: list[str] | None = None
    mode: str = "auto"
    kernel: bool = True
    doc: str = ""
    file: str = ""
    line: int = 0
    #: modelled kernel -> expected finding kinds (empty: safe); None when no expectation is declared
    expect: dict[str, frozenset[str]] | None = None
    #: what the scenario answers for: catalogue ids (F8), commits, seed files
    refs: list[str] = field(default_factory=list)
    #: the search bound for the matrix when an exhaustive search is not feasible
    #: (``check`` keywords: ``preemptions``, ``executions``, ``seconds``, ``mode``)
    bound: dict[str, Any] = field(default_factory=dict)

    def applies(self, kernel: str) -> bool:
        """Is this scenario meant for the modelled kernel ``kernel`` (by its expectations, else
        by ``kernels``)?"""
        if self.expect is not None:
            return kernel in self.expect
        return self.kernels is None or kernel in self.kernels

    def expected(self, kernel: str) -> frozenset[str] | None:
        """The finding kinds expected on ``kernel`` (empty: safe), None when not declared."""
        return None if self.expect is None else self.expect.get(kernel)

    def __call__(self, k: Any, **params: Any) -> Run:
        return self.fn(k, **params)

    def with_params(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(self.params)
        for key, value in (overrides or {}).items():
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise ScenarioFileError(f"{self.file}:{self.line}: scenario {self.name} has no "
                                        f"parameter {key!r} (parameters: {known})")
            out[key] = value
        return out

    def __repr__(self) -> str:
        return f"<scenario {self.name} {self.params}>"


_BOUND_KEYS = ("mode", "preemptions", "executions", "seconds")
#: the modes a scenario may ask for (``zonedev.rt.check.MODES``)
_MODES = ("auto", "dpor", "source-dpor", "stateful", "naive", "bounded", "random", "pct")


def scenario(fn: Callable[..., Run] | None = None, *, name: str | None = None,
             params: dict[str, Any] | None = None, kernels: Iterable[str] | None = None,
             mode: str = "auto", kernel: bool = True, expect: dict[str, Any] | None = None,
             refs: Iterable[str] = (), bound: dict[str, Any] | None = None) -> Any:
    """Decorator registering a scenario.

    ``params``: parameter defaults (each can be set on the command line, ``-p users=4``);
    ``kernels``: the kernels it is meant for (the default for ``--kernel`` when none is given);
    ``mode``: ``auto`` (DPOR), or the mode the scenario prefers (``stateful``);
    ``kernel=False``: the scenario uses no kernel (``k`` is None), e.g. the DPOR benchmarks;
    ``expect``: the expected verdict per kernel (see :mod:`zonedev.rt.expect`), which makes the
    scenario a row of ``zonedev matrix``; ``refs``: what it answers for (``F8``, commits, seed
    files); ``bound``: the search bound the matrix uses when exhaustive search is not feasible
    (``{"preemptions": 2}``, ``{"executions": 20000}``, ``{"seconds": 30}``).
    A bad ``expect`` or ``bound`` is refused here, naming the file and line.
    """

    def wrap(f: Callable[..., Run]) -> Scenario:
        try:
            # the first line of the decorated definition; getsourcelines gives the same after
            # reading and tokenizing the source (2 ms a scenario, every process that loads one)
            code = getattr(f, "__code__", None)
            line = code.co_firstlineno if code is not None else inspect.getsourcelines(f)[1]
            file = inspect.getsourcefile(f) or ""
        except (OSError, TypeError):
            line, file = 0, ""
        where = f"{file or '<scenario>'}:{line}"
        nm = name or getattr(f, "__name__", "?")
        parsed = None
        if expect is not None:
            from .expect import ExpectationError, parse_expect
            if not kernel:
                raise ScenarioFileError(f"{where}: scenario {nm}: expect= needs a kernel scenario")
            try:
                parsed = parse_expect(expect)
            except ExpectationError as e:
                raise ScenarioFileError(f"{where}: scenario {nm}: {e}") from None
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ScenarioFileError(f"{where}: @zonedev.scenario name= must be a non-empty string, not {name!r}")
        if not callable(f):
            raise ScenarioFileError(f"{where}: @zonedev.scenario decorates a function, not {type(f).__name__}")
        if mode not in _MODES:
            raise ScenarioFileError(f"{where}: scenario {nm}: mode {mode!r} (modes: {', '.join(_MODES)})")
        if params is not None and (not isinstance(params, dict) or not all(isinstance(k, str) for k in params)):
            raise ScenarioFileError(f"{where}: scenario {nm}: params must be a dict name -> default value")
        if kernels is not None and (isinstance(kernels, str) or not all(isinstance(k, str) for k in kernels)):
            raise ScenarioFileError(f"{where}: scenario {nm}: kernels must be a list of kernel names")
        if bound is not None and not isinstance(bound, dict):
            raise ScenarioFileError(f"{where}: scenario {nm}: bound must be a dict")
        bnd = dict(bound or {})
        for key in bnd:
            if key not in _BOUND_KEYS:
                raise ScenarioFileError(f"{where}: scenario {nm}: bound key {key!r} "
                                        f"(allowed: {', '.join(_BOUND_KEYS)})")
        if isinstance(refs, str):
            raise ScenarioFileError(f"{where}: scenario {nm}: refs must be a list of strings")
        return Scenario(fn=f, name=name or f.__name__, params=dict(params or {}),
                        kernels=list(kernels) if kernels is not None else None, mode=mode,
                        kernel=kernel, doc=inspect.getdoc(f) or "", file=file, line=line,
                        expect=parsed, refs=[str(r) for r in refs], bound=bnd)

    if fn is not None:
        return wrap(fn)
    return wrap


def _user_line(exc: BaseException, path: Path) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        try:
            if Path(frame.filename).resolve() == path.resolve():
                return frame.lineno or 1
        except OSError:
            continue
    return 1


_loaded: dict[str, dict[str, Scenario]] = {}


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """Import a scenario file; return its scenarios by name.  Raises :class:`ScenarioFileError`."""
    path = Path(path)
    try:
        key = str(path.resolve()) if path.exists() else str(path)
        is_file = path.is_file()
    except (OSError, ValueError) as e:      # a name too long, a NUL byte
        raise ScenarioFileError(f"{str(path)[:80]}{'...' if len(str(path)) > 80 else ''}:0: "
                                f"{getattr(e, 'strerror', None) or e}") from None
    if key in _loaded:
        return _loaded[key]
    if not is_file:
        raise ScenarioFileError(f"{path}:0: no such scenario file")
    if path.suffix != ".py":
        raise ScenarioFileError(f"{path}:0: a scenario file is a Python file (.py)")
    # a name that is the same in every process (a checkpoint refers to the file's classes)
    modname = f"zonedev_scenarios_{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ScenarioFileError(f"{path}:0: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(modname, None)
        raise ScenarioFileError(f"{path}:{e.lineno}: {e.msg}") from None
    except ScenarioFileError:
        sys.modules.pop(modname, None)
        raise
    except BaseException as e:   # SystemExit, KeyboardInterrupt, ... raised by the file too
        from .guard import Interrupted
        sys.modules.pop(modname, None)
        if isinstance(e, Interrupted):
            raise
        what = str(e) if type(e).__name__ == "StepTimeout" else f"{type(e).__name__}: {e}".rstrip(": ")
        raise ScenarioFileError(f"{path}:{_user_line(e, path)}: {what}") from None
    found = {v.name: v for v in vars(module).values() if isinstance(v, Scenario)}
    if not found:
        raise NoScenarios(f"{path}:1: defines no scenario (decorate a function with @zonedev.scenario)")
    _loaded[key] = found
    return found


def resolve(spec: str) -> list[Scenario]:
    """``FILE`` (every scenario in it) or ``FILE::NAME`` -> scenarios."""
    file, _, name = spec.partition("::")
    found = load_scenarios(file)
    if not name:
        return list(found.values())
    if name not in found:
        raise ScenarioFileError(f"{file}:1: no scenario {name!r} (scenarios: {', '.join(found)})")
    return [found[name]]
