"""5fac7408d828 "mm, fs, dax: handle layout changes to pinned dax mappings" (v4.18).

fs/dax.c ``dax_layout_busy_page()`` and the filesystems' break-layouts wait
(xfs_break_dax_layouts, ext4_break_layouts): find a page of the mapping that is still busy
(refcount > 1), sleep in ``___wait_var_event(&page->_refcount, page_ref_count(page) == 1)``
(dropping MMAPLOCK around ``schedule()``), and loop until no busy page remains
[kernel_eras §4.1, S13 xfs_file.c: CONFIRMED; commit id CONFIRMED below].  The wake-up is the
FS_DAX ``page_free``/``wake_up_var`` on the 2->1 transition.  Model: ``linux/fs/dax.py``;
the file system around it (faults, truncate, hole punch, O_DIRECT into a DAX mapping):
``linux/fs/daxfs.py``.

Audit: CONFIRMED id <-> title: Fixes: 5fac7408d828 ("mm, fs, dax: handle layout changes to pinned
dax mappings") in Vivek Goyal's stable fix (2019); Dan Williams lists it with the xfs/ext4
break-layouts commits; v4.18 INFERRED.
"""

from ..linux.fs import dax, daxfs
from ._patch import Patch

PATCH = Patch(
    commit="5fac7408d828", title="mm, fs, dax: handle layout changes to pinned dax mappings",
    version="v4.18", confidence="CONFIRMED",
    replaces="truncate/hole-punch freed fsdax blocks while a page was still under DMA (pinned by GUP)",
)
for _fn in dax.FUNCTIONS + daxfs.FUNCTIONS:
    PATCH.define(_fn)
