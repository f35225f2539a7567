"""A modelled kernel: the functions and facts of a patch series, applied in order.

``Kernel`` subclasses are made once per series (cached), so building a kernel for every checker
execution costs one object.  Kernel functions are methods: ``k.put_page(page)``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from ..patches._patch import _REMOVED, Patch
from ..sync.world import World, current_world, set_world


class NoKernelFunction(AttributeError):
    """A kernel function this kernel does not have: a patch of a later release brings it in, or
    one of its patches removed it.  ``zonedev bisect`` counts a prefix that raises it as
    untestable, and the pytest plugin skips; any other AttributeError is a bug in the scenario
    or the model and is reported as one."""


#: the message of :class:`NoKernelFunction` (it travels as text in results): kernel, function
MISSING_FUNCTION = re.compile(r"(\S+) has no kernel function (\w+)\(\)")


class Kernel:
    """Base of every modelled kernel.  See :func:`zonedev.kernel` to build one."""

    name: str = "empty"
    patches: tuple[Patch, ...] = ()

    def __init__(self) -> None:
        world = current_world()
        if world.kernel is not None and world.scheduler is None:
            # a second kernel in a REPL or a script: it gets a World of its own (and becomes the
            # current one, so the pgmaps made next belong to it), instead of reporting the
            # first kernel's events and violations as its own
            world = World()
            set_world(world)
        world.kernel = self
        self.world: World = world
        init = getattr(self, "mem_init", None)
        if init is not None:      # the base patch's boot-time state (memmap, buddy, pgmap xarray)
            init()

    def __getattr__(self, name: str) -> Any:
        # only reached when the ordinary lookup failed
        if name.startswith("__"):
            raise AttributeError(name)
        raise NoKernelFunction(f"{self.name} has no kernel function {name}()")

    def has(self, function: str) -> bool:
        """Does this kernel have ``function`` (``put_devmap_managed_page``, ...)?"""
        return callable(getattr(type(self), function, None))

    def fact(self, name: str, default: Any = None) -> Any:
        return getattr(type(self), "facts", {}).get(name, default)

    def __repr__(self) -> str:
        return f"<Kernel {self.name}: {len(self.patches)} patches>"


_classes: dict[tuple, type[Kernel]] = {}


def kernel_class(name: str, patches: Iterable[Patch]) -> type[Kernel]:
    patches = tuple(patches)
    key = (name, tuple(id(p) for p in patches))
    cls = _classes.get(key)
    if cls is None:
        namespace: dict[str, Any] = {"name": name, "patches": patches, "facts": {}}
        for patch in patches:
            for fname, fn in patch.functions.items():
                if fn is _REMOVED:
                    namespace.pop(fname, None)
                else:
                    namespace[fname] = fn
            namespace["facts"] = {**namespace["facts"], **patch.facts}
        cls = type(f"Kernel[{name}]", (Kernel,), namespace)
        _classes[key] = cls
    return cls
