"""What the stateful search's state keys raise (:mod:`zonedev.rt.state`).  Kept apart from
state.py so that its compiled copy and the interpreted file raise the same classes (the
explorer catches them by class; see :mod:`zonedev.rt.native`)."""


class Uncacheable(Exception):
    """A value the key cannot canonicalise: the state is explored without pruning (sound)."""


class UnsoundKey(AssertionError):
    """Two states with one key differ in what :class:`~zonedev.rt.state.Fingerprint` sees
    (audit mode)."""
