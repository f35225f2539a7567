"""Kernel versions as people write them, mapped onto the modelled series.

A user names the kernel they run the way ``uname -r`` or a changelog spells it: ``6.12``,
``v6.6``, ``v5.15.120``, ``6.1.0-56-amd64`` (Debian), ``7.0-rc4``.  The model is the patch series
of :mod:`zonedev.patches`; every release in which a patch of the series landed is a named kernel
(``v6.1``, ``v6.2``, ...), so the series up to a version is exactly the newest named kernel at or
below it, and the mapping can say so: no ZONE_DEVICE change of the series lies in between.

Stable point releases (``.120``) and distribution suffixes do not move a version: the series
models mainline merges, and a stable backport of a modelled fix is not in it (say so with
``--patch`` if your distribution carries one).  A release candidate ``X.Y-rcN`` is modelled as
``X.Y``: the series' patches land in merge windows, before rc1.

This module is below the command line: ``zonedev.kernel("6.12")`` takes what ``--kernel`` takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: X.Y[.Z][-rcN][-anything] with an optional leading v
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-rc(\d+))?(?:[-+~_.].*)?$", re.IGNORECASE)

#: the oldest kernel with ZONE_DEVICE page refcounting (devm_memremap_pages with struct pages)
OLDEST = (4, 5)
#: versions above this are refused as typos rather than mapped to the newest release (no major
#: line has had more than 20 minor releases)
NEWEST_MAJOR = 7
MAX_MINOR = 20


class KernelVersionError(ValueError):
    """Not a kernel version zonedev can map (``v6.x``, ``9999``, ``3.10``)."""


def parse_version(text: str) -> tuple[int, int, int]:
    """``"6.1.0-56-amd64"`` -> ``(6, 1, 0)``; ``"7.0-rc4"`` -> ``(7, 0, 0)``.  Raises
    :class:`KernelVersionError` with the reason."""
    if ".." in text:        # "v5.18..v6.1" would otherwise read as v5.18 with a suffix
        raise KernelVersionError(f"unknown kernel {text!r}: a range names many kernels; give a version, a comma "
                                 f"list, or all (ranges A..B are for a scenario's expect=)")
    m = _VERSION.match(text.strip())
    if not m:
        raise KernelVersionError(f"unknown kernel {text!r}: not a kernel version (write it as uname -r does: "
                                 f"6.12, v6.6, 5.15.120, 6.1.0-56-amd64, 7.0-rc4; or a modelled name, or all)")
    major, minor, sub = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if major > NEWEST_MAJOR or minor > MAX_MINOR:
        raise KernelVersionError(f"unknown kernel {text!r}: newer than any kernel zonedev knows of")
    if (major, minor) < OLDEST:
        raise KernelVersionError(f"unknown kernel {text!r}: predates ZONE_DEVICE page refcounting (modelled from v4.5)")
    return major, minor, sub


@dataclass(frozen=True)
class Resolved:
    """A kernel a user named, and the modelled kernel that stands for it."""

    asked: str
    name: str            # the modelled kernel (a name in KERNELS)
    note: str = ""       # one line, when ``asked`` is not itself a modelled name

    def __str__(self) -> str:
        return self.note or self.name


def resolve_kernel(text: str, kernels: list[str], release_of) -> Resolved:
    """Map ``text`` to the newest of ``kernels`` at or below it.

    ``kernels``: modelled names, oldest first (``newest`` last); ``release_of(name)`` gives a
    numbered name's ``(major, minor)``.  ``newest`` and exact names map to themselves."""
    asked = text.strip()
    if asked in kernels:
        return Resolved(asked, asked)
    if asked.lower() in ("newest", "latest", "mm", "mm-unstable", "mm-new"):
        return Resolved(asked, "newest", f"{asked} -> modelled as newest (the mm tree)")
    major, minor, _ = parse_version(asked)
    numbered = [n for n in kernels if n != "newest"]
    below = [n for n in numbered if release_of(n) <= (major, minor)]
    name = below[-1]
    exact = f"v{major}.{minor}" == name
    if exact:
        why = "a stable or distribution kernel of the same release (stable backports are not modelled)"
    elif name == numbered[-1]:
        why = f"the newest release the series models; nothing after {name} is modelled"
    else:
        why = f"no ZONE_DEVICE change in the series between {name} and {major}.{minor}"
    return Resolved(asked, name, f"{asked} -> modelled as {name}: {why}")
