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
    """Allocate ``page`` from the p2pmem pool of ``pgmap``: None if the pgmap is dying.
    Kernel: drivers/pci/p2pdma.c, v4.20+ (52916982af48)."""
    if not pgmap.ref.tryget_live("pci_alloc_p2pmem"):
        return None
    return page


def pci_free_p2pmem(k, pgmap, page) -> None:
    """``pci_free_p2pmem()``: give the page back to the pool and drop its pgmap reference. Kernel:
    drivers/pci/p2pdma.c, v4.20+ (52916982af48)."""
    pgmap.ref.put("pci_free_p2pmem")


class p2pmem_file:
    """``/sys/bus/pci/devices/.../p2pmem/allocate`` (v6.2+, 7e9c7ef83d78): ``mmap`` of it
    allocates pages from the provider's pool and inserts them all (``p2pmem_alloc_mmap``); the
    VMA has no fault handler.  ``provider`` is the driver whose pgmap is MEMORY_DEVICE_PCI_P2PDMA
    and whose ``free`` list is the pool (``gen_pool``)."""

    vm_ops = "p2pmem"
    fsdax = False

    def __init__(self, provider) -> None:
        self.provider = provider

    def _zd_key(self) -> tuple:
        return ("p2pmem", self.provider.pgmap.name)

    def mmap(self, k, vma) -> None:
        """``p2pmem_alloc_mmap``: one pool page per page of the VMA, each inserted with its own
        pgmap reference; -ENOMEM when the pool runs dry, -ENODEV when the pgmap is dying."""
        import errno
        from ...mm.mmap import PAGE_SIZE, err
        for addr in range(vma.vm_start, vma.vm_end, PAGE_SIZE):
            free = self.provider.free.get("gen_pool_alloc_owner")
            if not free:
                raise err(errno.ENOMEM, "p2pmem: pool exhausted")
            self.provider.free.set(free[1:], "gen_pool_alloc_owner")
            page = k.pfn_to_page(free[0])
            if k.p2pmem_alloc_mmap(self.provider.pgmap, page, vma, addr) is None:
                raise err(errno.ENODEV, "p2pmem: pgmap dying")
