"""The v4.5 tree: the starting point every later patch applies to.

What v4.5 has, as the model sees it (kernel/memremap.c, include/linux/mm.h, mm/swap.c,
mm/page_alloc.c of v4.5):

* ``struct page`` with ``_count`` (the model's ``_refcount``; renamed in v4.6), the page-flag
  bitops, ``lock_page``; the buddy allocator: a page whose count reaches 0 goes back to it
  through ``__put_page`` (``__put_single_page`` -> ``free_hot_cold_page``).
* ``devm_memremap_pages(dev, res, ref, altmap)``: ZONE_DEVICE ``struct page``s for a device
  range.  There is no pgmap type: every ZONE_DEVICE page is what later kernels call
  ``MEMORY_DEVICE_HOST`` (pmem, device-dax).  Pages start at refcount 1 (the normal memmap init)
  and are never supposed to reach 0 (5c2c2587b132's message: they "always have an elevated
  count").  The percpu_ref is the driver's (pmem: the queue's ``q_usage_counter``).
* ``devm_memremap_pages_release``: warn if the ref is still live (the driver should have killed
  it), then ``arch_remove_memory``.  The driver kills before and waits after [kernel_eras §1(d),
  M1 diff context; the driver ordering is INFERRED].
* The era-independent helpers: ``linux/include/page_ref.py``, ``linux/include/mm.py``,
  ``linux/mm/page_alloc.py``, ``linux/mm/memremap.py``, ``linux/mm/gup.py``.

A zone-device page that reaches 0 is freed to the page allocator: the model records
``device_page_to_allocator`` ("Bad page state") and does not put it in the buddy lists.

Facts: ``memory_types`` (the pgmap types the kernel has), ``type_names`` (what the CLI's
``private|coherent|fsdax|generic|p2pdma|public`` mean in this kernel), ``free_refcount`` (the
refcount of an idle, unallocated page per type), ``GUP_PIN_COUNTING_BIAS`` (None before v5.7).
"""

from ..linux.include import mm, page_ref
from ..linux.include.memremap import MEMORY_DEVICE_HOST
from ..linux.mm import debug, gup, memremap, page_alloc, swap
from ._patch import Patch

PATCH = Patch(
    commit="v4.5-base", title="the v4.5 tree: ZONE_DEVICE memmap (devm_memremap_pages), page refcounts, buddy allocator",
    version="v4.5", confidence="CONFIRMED",
    replaces="nothing: the base of the series",
)

for _fn in (page_ref.FUNCTIONS + mm.FUNCTIONS + page_alloc.FUNCTIONS + memremap.FUNCTIONS + swap.FUNCTIONS
            + gup.FUNCTIONS + debug.FUNCTIONS):
    PATCH.define(_fn)
for _name, _fn in mm.ALIASES.items():
    PATCH.functions[_name] = _fn
PATCH.functions["check_page_alive"] = page_ref.check_page_alive

PATCH.set(
    memory_types=(MEMORY_DEVICE_HOST,),
    type_names={"generic": MEMORY_DEVICE_HOST},
    free_refcount={MEMORY_DEVICE_HOST: 1},
    page_free_takes_data=True,
    GUP_PIN_COUNTING_BIAS=None,
    pgmap_ops=(),
    # how a driver of this era allocates a page from its free list: "get_page+lock_page"
    # (v4.14-v5.17), "lock_page" (v5.18-v6.0), "zone_device_page_init" (v6.1+)
    zd_alloc=None,
)


@PATCH.define
def zone_device_init_refcount(k, pgmap) -> int:
    """The refcount ``memmap_init_zone_device`` gives a new ZONE_DEVICE page: 1 (the generic
    ``__init_single_page``/``init_page_count``).

    Kernel: mm/page_alloc.c, v4.5."""
    return 1


@PATCH.define
def get_page(k, page) -> None:
    """``get_page()`` (include/linux/mm.h v4.5): ``VM_BUG_ON_PAGE(page_count <= 0)``, then inc."""
    page = page.head
    if k.page_ref_inc_return(page, "get_page") <= 1:
        k.world.violate("get_on_free_page", "VM_BUG_ON_PAGE(page_ref_count(page) <= 0, page)", page.pfn, "get_page")


@PATCH.define
def put_page_testzero(k, page, func: str = "put_page_testzero") -> bool:
    """``put_page_testzero()`` of include/linux/mm.h, v4.5."""
    return k.page_ref_dec_and_test(page, func)


@PATCH.define
def put_page(k, page) -> None:
    """``put_page()`` (include/linux/mm.h v4.5): ``if (put_page_testzero(page)) __put_page(page)``."""
    page = page.head
    if k.put_page_testzero(page, "put_page"):
        k.__put_page(page)


@PATCH.define
def __put_page(k, page) -> None:
    """``__put_page()`` (mm/swap.c): the count reached 0, free the page to the buddy allocator.
    A ZONE_DEVICE page gets here only through a refcount bug in v4.5."""
    k.free_the_page(page, page.order, "__put_page")


@PATCH.define
def devm_memremap_pages(k, pgmap):
    """``devm_memremap_pages()`` (kernel/memremap.c v4.5): the driver brings ``pgmap->ref``."""
    if pgmap.ref is None:
        raise ValueError("devm_memremap_pages: this era needs the driver's percpu_ref (pgmap.ref)")
    k.pgmap_register(pgmap, "devm_memremap_pages")
    for start, nr in pgmap.ranges:
        k.memmap_init_zone_device(pgmap, start, nr, "devm_memremap_pages")
    return pgmap


@PATCH.define
def devm_memremap_pages_release(k, pgmap) -> None:
    """``devm_memremap_pages_release()`` (kernel/memremap.c v4.5): warn if the driver left the
    ref live, then ``arch_remove_memory``."""
    k.pgmap_check_killed(pgmap, "devm_memremap_pages_release")
    k.remove_pages(pgmap, "arch_remove_memory")
    k.pgmap_unregister(pgmap, "devm_memremap_pages_release")


@PATCH.define
def pgmap_check_killed(k, pgmap, func: str) -> None:
    """``if (percpu_ref_tryget_live(pgmap->ref)) { dev_WARN(dev, "%s: page mapping is still live!"); percpu_ref_put(ref); }``
    Kernel: mm/memremap.c, v4.5."""
    if pgmap.ref.tryget_live(func):
        k.world.violate("pgmap_not_killed", "dev_WARN: page mapping is still live!", None, func)
        pgmap.ref.put(func)
