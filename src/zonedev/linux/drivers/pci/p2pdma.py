"""drivers/pci/p2pdma.c: the p2pmem pool's use of the pgmap reference.

* ``pci_alloc_p2pmem`` (v4.20+): ``gen_pool_alloc_owner`` then
  ``percpu_ref_tryget_live_rcu(ref)``: one pgmap reference per allocation; fails once the pgmap
  is being torn down.  Page refcounts are not touched.
* ``pci_free_p2pmem``: ``gen_pool_free_owner`` then ``percpu_ref_put(ref)``.
* ``p2pmem_alloc_mmap`` (v6.2+, installed by c_7e9c7ef83d78) maps pages to userspace: the
  mapping holds the page, the page holds a pgmap reference, and the final unmap put runs
  ``p2pdma_page_free`` (``gen_pool_free_owner`` + ``percpu_ref_put``).

The pool itself (which pages are free) is the caller's: the model passes the page.
"""

from __future__ import annotations


def pci_alloc_p2pmem(k, pgmap, page):
    """Allocate ``page`` from the p2pmem pool of ``pgmap``: None if the pgmap is dying."""
    if not pgmap.ref.tryget_live("pci_alloc_p2pmem"):
        return None
    return page


def pci_free_p2pmem(k, pgmap, page) -> None:
    pgmap.ref.put("pci_free_p2pmem")
