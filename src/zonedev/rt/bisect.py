"""Bisect the patch series: the first patch at which a scenario's verdict changes.

The modelled kernels are one patch series (``zonedev.patches.SERIES``, merge order), so "the
kernel at patch *i*" is the series up to and including patch *i* (``zonedev.patches.kernel_at``),
and between two named kernels lie the patches the newer one added.  :func:`bisect` checks the
scenario on the prefixes between the two, the way ``git bisect`` checks commits, and names the
adjacent pair of prefixes across which the verdict — the set of finding kinds,
:func:`zonedev.rt.expect.verdict_of` — changes:

* ``good`` older than ``bad``: where the bug **came in**; ``bad`` older than ``good``: where it
  was **fixed**.  The search is binary: a prefix is "old" when its verdict equals the older
  end's, "new" otherwise, and the search keeps an old prefix below a new one, halving the
  patches between them, so a handful of checks find the change among dozens of patches.  When
  the two ends give the same verdict there is nothing to halve: every prefix between them is
  checked (a linear walk), and the answer is either the changes seen or that there were none.
* A prefix that cannot run the scenario — its setup fails (a pgmap type the era does not have),
  or a thread calls a kernel function that prefix does not have yet (the series is in merge
  order, and a function of one patch may call one a later patch of the same release adds) — is
  *untestable* and skipped, as ``git bisect skip`` does; the result lists it.  If untestable
  prefixes sit right before the change, the change is at the named patch or at one of them, and
  the result says so.
* The verdict on each prefix comes from a full search (exhaustive unless the scenario declares a
  ``bound``, which is then used, as the matrix does); the bad side's counterexample is searched
  again with minimisation and tables.

Like ``git bisect``, a binary search finds *a* change between an old and a new prefix; when the
verdict changes more than once between the two ends, another change may come earlier.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..linux.kernel import MISSING_FUNCTION
from .check import Result, check
from .expect import describe, verdict_of
from .scenario import Scenario

__all__ = ["BisectError", "Bisection", "Probe", "bisect", "default_ends"]

#: the message of a call to a kernel function a prefix does not have
_MISSING = MISSING_FUNCTION


class BisectError(ValueError):
    """Input bisect cannot use; the message is ``WHERE: reason``."""


@dataclass
class Probe:
    """The scenario checked on the kernel at one patch of the series."""

    index: int                       # position in SERIES
    commit: str
    title: str
    version: str
    kernel: str                      # the prefix's label, ``v5.18@27674ef6c73f``
    kinds: frozenset[str] | None     # the finding kinds; None: untestable
    reason: str = ""                 # why untestable
    exhaustive: bool = True
    executions: int = 0
    seconds: float = 0.0
    order: int = 0                   # 1 = checked first

    @property
    def testable(self) -> bool:
        return self.kinds is not None

    @property
    def verdict(self) -> str | list[str] | None:
        return None if self.kinds is None else verdict_of(self.kinds)

    def describe(self) -> str:
        return f"cannot test: {self.reason}" if self.kinds is None else describe(self.kinds)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "commit": self.commit, "title": self.title, "version": self.version,
                "kernel": self.kernel, "verdict": self.verdict, "testable": self.testable,
                "reason": self.reason, "exhaustive": self.exhaustive, "executions": self.executions,
                "seconds": round(self.seconds, 4), "order": self.order}


@dataclass
class Bisection:
    """What :func:`bisect` found."""

    scenario: str
    spec: str
    good: str                        # modelled kernel names
    bad: str
    good_index: int
    bad_index: int
    params: dict = field(default_factory=dict)
    patches: list = field(default_factory=list)        # user patches applied on every prefix
    probes: dict[int, Probe] = field(default_factory=dict)
    search: str = "binary"           # binary | linear
    #: each change seen: (the last prefix before it, the first prefix after it), oldest first;
    #: the first is the answer
    changes: list[tuple[Probe, Probe]] = field(default_factory=list)
    counterexample: Result | None = None
    counterexample_side: str = ""    # bad | good
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def older(self) -> int:
        return min(self.good_index, self.bad_index)

    @property
    def newer(self) -> int:
        return max(self.good_index, self.bad_index)

    @property
    def direction(self) -> str:
        """``came in`` (good is older) or ``fixed`` (bad is older)."""
        return "came in" if self.good_index < self.bad_index else "fixed"

    @property
    def change(self) -> Probe | None:
        """The prefix of the first patch at which the verdict changes (that patch is its top)."""
        return self.changes[0][1] if self.changes else None

    @property
    def before(self) -> Probe | None:
        return self.changes[0][0] if self.changes else None

    def end(self, which: str) -> Probe:
        return self.probes[self.good_index if which == "good" else self.bad_index]

    def skipped(self) -> list[Probe]:
        """The untestable prefixes met, in series order."""
        return [p for _, p in sorted(self.probes.items()) if not p.testable]

    def ambiguous(self) -> list[int]:
        """Positions of the patches right before the named one that could not be tested: the change
        is at the named patch or at one of these."""
        if not self.changes:
            return []
        before, after = self.changes[0]
        return list(range(before.index + 1, after.index))

    def checks(self) -> int:
        return len(self.probes)

    def as_dict(self) -> dict[str, Any]:
        def pair(b: Probe, a: Probe) -> dict[str, Any]:
            return {"commit": a.commit, "title": a.title, "version": a.version,
                    "before": {"kernel": b.kernel, "verdict": b.verdict},
                    "after": {"kernel": a.kernel, "verdict": a.verdict},
                    "or_untested": [self.probes[i].commit if i in self.probes else None
                                    for i in range(b.index + 1, a.index)]}
        return {
            "schema": 1, "scenario": self.spec or self.scenario, "params": self.params,
            "patches": [{"commit": p.commit, "title": p.title, "base": p.base, "source": p.source}
                        for p in self.patches],
            "good": {"kernel": self.good, "verdict": self.end("good").verdict},
            "bad": {"kernel": self.bad, "verdict": self.end("bad").verdict},
            "direction": self.direction, "search": self.search,
            "change": pair(*self.changes[0]) if self.changes else None,
            "changes": [pair(b, a) for b, a in self.changes],
            "probes": [p.as_dict() for p in sorted(self.probes.values(), key=lambda p: p.order)],
            "skipped": [p.commit for p in self.skipped()],
            "counterexample": self.counterexample.as_dict() if self.counterexample else None,
            "counterexample_side": self.counterexample_side or None,
            "notes": self.notes, "seconds": round(self.seconds, 4),
        }


def _untestable(res: Result) -> str | None:
    """Why a check says nothing about the scenario on that kernel, or None when it does."""
    if res.verdict == "error":
        m = _MISSING.search(res.error)
        return f"{res.kernel} has no {m.group(2)}()" if m else res.error
    for f in res.findings:
        if f.kind == "exception":
            m = _MISSING.search(f.message)
            if m:
                return f"{res.kernel} has no {m.group(2)}() (thread {f.thread})"
    return None


def _kernel(opt: str, text: str) -> str:
    """``--good``/``--bad`` as users write it (``v5.18``, ``6.12``) -> the modelled kernel's name."""
    from ..patches import UnknownKernel, resolve
    try:
        return resolve(text).name
    except UnknownKernel as e:
        raise BisectError(f"{opt}: {e}") from None


