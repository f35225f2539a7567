"""One error path for every ``zonedev`` command, and the exit statuses.

Exit statuses: 0 nothing found, 1 something found, 2 bad input, 130 interrupted (SIGINT),
143 terminated (SIGTERM).

Bad input is reported as one line on stderr, ``zonedev: error: WHERE: reason``, where WHERE is
``file:line`` for a problem in a file and the option's name for a bad option; under ``--json``
stdout carries only a JSON error object (``{"error": ..., "where": ..., "status": 2}``).  Click's
own usage errors (an unknown option, a value of the wrong type) are turned into the same line.

Signals: while a command runs, SIGINT and SIGTERM do not raise in the middle of whatever Python
code is running; they ask the exploration to stop (:func:`zonedev.rt.outcome.request_stop`), it
stops at the next execution boundary, and the command prints what it has and exits 130/143.  A
second signal stops at once (:class:`~zonedev.rt.outcome.Interrupted`).  A ``KeyboardInterrupt``
raised by model or scenario code is therefore never a Ctrl-C: it is that code's exception.
"""

from __future__ import annotations

import json
import math
import re
import signal
import sys
from contextlib import contextmanager
from typing import Any, Iterator, NoReturn

import click

OK, FOUND, BAD_INPUT = 0, 1, 2
INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}
STATUSES = (OK, FOUND, BAD_INPUT, *INTERRUPTED.values())

#: whether the running command was given ``--json`` (set by :class:`Group` from the arguments)
state = {"json": False}


class BadInput(Exception):
    """Bad input: the message is ``WHERE: reason``."""


def one_line(message: str) -> str:
    """A message on one line (continuation lines joined with ``; ``, control characters
    escaped, a WHERE that is blank or padded quoted)."""
    parts = [p.strip() for p in str(message).split("\n") if p.strip()]
    text = "; ".join(parts) if parts else "bad input"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    where, sep, reason = str(message).partition(": ")
    if sep and (not where.strip() or where != where.strip()):
        where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in where)
        text = f"{where!r}: {one_line(reason)}"
    return text


def _split(message: str) -> tuple[str, str]:
    where, sep, reason = message.partition(": ")
    return (where, reason) if sep else ("", message)


def fail(message: str) -> NoReturn:
    """Report bad input (``WHERE: reason``) and exit 2."""
    message = one_line(message)
    if state["json"]:
        where, reason = _split(message)
        click.echo(json.dumps({"error": message, "where": where, "reason": reason, "status": BAD_INPUT}))
    click.echo(f"zonedev: error: {message}", err=True)
    raise SystemExit(BAD_INPUT)


def _usage_where(e: click.UsageError) -> str:
    if isinstance(e, (click.NoSuchOption, click.BadOptionUsage)):
        return e.option_name
    if isinstance(e, click.BadParameter):
        if e.param_hint:
            hint = e.param_hint if isinstance(e.param_hint, str) else " / ".join(e.param_hint)
            return hint.strip("'\"")
        if e.param is not None:
            opts = [o for o in e.param.opts if o.startswith("--")] or list(e.param.opts)
            return opts[0] if opts and e.param.param_type_name == "option" else (
                e.param.metavar or e.param.human_readable_name)
    ctx = e.ctx
    return ctx.command.name if ctx is not None and ctx.command.name else "zonedev"


def _usage_reason(e: click.UsageError) -> str:
    if isinstance(e, click.NoSuchOption):
        msg = "no such option"
        if e.possibilities:
            msg += f" (did you mean {', '.join(sorted(e.possibilities))}?)"
        return msg
    if isinstance(e, click.MissingParameter):
        what = e.param.param_type_name if e.param is not None else "parameter"
        return f"missing {what}"
    msg = e.message
    m = re.match(r"No such command '(.*)'\.?", msg)
    if m:
        ctx = e.ctx
        cmds = ", ".join(sorted(ctx.command.commands)) if ctx is not None and hasattr(ctx.command, "commands") else ""
        return f"{m.group(1)}: no such command" + (f" (commands: {cmds})" if cmds else "")
    return msg.rstrip(".")


