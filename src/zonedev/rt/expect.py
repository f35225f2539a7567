"""Expected verdicts: what a scenario should show on each kernel.

A scenario states its answer per kernel, the way a commit message would::

    @zonedev.scenario(expect={"v5.18..v6.0": "use_after_free",   # 27674ef6c73f .. before 0dc45ca1ce18
                              "v6.1..": "safe"},
                      refs=["F8", "27674ef6c73f", "0dc45ca1ce18"])

Keys name modelled kernels: one kernel (``v6.1``, or any version ``zonedev.kernel`` takes, which
maps to its modelled kernel), an inclusive range ``A..B`` (either end may be left open:
``v6.1..``, ``..v5.17``), or ``all``.  Values are ``"safe"`` (nothing found), one finding kind, or
a list of kinds: the verdict matches when the set of kinds found is exactly that set.  The
scenario applies to the kernels the keys cover and to no other (``-`` in the matrix).
Unknown kernels, unknown kinds and overlapping keys are refused when the file loads.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

SAFE = "safe"


class ExpectationError(ValueError):
    """An ``expect=`` that cannot be used; the message says why (the caller adds file:line)."""


def _names() -> list[str]:
    from ..patches import KERNELS
    return KERNELS


def _one(text: str) -> str:
    from ..patches import UnknownKernel, resolve
    try:
        return resolve(text).name
    except UnknownKernel as e:
        raise ExpectationError(f"expect names an unknown kernel: {e}") from None


def kernels_of(key: str) -> list[str]:
    """The modelled kernels an ``expect`` key covers, oldest first."""
    names = _names()
    key = key.strip()
    if key == "all":
        return list(names)
    if ".." in key:
        lo, _, hi = key.partition("..")
        i = names.index(_one(lo)) if lo.strip() else 0
        j = names.index(_one(hi)) if hi.strip() else len(names) - 1
        if i > j:
            raise ExpectationError(f"expect range {key!r} is empty ({names[i]} comes after {names[j]})")
        return names[i:j + 1]
    return [_one(key)]


def kinds_of(value: Any) -> frozenset[str]:
    """``"safe"`` -> {}; ``"hang"`` -> {"hang"}; ``["leak", "hang"]`` -> both.  Unknown kinds refused."""
    from ..sync.kinds import KINDS
    if value == SAFE:
        return frozenset()
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple, set, frozenset)) else None
    if not items or not all(isinstance(v, str) for v in items):
        raise ExpectationError(f"expected verdict {value!r}: say 'safe', a finding kind, or a list of kinds")
    for v in items:
        if v == SAFE:
            raise ExpectationError("expected verdict: 'safe' cannot be combined with finding kinds")
        if v not in KINDS:
            close = [k for k in KINDS if v in k or k in v]
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ExpectationError(f"expected verdict names an unknown finding kind {v!r}{hint}")
    return frozenset(items)


def parse_expect(expect: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """``expect=`` -> {modelled kernel: expected kinds (empty = safe)}, oldest kernel first."""
    if not isinstance(expect, Mapping) or not expect:
        raise ExpectationError("expect must be a non-empty dict {kernel or range: verdict}")
    out: dict[str, frozenset[str]] = {}
    origin: dict[str, str] = {}
    for key, value in expect.items():
        if not isinstance(key, str):
            raise ExpectationError(f"expect key {key!r}: name a kernel or a range 'A..B'")
        kinds = kinds_of(value)
        for name in kernels_of(key):
            if name in out:
                raise ExpectationError(f"expect keys {origin[name]!r} and {key!r} both cover {name}")
            out[name] = kinds
            origin[name] = key
    names = _names()
    return {n: out[n] for n in names if n in out}


def verdict_of(kinds: Iterable[str]) -> str | list[str]:
    """A verdict as the matrix and JSON show it: ``"safe"`` or the sorted kinds."""
    kinds = sorted(set(kinds))
    return kinds if kinds else SAFE


def describe(kinds: frozenset[str]) -> str:
    return ", ".join(sorted(kinds)) if kinds else SAFE
