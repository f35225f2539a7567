"""The modelled kernel as a patch series.

``SERIES`` lists, in merge order, one module per kernel commit that changed ZONE_DEVICE
refcounting or pgmap lifetime (plus the base of the tree the first one applies to).  A named
kernel is the series up to and including the patches of that version.

    >>> k = zonedev.kernel("v5.18")                         # doctest: +SKIP
    >>> k = zonedev.kernel("v5.18", without=["0dc45ca1ce18"], extra=["my_fix.py"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from functools import lru_cache
from pathlib import Path

from ._patch import _REMOVED, Patch
from .versions import KernelVersionError, Resolved, parse_version, resolve_kernel

#: patch modules in merge order (module names under zonedev.patches)
SERIES: list[str] = [
    "base",
    "base_mm",
    "c_5c2c2587b132",
    "c_3565fce3a659",
    "c_71389703839e",
    "c_5042db43cc26",
    "c_df6ad69838fc",
    "c_7b2d55d2c893",
    "c_832d7aa05178",
    "c_8763cb45ab96",
    "c_e76384884344",
    "c_5fac7408d828",
    "c_2fa147bdbf67",
    "c_52916982af48",
    "c_a95c90f1e2c2",
    "c_50f44ee7248a",
    "c_7af75561e171",
    "c_1e240e8d4a7d",
    "c_25b2995a35b6",
    "c_b7a523109fb5",
    "c_7ab0ad0e74f8",
    "c_c5d6c45e90c4",
    "c_429589d647e2",
    "c_07d802699528",
    "c_eddb1c228f79",
    "c_3faa52c03f44",
    "c_f894ddd5ff01",
    "c_b2ef9f5a5cb3",
    "c_a4574f63edc6",
    "c_6f4dd8de4835",
    "c_b7b3c01b1915",
    "c_4509b42c3896",
    "c_b756a3b5e7ea",
    "c_b80892ca022e",
    "c_c4386bd8ee3a",
    "c_27674ef6c73f",
    "c_5cbf9942c963",
    "c_d8ddc099c6b3",
    "c_f4f451a16dd1",
    "c_f25cbb7a95a2",
    "c_33a8f7f2b3a3",
    "c_1e57ffb6e3fd",
    "c_b05a79d4377f",
    "c_ef233450898f",
    "c_0dc45ca1ce18",
    "c_16ce101db85d",
    "c_e778406b40db",
    "c_7e9c7ef83d78",
    "c_4996fc547f5b",
    "c_38607c62b3",
    "c_98c183a4fccf",
    "c_98b1917cdef9",
    "c_a14fa8ec9d81",
    "c_1afaeb8293c9",
    "c_fd2825b0760a",
    "c_d245f9b4ab80",
    "c_3a5a06554566",
    "c_12b2285bf3d1",
    "c_56ef39899643",
    "c_a30b48bf1b24",
    "c_368076f52ebe",
    "c_775465fd26a3",
    "c_b570f37a2ce4",
    "c_63451de16e0a",
    "c_2c6f81d58741",
    "c_bbcbf045d6c7",
    "c_744dd97752ef",
]

#: the modelled kernels, oldest first: every release in which a patch of the series landed, so
#: that any version a user names maps exactly onto the series up to it (see ``versions``)
KERNELS: list[str] = [
    "v4.5", "v4.12", "v4.14", "v4.16", "v4.18", "v4.19", "v4.20", "v5.0", "v5.2", "v5.3", "v5.6",
    "v5.7", "v5.8", "v5.10", "v5.11", "v5.14", "v5.17", "v5.18", "v5.19", "v6.0", "v6.1", "v6.2", "v6.15",
    "v6.17", "v6.19", "v7.0", "v7.1", "newest",
]

#: what ``newest`` follows
NEWEST_TREE = ("the akpm mm tree (linux-mm/linux-mm) after v7.1: mm/memremap.c @163177a569ab, "
               "include/linux/memremap.h @5885d9aa9013, mm/gup.c @0092cb388b08, with b570f37a2ce4 (v7.0); "
               "plus the 2026 lib/test_hmm fixes (744dd97752ef)")


_plain_kernels: dict = {}


class UnknownKernel(ValueError):
    pass


class PatchFileError(ValueError):
    """A user patch file that cannot be used: ``file:line: what is wrong``."""


def version_key(version: str) -> tuple[int, ...]:
    if version == "newest":
        return (1 << 30,)
    try:
        return tuple(int(x) for x in version.lstrip("v").split("."))
    except ValueError:
        raise UnknownKernel(f"unknown kernel {version!r}; known: {', '.join(KERNELS)}") from None


@lru_cache(maxsize=None)
def series() -> tuple[Patch, ...]:
    return tuple(importlib.import_module(f"{__name__}.{m}").PATCH for m in SERIES)


def resolve(text: str) -> Resolved:
    """A kernel as a user writes it (``6.12``, ``v5.15.120``, ``6.1.0-56-amd64``, ``7.0-rc4``, a
    modelled name) -> the modelled kernel standing for it, with a one-line note when they differ.
    Raises :class:`UnknownKernel` for what is not a kernel version."""
    try:
        return resolve_kernel(text, KERNELS, lambda n: version_key(n)[:2])
    except KernelVersionError as e:
        raise UnknownKernel(str(e)) from None


def resolve_list(items) -> list[Resolved]:
    """``--kernel`` values (each a kernel, a comma list, or ``all``) -> resolved kernels, in the
    order given, each modelled kernel once."""
    out: dict[str, Resolved] = {}
    if isinstance(items, str):
        items = [items]
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if part == "all":
                for n in KERNELS:
                    out.setdefault(n, Resolved(n, n))
            else:
                r = resolve(part)
                out.setdefault(r.name, r)
    return list(out.values())


def kernel_range(name: str) -> str:
    """The versions a modelled kernel stands for: ``v6.2`` -> ``6.2 - 6.14``."""
    if name == "newest":
        return "the mm tree"
    i = KERNELS.index(name)
    lo = version_key(name)
    nxt = KERNELS[i + 1] if i + 1 < len(KERNELS) else "newest"
    if nxt == "newest":
        return f"{lo[0]}.{lo[1]} and later releases"
    hi = version_key(nxt)
    # the last release of each major line: 4.20, 5.19, 6.19
    last = (hi[0], hi[1] - 1) if hi[1] > 0 else (hi[0] - 1, {4: 20, 5: 19, 6: 19}.get(hi[0] - 1, 99))
    if last == lo[:2]:
        return f"{lo[0]}.{lo[1]}"
    return f"{lo[0]}.{lo[1]} - {last[0]}.{last[1]}"


@lru_cache(maxsize=None)
def patches_for(name: str) -> tuple[Patch, ...]:
    if name not in KERNELS:
        name = resolve(name).name
    limit = version_key(name)
    return tuple(p for p in series() if version_key(p.version) <= limit)


def series_index(ref: str) -> int:
    """The position in ``SERIES`` (merge order) of the patch a commit id names."""
    patch = find_patch(ref)
    return next(i for i, p in enumerate(series()) if p is patch)


def kernel_index(name: str) -> int:
    """The position in ``SERIES`` of the last patch of a named kernel (``v5.17`` -> the index of
    c4386bd8ee3a): the series prefix up to it is that kernel, except where a patch merged earlier
    belongs to a later release (v4.14's prefix holds 832d7aa05178 from v4.16)."""
    if name not in KERNELS:
        name = resolve(name).name
    own = {id(p) for p in patches_for(name)}
    return max(i for i, p in enumerate(series()) if id(p) in own)


def series_prefix(i: int) -> tuple[Patch, ...]:
    """The series in merge order up to and including patch ``i`` (``SERIES[i]``)."""
    all_ = series()
    if not 0 <= i < len(all_):
        raise UnknownKernel(f"series position {i} is outside 0..{len(all_) - 1}")
    return all_[:i + 1]


def prefix_label(i: int) -> str:
    """The name of the kernel at patch ``i``: ``v5.18@27674ef6c73f`` (release of the patch, commit)."""
    p = series()[i]
    return f"{p.version}@{p.commit[:12]}"


def kernel_at(ref: str | int, extra: tuple | list = ()):
    """The kernel at one patch of the series: every patch up to and including it, in merge order
    (what ``zonedev bisect`` walks), plus ``extra`` patches (:class:`Patch` objects or files) on
    top.  ``ref`` is a commit id of the series or a position in ``SERIES``.

    A prefix is built as it stands: a function of it may call one that a later patch of the same
    release brought in (the series is in merge order, not the order each function needs); such a
    call fails with an AttributeError when reached, and bisect counts that prefix as untestable."""
    from ..linux.kernel import kernel_class

    i = ref if isinstance(ref, int) else series_index(ref)
    chosen = list(series_prefix(i))
    for item in extra:
        chosen.append(item if isinstance(item, Patch) else load_patch_file(item))
    label = prefix_label(i) + "".join(f"+{p.commit[:12]}" for p in chosen[i + 1:])
    return kernel_class(label, chosen)()


def find_patch(ref: str) -> Patch:
    hits = [p for p in series() if p.matches(ref)]
    if len(hits) != 1:
        raise UnknownKernel(f"{ref!r} names {'no' if not hits else 'more than one'} patch in the series "
                            f"(give at least 7 characters of a commit id; `zonedev patches` lists them)")
    return hits[0]


def load_patch_file(path: str | Path) -> Patch:
    """Load a user patch: a Python file that defines ``PATCH = Patch(...)``.  Whatever is wrong
    (no such file, not ``.py``, the file raising anything -- ``SystemExit`` too -- or a ``PATCH``
    of the wrong shape) is a :class:`PatchFileError` naming the file and line."""
    path = Path(path)
    shown = str(path) if len(str(path)) <= 120 else str(path)[:117] + "..."
    try:
        is_file = path.is_file()
        key = str(path.resolve())
    except (OSError, ValueError) as e:      # a name too long, a NUL byte
        raise PatchFileError(f"{shown}: {getattr(e, 'strerror', None) or e}") from None
    if not is_file:
        raise PatchFileError(f"{shown}: no such file")
    if path.suffix != ".py":
        raise PatchFileError(f"{shown}: a patch file is a Python file (.py) defining PATCH = zonedev.Patch(...)")
    import hashlib       # here: only a user's patch file needs it
    name = f"zonedev_user_patch_{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PatchFileError(f"{shown}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise PatchFileError(f"{path}:{e.lineno}: {e.msg}") from None
    except BaseException as e:  # the user's code failed while loading (SystemExit too): say where
        if type(e).__name__ == "Interrupted":
            raise
        line = _user_line(e, path)
        raise PatchFileError(f"{path}:{line}: {type(e).__name__}: {e}".rstrip(": ")) from None
    patch = getattr(module, "PATCH", None)
    line = _patch_line(path)
    if not isinstance(patch, Patch):
        raise PatchFileError(f"{path}:{line}: defines no PATCH = zonedev.Patch(...)")
    problem = _patch_problem(patch)
    if problem:
        raise PatchFileError(f"{path}:{line}: PATCH: {problem}")
    patch.source = str(path)
    if patch.base is not None:
        try:
            resolve(str(patch.base))
        except UnknownKernel as e:
            raise PatchFileError(f"{path}:{_line_of(path, 'base')}: base: {e}") from None
    sys.modules[name] = module
    return patch


def _line_of(path: Path, word: str) -> int:
    """The first line of a file that sets ``word=`` (for pointing at a bad field)."""
    try:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if f"{word}=" in line.replace(" ", ""):
                return n
    except OSError:
        pass
    return 1


def _patch_line(path: Path) -> int:
    """The line that assigns ``PATCH`` (1 when there is none)."""
    try:
        for i, text in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.match(r"PATCH\s*(:[^=]*)?=", text):
                return i
    except OSError:
        pass
    return 1


def _patch_problem(p: Patch) -> str:
    """What is wrong with a user patch's fields, or ''."""
    for field in ("commit", "title", "version"):
        v = getattr(p, field)
        if not isinstance(v, str) or not v.strip():
            return f"{field} must be a non-empty string, not {v!r}"
    if p.fixes is not None and not isinstance(p.fixes, str):
        return f"fixes must be a commit id string, not {p.fixes!r}"
    try:
        version_key(p.version)
    except UnknownKernel:
        return f"version {p.version!r} is not a kernel version (e.g. v6.1)"
    if not isinstance(p.functions, dict):
        return f"functions must be a dict name -> function, not {type(p.functions).__name__}"
    for fname, fn in p.functions.items():
        if not isinstance(fname, str) or not fname.isidentifier():
            return f"functions: {fname!r} is not a function name"
        if not callable(fn) and fn is not _REMOVED:
            return f"functions: {fname} is not a function"
    if not isinstance(p.facts, dict) or not all(isinstance(k, str) for k in p.facts):
        return "facts must be a dict name -> value"
    return ""



def _user_line(exc: BaseException, path: Path) -> int:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path.resolve():
            return frame.lineno or 1
    return 1


def _names_used(fn) -> tuple[set[str], set[str]]:
    """Attribute names a function's code uses (``k.put_page`` -> ``put_page``), nested code too,
    and the string constants it holds (``k.has("put_page")`` guards a use)."""
    names: set[str] = set()
    strings: set[str] = set()
    todo = [getattr(fn, "__code__", None)]
    while todo:
        code = todo.pop()
        if code is None:
            continue
        names.update(code.co_names)
        for c in code.co_consts:
            if hasattr(c, "co_names"):
                todo.append(c)
            elif isinstance(c, str):
                strings.add(c)
    return names, strings


def check_revert(name: str, left_out, chosen) -> None:
    """Leaving a patch out must not leave another calling a function only it introduced (the
    revert would not apply): say which, instead of failing later with an AttributeError.  A use
    guarded by ``k.has("name")`` is fine."""
    from ._patch import _REMOVED
    final: dict = {}
    for p in chosen:
        for fname, fn in p.functions.items():
            if fn is _REMOVED:
                final.pop(fname, None)
            else:
                final[fname] = (p, fn)
    # a function the revert brought back (an older version) may call what a later patch removed
    full: dict = {}
    for p in patches_for(name):
        for fname, fn in p.functions.items():
            if fn is _REMOVED:
                full.pop(fname, None)
            else:
                full[fname] = fn
    known = set(full)
    for p in series():
        known.update(p.functions)
    for fname, (p, fn) in final.items():
        if full.get(fname) is fn:
            continue
        names, guards = _names_used(fn)
        used = (names & known) - guards - final.keys()
        if used:
            raise UnknownKernel(
                f"{', '.join(q.commit[:12] for q in left_out)} cannot be left out of {name}: {fname}() "
                f"from {p.commit[:12]} ({p.title}) would come back and calls {', '.join(sorted(used))}, "
                f"which this kernel no longer has")
    for gone in left_out:
        missing = {f for f, fn in gone.functions.items() if fn is not _REMOVED and f not in final}
        if not missing:
            continue
        for fname, (p, fn) in final.items():
            names, guards = _names_used(fn)
            used = (names & missing) - guards
            if used:
                raise UnknownKernel(
                    f"{gone.commit[:12]} cannot be left out of {name}: {fname}() from {p.commit[:12]} "
                    f"({p.title}) calls {', '.join(sorted(used))}, which {gone.commit[:12]} introduced")


def kernel(name: str = "newest", without: tuple[str, ...] | list[str] = (),
           extra: tuple | list = ()):
    """Build the modelled kernel ``name``, less the patches ``without``, plus ``extra`` patches.

    ``extra`` items are :class:`Patch` objects or paths of patch files.
    """
    from ..linux.kernel import kernel_class

    if name not in KERNELS:
        name = resolve(name).name
    if not without and not extra:          # the hot path: one dict lookup per kernel built
        cls = _plain_kernels.get(name)
        if cls is None:
            cls = _plain_kernels[name] = kernel_class(name, patches_for(name))
        return cls()
    base = patches_for(name)
    chosen = list(base)
    for ref in without:
        patch = find_patch(ref)
        if patch not in chosen:
            raise UnknownKernel(f"{ref} ({patch.version}) is not in {name}")
        chosen.remove(patch)
    for item in extra:
        chosen.append(item if isinstance(item, Patch) else load_patch_file(item))
    left_out = [p for p in base if p not in chosen]
    if left_out:
        check_revert(name, left_out, chosen)
    all_ = series()
    label = name + "".join(f"-{p.commit[:12]}" for p in base if p not in chosen)
    label += "".join(f"+{p.commit[:12]}" for p in chosen if p not in all_)
    return kernel_class(label, chosen)()


__all__ = ["KERNELS", "NEWEST_TREE", "SERIES", "Patch", "Resolved", "kernel_range", "resolve", "resolve_list", "PatchFileError", "UnknownKernel", "find_patch",
           "kernel", "kernel_at", "kernel_index", "load_patch_file", "patches_for", "prefix_label", "series",
           "series_index", "series_prefix", "version_key"]