def usage_message(e: click.UsageError) -> str:
    reason = _usage_reason(e)
    if re.match(r"No such command", e.message):
        return reason
    return f"{_usage_where(e)}: {reason}"


class Group(click.Group):
    """The ``zonedev`` group: every error leaves through :func:`fail`, every exit status is
    one of 0, 1, 2, 130, 143."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        state["json"] = "--json" in argv
        code: Any = OK
        try:
            try:
                with signals(immediate=True):
                    rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
                code = rv if isinstance(rv, int) else OK
            except click.UsageError as e:
                if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:   # ``zonedev trace``
                    click.echo(e.ctx.get_help())
                    raise SystemExit(OK) from None
                fail(usage_message(e))
            except click.ClickException as e:
                fail(e.format_message())
            except BadInput as e:
                fail(str(e))
            except click.Abort:
                code = INTERRUPTED[signal.SIGINT]
            except KeyboardInterrupt:           # a Ctrl-C before the handlers were installed
                code = INTERRUPTED[signal.SIGINT]
            except _interrupted() as e:
                code = INTERRUPTED.get(e.signum, 130)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (OK if e.code is None else BAD_INPUT)
            if code not in STATUSES:    # not ours: someone's sys.exit escaped (never let it choose)
                click.echo(f"zonedev: error: {self.name}: exit status {code} from code zonedev ran", err=True)
                code = BAD_INPUT
        if standalone_mode:
            sys.exit(code)
        return code


def _interrupted() -> type[BaseException]:
    from ..rt.outcome import Interrupted
    return Interrupted


@contextmanager
def signals(immediate: bool = False) -> Iterator[None]:
    """SIGINT/SIGTERM ask the exploration to stop (see the module docstring) while the block
    runs; ``immediate``: they stop it at once (:class:`Interrupted`), for commands that do not
    look for a stop request (every command runs under this; ``check`` and ``matrix`` look)."""
    from ..rt.outcome import Interrupted, clear_stop, request_stop, stop_requested
    clear_stop()

    def handler(signum: int, frame: Any) -> None:
        if immediate or stop_requested():
            request_stop(signum)
            raise Interrupted(signum)
        request_stop(signum)

    try:
        old = {s: signal.signal(s, handler) for s in INTERRUPTED}
    except ValueError:      # not the main thread: no handlers
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def interrupted_status() -> int | None:
    """The exit status for a stop that a signal asked for, None when none did."""
    from ..rt.outcome import stop_requested
    s = stop_requested()
    return INTERRUPTED.get(s, 130) if s else None


# -- option types: validated up front, one line when wrong ---------------------------------------

class Seconds(click.ParamType):
    """A finite number of seconds > 0."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(v) or v <= 0:
            self.fail(f"{value!r}: need a finite number of seconds > 0", param, ctx)
        return v


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``1000000`` (bytes) -> bytes; ValueError when not a size."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 4G, 512M)")
    v = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(v) or v < 1 << 20:
        raise ValueError(f"{text!r}: need at least 1M")
    return int(v)


class Size(click.ParamType):
    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def jsonable(v: Any) -> Any:
    """``v`` with what JSON cannot hold made printable: non-finite floats and other objects
    become strings, so ``--json`` output is always valid JSON."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return repr(v)


def dumps(v: Any, indent: int | None = 2) -> str:
    return json.dumps(jsonable(v), indent=indent, allow_nan=False)


class Path(click.Path):
    """``click.Path`` that refuses, in one line, what the OS cannot take as a path (a NUL
    byte) instead of raising from ``os.stat``."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and "\0" in value:
            self.fail(f"{value!r}: a path cannot hold a NUL byte", param, ctx)
        try:
            return super().convert(value, param, ctx)
        except (ValueError, OSError) as e:
            if isinstance(e, click.BadParameter):
                raise
            self.fail(f"{value!r}: {getattr(e, 'strerror', None) or e}", param, ctx)
