"""zonedev: an executable model of Linux ZONE_DEVICE page refcounting, era by era, and a checker
that explores every interleaving of it."""

from .patches import KERNELS, Patch, kernel
from .sync.kinds import finding_kind
from .linux import violations as _violations  # registers the model's violation kinds
from .rt.scenario import Check, Run, Scenario, expect_page_freed, expect_refs, scenario
from .rt.check import Result, Results, check
from .rt.engine import Finding
from .rt.matrix import MatrixResult, matrix

__version__ = "0.1.0"
__all__ = ["KERNELS", "Patch", "kernel", "__version__",
           "Check", "Finding", "MatrixResult", "Result", "Results", "Run", "Scenario", "check", "expect_page_freed",
           "expect_refs", "finding_kind", "matrix", "scenario"]
