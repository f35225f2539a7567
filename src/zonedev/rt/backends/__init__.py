"""Where the units of a split exploration run besides local worker processes
(:mod:`zonedev.rt.parallel`): :mod:`.ray_backend` (``--backend ray``)."""
