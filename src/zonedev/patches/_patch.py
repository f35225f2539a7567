"""A kernel change, modelled: what it is, and the model functions and facts it installs.

A patch module reads like the commit it models::

    PATCH = Patch(
        commit="0dc45ca1ce18", title="mm/memremap.c: take a pgmap reference on page allocation",
        version="v6.1", fixes="27674ef6c73f",
        replaces="allocated device-private pages held no pgmap reference ...",
    )

    @PATCH.define
    def zone_device_page_init(k, page):
        ...

Every function takes the kernel ``k`` first, the way C code reaches globals, and calls other
kernel functions through it (``k.put_page(page)``), so a later patch that replaces one function
changes every caller, as in the real tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(eq=False)
class Patch:
    commit: str
    title: str
    version: str
    #: the model behaviour this patch replaces, in a sentence or two
    replaces: str = ""
    fixes: str | None = None
    #: the seed thread (``shared/seeds`` file name) the patch comes from, if any
    seed: str | None = None
    #: CONFIRMED / INFERRED / UNCONFIRMED, as the eras reference marks the commit id
    confidence: str = "CONFIRMED"
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: plain facts a kernel has from this patch on (``memory_types``, ``GUP_PIN_COUNTING_BIAS``, ...)
    facts: dict[str, Any] = field(default_factory=dict)
    #: where the patch was loaded from, for user patches
    source: str = ""
    #: for a what-if patch: the kernel it was posted against, as people write it (``"v5.17"``,
    #: ``"6.12"``); the kernel ``zonedev check`` uses when ``--patch`` is given without
    #: ``--kernel``; shown beside the patch in ``check`` and ``bisect`` output
    base: str | None = None

    def define(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: this patch installs ``fn`` under its own name."""
        self.functions[fn.__name__] = fn
        return fn

    def remove(self, *names: str) -> None:
        """This patch deletes kernel functions (calling one afterwards is an AttributeError)."""
        for name in names:
            self.functions[name] = _REMOVED

    def set(self, **facts: Any) -> None:
        self.facts.update(facts)

    def matches(self, ref: str) -> bool:
        """Does ``ref`` (a commit prefix of at least 7 characters) name this patch?"""
        ref = str(ref).lower()
        commit = self.commit.lower()
        if len(ref) < 7 or any(c not in "0123456789abcdef" for c in ref):
            return False
        # a prefix of the commit id, or a longer id (up to 40 hex digits) that the stored one prefixes
        return commit.startswith(ref) or (len(ref) <= 40 and ref.startswith(commit))


_REMOVED = object()
