"""Checkpoints: an exploration's state at an execution boundary, saved to a file and resumed.

Every explorer keeps its whole state in plain lists, dicts and sets between two executions:
Optimal-DPOR its exploration stack (per node: chosen thread, enabled and sleep sets, wakeup
tree, clocks, footprints), the DFS and stateful searches their schedule stack with the options
left at each node (and the visited states), random/PCT the generator's state and the traces and
final states seen.  A checkpoint is that state, pickled, with the outcome so far; resuming puts
it back and the explorer goes on from the next execution exactly as it would have, so an
interrupted-and-resumed run ends with the counts and findings of an uninterrupted one.

A checkpoint names what it is of (scenario, its file's digest, kernel, mode, parameters, seed):
resuming it for anything else is refused.  Code objects in stateful keys (thread positions) are
saved with ``marshal`` (they compare by value), modules by name.  The file is replaced
atomically, so an interrupt while saving leaves the previous checkpoint.

Depth.  Optimal-DPOR's wakeup trees nest as deep as an execution is long (up to the step limit,
20,000 by default), deeper than pickle's recursion allows in the calling thread; such a state is
pickled in a thread of its own with a large stack (unpickling is not recursive).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import marshal
import os
import pickle
import sys
import threading
import types
from pathlib import Path
from typing import Any

FORMAT = 2     # 2: state keys number code objects (StateKeys.code_num)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: ``file: reason``."""


def _code(data: bytes) -> types.CodeType:
    return marshal.loads(data)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is types.CodeType:
            return _code, (marshal.dumps(obj),)
        if type(obj) is types.ModuleType:
            return importlib.import_module, (obj.__name__,)
        return NotImplemented


def _dumps(obj: Any) -> bytes:
    """Pickle ``obj``; a structure too deep for this thread's stack is pickled again in a thread
    with a 512 MiB stack and a recursion limit to match (the interpreter's limit is global: it
    is restored at once)."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return buf.getvalue()
    except RecursionError:
        pass
    box: dict = {}

    def deep() -> None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(200_000)
        try:
            b = io.BytesIO()
            _Pickler(b, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
            box["data"] = b.getvalue()
        except BaseException as e:      # handed to the calling thread
            box["error"] = e
        finally:
            sys.setrecursionlimit(limit)

    size = threading.stack_size(512 << 20)
    try:
        t = threading.Thread(target=deep, name="zonedev-checkpoint")
        t.start()
        t.join()
    finally:
        threading.stack_size(size)
    if "error" in box:
        raise box["error"]
    return box["data"]


def _digest(path: str) -> str:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


class Checkpoints:
    """Saving to ``out`` and loading from ``src`` for one exploration (``identity``: what it
    is of; a resumed checkpoint must have the same)."""

    def __init__(self, out: str | None, src: str | None, identity: dict) -> None:
        self.out = out
        self.src = src
        ident = dict(identity)
        ident["file_digest"] = _digest(str(ident.get("scenario", "")).partition("::")[0])
        self.identity = repr(sorted(ident.items()))
        self.saves = 0
        if out is not None:         # refused now, not at the first save minutes later
            parent = Path(out).parent
            if not parent.is_dir() or not os.access(parent, os.W_OK) or Path(out).is_dir():
                raise CheckpointError(f"{out}: cannot write a checkpoint there")

    def save(self, state: dict) -> None:
        if self.out is None:
            return
        data = _dumps({"format": FORMAT, "identity": self.identity, "state": state})
        tmp = f"{self.out}.tmp{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.out)
        except OSError as e:
            raise CheckpointError(f"{self.out}: cannot write the checkpoint: {e.strerror or e}") from None
        self.saves += 1

    def remove(self) -> None:
        if self.out is not None:
            try:
                os.unlink(self.out)
            except OSError:
                pass

    def load(self) -> dict | None:
        if self.src is None:
            return None
        try:
            with open(self.src, "rb") as f:
                data = pickle.load(f)
        except OSError as e:
            raise CheckpointError(f"{self.src}: cannot read the checkpoint: {e.strerror or e}") from None
        except Exception as e:
            raise CheckpointError(f"{self.src}: not a zonedev checkpoint ({type(e).__name__})") from None
        if not isinstance(data, dict) or "format" not in data:
            raise CheckpointError(f"{self.src}: not a zonedev checkpoint (format)")
        if data["format"] != FORMAT:
            raise CheckpointError(f"{self.src}: a checkpoint of another zonedev version (format "
                                  f"{data['format']!r}, this one reads {FORMAT}): start the search again")
        if data.get("identity") != self.identity:
            raise CheckpointError(f"{self.src}: a checkpoint of another exploration (scenario, file, "
                                  f"kernel, mode, parameters and seed must be the same)")
        return data["state"]
