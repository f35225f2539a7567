"""zonedev's build: the checker's hot modules (``COMPILED`` in src/zonedev/rt/native.py: the
DPOR search, the stateful search's state keys) are also compiled with mypyc, each as
``zonedev.rt._NAME_native``, when they can be; everything else is in pyproject.toml.

The compiled copies are optional: without mypy or a C compiler, or with ZONEDEV_PURE=1 set at
install time, zonedev installs without them and runs the interpreted modules (the same answers,
slower: docs/scale.md).  A module loads its copy only while its own source is the one the copy
was built from (the digest below), so editing it never runs stale compiled code.
"""

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

COPIES = Path("build/mypyc")


def _native() -> object:
    spec = importlib.util.spec_from_file_location("_zonedev_native", "src/zonedev/rt/native.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _native_extensions() -> list:
    if os.environ.get("ZONEDEV_PURE"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("zonedev: mypy is not installed: installing the interpreted checker only", file=sys.stderr)
        return []
    native = _native()
    paths = []
    for module, copy in native.COMPILED.items():
        src = Path("src", *module.split(".")).with_suffix(".py")
        dst = COPIES.joinpath(*copy.split(".")).with_suffix(".py")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for pkg in (dst.parent, dst.parent.parent):
            (pkg / "__init__.py").write_text("")
        dst.write_bytes(src.read_bytes() + f"\nSOURCE = {native.digest(str(src))!r}\n".encode())
        paths.append(str(dst))
    try:
        return mypycify(["--follow-imports=skip", "--ignore-missing-imports", *paths], opt_level="3",
                        separate=True)      # each copy its own library, in its package
    except BaseException as e:       # mypy's own errors end in SystemExit
        print(f"zonedev: mypyc could not compile {', '.join(native.COMPILED)} ({e!r}): installing the "
              "interpreted checker only", file=sys.stderr)
        return []


class OptionalBuildExt(build_ext):
    """A C compiler that is missing or fails leaves the interpreted module, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:
            print(f"zonedev: building the compiled checker failed ({e}): the interpreted one is used",
                  file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            print(f"zonedev: building {ext.name} failed ({e}): the interpreted modules are used", file=sys.stderr)


setup(ext_modules=_native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
