"""The names of findings: every kind a verdict can contain.

A scenario's expected verdict names finding kinds (``use_after_free``, ``hang``, ``leak``); a
typo there would make an expectation that can never match, so kinds are registered where they
are defined and an expectation naming an unregistered kind is refused when the scenario file
loads.  The model registers its violation kinds (``zonedev.linux.violations``), the checker its
own (``hang``, ``leak``, ``invariant``, ``exception``, ...), and a scenario file may add one for
its own :class:`~zonedev.Check`: ``zonedev.finding_kind("torn_read", "what it means")``.
"""

from __future__ import annotations

#: kind -> one line saying what it means
KINDS: dict[str, str] = {}


def finding_kind(kind: str, meaning: str) -> str:
    """Register a finding kind (idempotent); returns ``kind``."""
    if not isinstance(kind, str) or not kind.replace("_", "").isalnum():
        raise ValueError(f"finding kind {kind!r}: use letters, digits and underscores")
    KINDS.setdefault(kind, meaning)
    return kind


for _kind, _meaning in {
    "hang": "every unfinished thread is blocked and nothing can wake it",
    "livelock": "every unfinished thread is blocked and some spin in retry loops whose inputs never change",
    "leak": "a reference is still held at the end that no thread owns (expect_refs and kin)",
    "invariant": "a scenario invariant failed after some step",
    "final": "a scenario final check failed",
    "check": "a scenario check failed",
    "exception": "model code raised an exception (the thread ended there)",
    "step_timeout": "a thread ran too long without reaching a sync point (the step guard stopped it)",
    "assert": "a value the kernel's own test asserts was not met",
    "data": "data read back differs from what was written",
    "signal": "the process would be killed (SIGBUS/SIGSEGV)",
}.items():
    finding_kind(_kind, _meaning)
