"""HMM v13 04/18 "mm/ZONE_DEVICE/free-page: callback when page is freed" (Jerome Glisse, posted
18 Nov 2016; seed ``004_a62c87353d9b55fb.txt``), on v4.5 -- the tree it was written against
(kernel/memremap.c ``put_zone_device_page`` of v4.5-v4.11).

As posted: ``struct dev_pagemap`` gains ``free_devpage(page, data)`` and ``data``, and
``put_zone_device_page`` -- which ``put_page`` calls *after* its own ``put_page_testzero`` --
runs the callback "if refcount is 1 then page is freed and refcount is stable as nobody holds a
reference on the page": ``if (pgmap->free_devpage && page_count(page) == 1)``, then drops the
pgmap reference as before.  (The model keeps the callback in ``pgmap.ops.page_free``, called
with ``data`` as v4.5-v5.2 kernels did; the driver fills it in after ``devm_memremap_pages``.)
Not merged in this form: v4.14's ``put_zone_device_private_or_public_page`` (7b2d55d2c893) tests
the value ``page_ref_dec_return`` returned, one atomic step.

What the matrix shows (``zonedev matrix scenarios/seeds.py --kernel v4.5 --patch THIS``):

* ``page_free_at_one`` on v4.5: ``page_free_never_called`` -> ``page_free_twice``.  The
  decrement and the ``page_count() == 1`` test are two steps: when the last two holders put at
  once, both decrements can land before either test, both tests see 1, and the driver gets the
  page back twice (on its free list twice: handed to two users).
* ``page_free_vs_memunmap`` on v4.5: ``[page_free_never_called, use_after_free]`` ->
  ``use_after_free``: the callback now runs, but v4.5's release still removes the memmap while
  the page is held (F2).
* Every other cell is unchanged (``pgmap_ref_per_page`` has no ``free_devpage``).
"""

import zonedev

PATCH = zonedev.Patch(
    commit="hmm-v13-04of18", title="mm/ZONE_DEVICE/free-page: callback when page is freed",
    version="v4.5", seed="004_a62c87353d9b55fb.txt", confidence="CONFIRMED",
    replaces="no callback told a driver that one of its ZONE_DEVICE pages became free",
)


@PATCH.define
def put_zone_device_page(k, page) -> None:
    """kernel/memremap.c v4.5 + HMM v13 04/18: the free hook, read after put_page's decrement."""
    pgmap = page.pgmap
    # "If refcount is 1 then page is freed and refcount is stable as nobody holds a reference"
    if pgmap.ops.page_free is not None and k.page_count(page, "put_zone_device_page") == 1:
        k.call_page_free(page, "put_zone_device_page")
    k.put_dev_pagemap(pgmap)
