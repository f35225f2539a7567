"""The checker's compiled modules: which one runs, the compiled copy or the interpreted file.

setup.py compiles a few of the checker's hot modules with mypyc (``COMPILED``: the DPOR search,
the stateful search's state keys), each as a copy named ``zonedev.rt._NAME_native`` that carries
the BLAKE2 digest of the file it was made from as ``SOURCE``.  A module takes its compiled copy
only while its own source still has that digest, so an edit takes effect at once, interpreted,
until the next ``pip install``; ``ZONEDEV_PURE=1`` keeps every module interpreted.  The copy
runs the same code on the same data, with the same answers (tests/test_native.py).

This module is not compiled: it decides, and it holds what both copies must share.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType

#: module -> the name of its compiled copy (setup.py builds exactly these)
COMPILED = {"zonedev.rt.dpor": "zonedev.rt._dpor_native",
            "zonedev.rt.state": "zonedev.rt._state_native"}


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(), digest_size=16).hexdigest()


def compiled(name: str, path: str) -> ModuleType | None:
    """The compiled copy of module ``name`` (whose source is ``path``), or None: not built,
    built from another source, or ZONEDEV_PURE set."""
    if os.environ.get("ZONEDEV_PURE") or name not in COMPILED:
        return None
    try:
        m = importlib.import_module(COMPILED[name])
    except ImportError:
        return None
    return m if getattr(m, "SOURCE", None) == digest(path) else None


def interpreted(name: str, path: str) -> ModuleType:
    """Module ``name`` interpreted, whichever is in use: a second instance loaded from ``path``
    as ``NAME_pure`` (``zonedev.rt._dpor_pure``), for a benchmark's baseline and the tests."""
    pkg, _, base = name.rpartition(".")
    full = f"{pkg}._{base}_pure"
    m = sys.modules.get(full)
    if m is None:
        spec = importlib.util.spec_from_file_location(full, path)
        assert spec is not None and spec.loader is not None
        m = importlib.util.module_from_spec(spec)
        sys.modules[full] = m
        spec.loader.exec_module(m)
    return m


def use(g: dict, names: tuple[str, ...], wrappers: dict) -> ModuleType | None:
    """Called at the end of a module of ``COMPILED`` with its globals ``g``: when its compiled
    copy may run, rebind ``names`` to the copy's and set ``wrappers`` (name -> function, for
    what must pass a flag across first); returns the copy in use, or None."""
    m = compiled(g["__name__"], g["__file__"])
    if m is None:
        return None
    for name in names:
        g[name] = getattr(m, name)
    g.update(wrappers)
    return m
