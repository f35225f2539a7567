"""832d7aa05178 "mm: optimize dev_pagemap reference counting around get_dev_pagemap" (v4.16,
Christoph Hellwig; patch 12/17 of the "memremap" series, with "mm: move get_dev_pagemap out of
line").

[posting 20171229075406.1936-13-hch@lst.de and the merge log that lists it: CONFIRMED title;
the commit id is UNCONFIRMED]  ``get_dev_pagemap(pfn, pgmap)`` with a cached ``pgmap`` that
covers ``pfn`` now returns it **without** another reference (the caller already holds a live
one, and keeps exactly one across a whole GUP walk); a cached ``pgmap`` that does not cover the
pfn is put before the lookup.  mm/memremap.c of v5.3 (S4) has exactly this shape.

Not in kernel_eras.md: the reference's v4.5 description (a blind ``percpu_ref_get`` in the
cached case) stops being true here.

Audit: id not found in the indexed sources (searched: find_string "832d7aa05178"/"832d7aa0517", the
quoted-title Fixes: form, pages search by title).  Title and v4.16 supported: Michal Hocko's mm
"since-4.15" shortlog (1 Feb 2018) lists it under Christoph Hellwig in libnvdimm-for-next.
"""

from ..linux.mm.memremap import pgmap_covers
from ._patch import Patch

PATCH = Patch(
    commit="832d7aa05178", title="mm: optimize dev_pagemap reference counting around get_dev_pagemap",
    version="v4.16", confidence="UNCONFIRMED",
    replaces="get_dev_pagemap took one more pgmap reference per call even with a cached pgmap",
)


@PATCH.define
def get_dev_pagemap(k, pfn: int, pgmap=None):
    """``get_dev_pagemap(pfn, pgmap)``: keep the caller's reference when ``pgmap`` covers ``pfn``
    (no new one); else drop it and look the pfn up with a live reference.  Kernel: kernel/memremap.c,
    as 832d7aa05178 "mm: optimize dev_pagemap reference counting around get_dev_pagemap" (v4.16)
    has it."""
    if pgmap is not None:
        if pgmap_covers(pgmap, pfn):
            return pgmap
        k.put_dev_pagemap(pgmap)
    return k.get_dev_pagemap_rcu(pfn, "percpu_ref_tryget_live")
