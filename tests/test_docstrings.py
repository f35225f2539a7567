"""Every kernel function of every modelled kernel names the kernel file and the version (or
commit) it follows, in its docstring (issue 13; the project's fidelity rule)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import zonedev.linux
from zonedev.patches import series
from zonedev.patches._patch import _REMOVED

#: a kernel path: mm/memremap.c, include/linux/mm.h, lib/test_hmm.c, drivers/..., fs/dax.c, block/bio.c, ...
PATH = re.compile(r"\b(?:mm|include|lib|drivers|fs|kernel|arch|block|tools)/[\w./-]+")
#: a version (v5.18, v6.1) or a commit id (12+ hex digits, or the series' shorter ids)
VERSION = re.compile(r"\bv\d+\.\d+|\b[0-9a-f]{10,40}\b")


def kernel_functions():
    """(owner, name, function) for every function of every patch of the series, and the
    ``FUNCTIONS`` tuples of the linux/ modules the base patches install."""
    seen: dict[int, tuple[str, str, object]] = {}
    for p in series():
        for name, fn in p.functions.items():
            if fn is _REMOVED or not callable(fn):
                continue
            seen.setdefault(id(fn), (p.commit, name, fn))
    for info in pkgutil.walk_packages(zonedev.linux.__path__, "zonedev.linux."):
        mod = importlib.import_module(info.name)
        for attr in dir(mod):
            if attr.isupper() and attr.endswith("FUNCTIONS"):
                for fn in getattr(mod, attr):
                    if callable(fn):
                        seen.setdefault(id(fn), (info.name, fn.__name__, fn))
    return list(seen.values())


def missing():
    out = []
    for owner, name, fn in kernel_functions():
        doc = inspect.getdoc(fn) or ""
        if not PATH.search(doc) or not VERSION.search(doc):
            out.append(f"{owner}: {name} ({inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]})")
    return out


def test_there_are_kernel_functions_to_check():
    fns = kernel_functions()
    names = {n for _o, n, _f in fns}
    assert len(fns) > 250 and {"put_page", "zone_device_page_init", "memunmap_pages"} <= names


def test_every_kernel_function_names_its_kernel_file_and_version():
    bad = missing()
    assert not bad, f"{len(bad)} kernel functions without a kernel path and version in the docstring:\n" + \
        "\n".join(bad)
