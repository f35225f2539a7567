"""7e9c7ef83d78 "PCI/P2PDMA: Allow userspace VMA allocations through sysfs" (v6.2, Logan
Gunthorpe), with its FOLL_PCI_P2PDMA companions.

[kernel_eras §8 P2PDMA paragraph, M20 pre-image, S12: CONFIRMED behaviour; id UNCONFIRMED there, CONFIRMED below]
``p2pmem_alloc_mmap``: pool allocation, ``percpu_ref_tryget_live`` for the duration, then per
page ``vm_insert_page`` (refcount 1 -> 2), ``percpu_ref_get(ref)`` (the page's pgmap
reference), ``put_page`` (-> 1: the mapping holds the page).  The final unmap put (1 -> 0) runs
``free_zone_device_page`` -> ``p2pdma_page_free`` (``gen_pool_free_owner`` +
``percpu_ref_put``) and the page is reset to 1.  GUP needs FOLL_PCI_P2PDMA to return such pages.

Audit: CONFIRMED id <-> title <-> version: full id 7e9c7ef83d785236f5a8c3761dd053fae9b92fb8 with
this title in a kernel.org post-receive revlist (Nov 2022); Hou Tao's fix "Fixes: 7e9c7ef83d78
(...)" and Bjorn Helgaas: "a hang that has apparently been around since v6.2 (7e9c7ef83d78 ...)".
"""

from ._patch import Patch

PATCH = Patch(
    commit="7e9c7ef83d78", title="PCI/P2PDMA: Allow userspace VMA allocations through sysfs",
    version="v6.2", confidence="CONFIRMED",
    replaces="p2pmem could only be used by in-kernel DMA (pci_alloc_p2pmem), never mapped to userspace",
)
PATCH.set(p2pdma_mmap=True)


@PATCH.define
def p2pmem_alloc_mmap(k, pgmap, page, vma=None, addr: int = 0):
    """Map one pool page to userspace; None if the pgmap is dying.  With ``vma`` the page is
    inserted at ``addr`` (``vm_insert_page``: reference, mapcount, PTE); without, only the
    reference the insert takes is modelled (the lifecycle's form).

    Kernel: drivers/pci/p2pdma.c, as 7e9c7ef83d78 (v6.2) has it."""
    ref = pgmap.ref
    if not ref.tryget_live("p2pmem_alloc_mmap"):
        return None
    k.p2pmem_prepare_page(page)
    if vma is not None:
        k.vm_insert_page(vma, addr, page)
    else:
        k.page_ref_inc(page, "vm_insert_page")
    ref.get("p2pmem_alloc_mmap")
    k.put_page(page)
    ref.put("p2pmem_alloc_mmap")
    return page


@PATCH.define
def p2pmem_prepare_page(k, page) -> None:
    """Nothing before v6.15: the pool page already sits at refcount 1.
    Kernel: drivers/pci/p2pdma.c, as 7e9c7ef83d78 (v6.2) has it."""


@PATCH.define
def p2pdma_page_free(k, page) -> None:
    """``p2pdma_page_free``: ``gen_pool_free_owner`` (the page goes back to the provider's pool:
    the pgmap owner's ``free`` list, see ``linux/drivers/pci/p2pdma.py``), then
    ``percpu_ref_put`` of the page's pgmap reference.

    Kernel: drivers/pci/p2pdma.c, as 7e9c7ef83d78 (v6.2) has it."""
    pool = getattr(page.pgmap.owner, "free", None)
    if pool is not None:
        pool.set(pool.get("gen_pool_free_owner") + (page.pfn,), "gen_pool_free_owner")
    page.pgmap.ref.put("p2pdma_page_free")
