"""The mm the HMM paths run in, as every modelled kernel (v4.5+) has it.

Not one commit: the address-space model the device-memory paths need -- ``mm_struct`` and VMAs
(mm/mmap.c, mm/mprotect.c, mm/mremap.c), page tables with split PTLs, faults / zap / COW /
fork copy (mm/memory.c, kernel/fork.c), anonymous rmap and ``_mapcount`` (mm/rmap.c),
shmem files (mm/shmem.c), MMU notifiers (mm/mmu_notifier.c), the page-table-walking GUP
(mm/gup.c, mm/gup_test.c).  Era-specific behaviour on these paths is installed by later patch
modules (16ce101db85d, b756a3b5e7ea, ...).  See ``linux/mm/*.py`` docstrings for what each
function models and what is left out.
"""

from ..linux.mm import fork, gup_user, huge_memory, memory, mmap, mmu_notifier, rmap, shmem, userfaultfd
from ._patch import Patch

PATCH = Patch(
    commit="v4.5-mm", title="the process address space: mm_struct, VMAs, page tables, faults, zap, fork, rmap, shmem, GUP walk",
    version="v4.5", confidence="CONFIRMED",
    replaces="nothing: the mm the device-memory paths run in",
)

for _mod in (mmap, mmu_notifier, memory, rmap, shmem, fork, gup_user):
    for _fn in _mod.FUNCTIONS:
        PATCH.define(_fn)
    for _name, _fn in getattr(_mod, "ALIASES", {}).items():
        PATCH.functions[_name] = _fn
for _fn in huge_memory.THP_FUNCTIONS + userfaultfd.FUNCTIONS:   # anonymous THP (v2.6.38+); uffd-wp (v5.7+)
    PATCH.define(_fn)