def default_ends(sc: Scenario, good: str | None, bad: str | None,
                 verdict_on: Callable[[str], frozenset[str] | None] | None = None) -> tuple[str, str, str]:
    """``--good``/``--bad`` as given, or taken from the scenario's ``expect=``: two kernels whose
    expected verdicts differ.  Returns (good, bad, how they were chosen); the kernels are modelled
    names.  ``verdict_on(kernel)`` gives the found verdict of a kernel ``expect`` does not cover
    (when only one end is given).  Raises :class:`BisectError`."""
    from ..patches import KERNELS

    g = _kernel("--good", good) if good else None
    b = _kernel("--bad", bad) if bad else None
    if g and b:
        return g, b, ""
    where = f"{sc.file}:{sc.line}" if sc.file else sc.name
    exp = sc.expect or {}
    if not exp:
        raise BisectError(f"{where}: scenario {sc.name} declares no expect=, so there is no default "
                          f"--good/--bad; say --good K --bad K")
    order = [k for k in KERNELS if k in exp]
    if not g and not b:
        for older, newer in zip(order, order[1:]):
            if exp[older] != exp[newer]:
                # the good side is the safe one, or the one whose kinds are a strict subset of the
                # other's (a finding went away); else the older one
                g, b = (newer, older) if exp[newer] < exp[older] else (older, newer)
                return g, b, (f"from expect=: {b} expects {describe(exp[b])}, {g} expects "
                              f"{describe(exp[g])}")
        raise BisectError(f"{where}: scenario {sc.name}: expect= gives every kernel the same verdict "
                          f"({describe(exp[order[0]])}); say --good K --bad K")
    given = g or b
    want = exp.get(given)
    if want is None:
        want = verdict_on(given) if verdict_on else None
        if want is None:
            raise BisectError(f"{where}: scenario {sc.name}: expect= does not cover {given}; "
                              f"say both --good and --bad")
    at = KERNELS.index(given)
    differ = [k for k in order if exp[k] != want]
    if not differ:
        raise BisectError(f"{where}: scenario {sc.name}: expect= names no kernel whose verdict differs "
                          f"from {given}'s ({describe(want)}); say both --good and --bad")
    other = min(differ, key=lambda k: (abs(KERNELS.index(k) - at), -KERNELS.index(k)))
    how = f"from expect=: {other} expects {describe(exp[other])}"
    return (given, other, how) if g else (other, given, how)


