"""zonedev's build: the Optimal-DPOR core (src/zonedev/rt/dpor.py) is also compiled with mypyc,
as ``zonedev.rt._dpor_native``, when it can be; everything else is in pyproject.toml.

The compiled copy is optional: without mypy or a C compiler, or with ZONEDEV_PURE=1 set at
install time, zonedev installs without it and runs the interpreted module (the same answers,
about 1.5-2x slower on DPOR's bookkeeping: docs/scale.md).  dpor.py loads the copy only while
its own source is the one the copy was built from (the digest below), so editing dpor.py never
runs stale compiled code.
"""

import hashlib
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SRC = Path("src/zonedev/rt/dpor.py")
COPY = Path("build/mypyc/zonedev/rt/_dpor_native.py")


def _native_extensions() -> list:
    if os.environ.get("ZONEDEV_PURE"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("zonedev: mypy is not installed: installing the interpreted DPOR core only", file=sys.stderr)
        return []
    text = SRC.read_bytes()
    digest = hashlib.blake2b(text, digest_size=16).hexdigest()
    COPY.parent.mkdir(parents=True, exist_ok=True)
    for pkg in (COPY.parent, COPY.parent.parent):
        (pkg / "__init__.py").write_text("")
    COPY.write_bytes(text + f"\nSOURCE = {digest!r}\n".encode())
    try:
        return mypycify(["--follow-imports=skip", "--ignore-missing-imports", str(COPY)], opt_level="3")
    except BaseException as e:       # mypy's own errors end in SystemExit
        print(f"zonedev: mypyc could not compile {SRC} ({e!r}): installing the interpreted DPOR core only",
              file=sys.stderr)
        return []


class OptionalBuildExt(build_ext):
    """A C compiler that is missing or fails leaves the interpreted module, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:
            print(f"zonedev: building the compiled DPOR core failed ({e}): the interpreted one is used",
                  file=sys.stderr)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            print(f"zonedev: building {ext.name} failed ({e}): the interpreted DPOR core is used", file=sys.stderr)


setup(ext_modules=_native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