def bisect(sc: Scenario, good: str, bad: str, *, params: dict | None = None, patches: tuple | list = (),
           spec: str = "", on_probe: Callable[[Probe], None] | None = None) -> Bisection:
    """Find the patch of the series between ``good`` and ``bad`` (modelled kernel names, or
    versions) at which ``sc``'s verdict changes; ``patches`` (Patch objects or files) go on top of
    every prefix.  ``on_probe`` is called after each check.  Raises :class:`BisectError` when an
    end cannot be used."""
    from ..patches import (Patch, kernel_at, kernel_index, load_patch_file, patches_for, prefix_label, series,
                           series_prefix)

    t0 = time.perf_counter()
    extra = [p if isinstance(p, Patch) else load_patch_file(p) for p in patches]
    g, b = _kernel("--good", good), _kernel("--bad", bad)
    if g == b:
        raise BisectError(f"--good {good} and --bad {bad} are the same modelled kernel ({g})")
    gi, bi = kernel_index(g), kernel_index(b)
    res = Bisection(sc.name, spec, g, b, gi, bi, params=dict(params or {}), patches=extra)
    for opt, name in (("--good", g), ("--bad", b)):
        if sc.expect is not None and not sc.applies(name):
            res.notes.append(f"{opt} {name} is outside the kernels scenario {sc.name}'s expect= covers")
    for name, i in ((g, gi), (b, bi)):
        if {id(p) for p in series_prefix(i)} != {id(p) for p in patches_for(name)}:
            odd = [p for p in series_prefix(i) if p not in patches_for(name)]
            res.notes.append(f"{name} is walked as the series up to {series()[i].commit[:12]} "
                             f"({prefix_label(i)}), which also holds "
                             f"{', '.join(f'{p.commit[:12]} ({p.version})' for p in odd)}, merged before it")
    args = sc.bound             # the matrix's bound; @scenario holds its keys to check's keywords

    def probe(i: int) -> Probe:
        if i in res.probes:
            return res.probes[i]
        p = series()[i]
        k = _prototype(kernel_at, i, extra)
        r = check(sc, k, params=params, minimize=False, tables=False, **args)
        why = _untestable(r)
        pr = Probe(i, p.commit, p.title, p.version, k.name, None if why else frozenset(f.kind for f in r.findings),
                   why or "", r.exhaustive, r.executions, r.elapsed, len(res.probes) + 1)
        res.probes[i] = pr
        if on_probe:
            on_probe(pr)
        return pr

    lo, hi = res.older, res.newer
    first, last = probe(lo), probe(hi)
    for which, pr in (("good", res.end("good")), ("bad", res.end("bad"))):
        if not pr.testable:
            raise BisectError(f"--{which} {getattr(res, which)}: scenario {sc.name} cannot run on "
                              f"{pr.kernel}: {pr.reason}")
    if first.kinds != last.kinds:
        res.search = "binary"
        old = first.kinds
        while True:
            mid = _pick(lo, hi, res.probes)
            if mid is None:
                break
            pr = probe(mid)
            if not pr.testable:
                continue
            if pr.kinds == old:
                lo = mid
            else:
                hi = mid
        res.changes.append((res.probes[lo], res.probes[hi]))
        if res.probes[hi].kinds != last.kinds:
            res.notes.append(f"the verdict changes again before {prefix_label(res.newer)}: "
                             f"{res.probes[hi].kernel} gives {res.probes[hi].describe()}, "
                             f"{last.kernel} {last.describe()}")
    else:
        res.search = "linear"
        prev = first
        for i in range(res.older + 1, res.newer + 1):
            pr = probe(i)
            if not pr.testable:
                continue
            if pr.kinds != prev.kinds:
                res.changes.append((prev, pr))
            prev = pr
    if res.changes:
        before, after = res.changes[0]
        bad_side, good_side = (after, before) if res.direction == "came in" else (before, after)
        side, shown = ("bad", bad_side) if bad_side.kinds else ("good", good_side)
        if shown.kinds:
            res.counterexample = check(sc, _prototype(kernel_at, shown.index, extra), params=params, **args)
            res.counterexample.spec = spec
            res.counterexample_side = side
    res.seconds = time.perf_counter() - t0
    return res


def _prototype(kernel_at: Callable[..., Any], i: int, extra: list) -> Any:
    """The kernel at patch ``i`` built in a world of its own (the checker only takes its class;
    the caller's world, a REPL's, is left alone)."""
    from ..sync.world import World, use_world
    with use_world(World()):
        return kernel_at(i, extra=extra)


def _pick(lo: int, hi: int, probes: dict[int, Probe]) -> int | None:
    """The prefix to check next between ``lo`` and ``hi``: the middle one, or the nearest to it
    not yet found untestable; None when none is left."""
    mid = (lo + hi) // 2
    cands = [i for i in range(lo + 1, hi) if i not in probes]
    if not cands:
        return None
    return min(cands, key=lambda i: (abs(i - mid), i))
