"""drivers/dax/device.c and drivers/dax/bus.c: device-dax, a character device mapping pmem or
soft-reserved memory whole (MEMORY_DEVICE_GENERIC from v5.10; MEMORY_DEVICE_DEVDAX v5.3-v5.9;
type 0, ``MEMORY_DEVICE_HOST`` in the model, before).

* ``dev_dax_probe`` (drivers/dax/device.c): ``devm_memremap_pages`` of the range; from v5.17
  (c4386bd8ee3a) with ``pgmap->vmemmap_shift = ilog2(align)``: the pages are compound pages of
  that order, the head carries the refcount (1 when idle: GENERIC stays 1-based in every era,
  kernel_eras §9.1) and the tails stay at 0; the pgmap takes one reference per compound page.
* ``dev_dax_huge_fault`` (``__dev_dax_pte_fault``/``_pmd_fault``/``_pud_fault``): the fault
  maps the whole ``align``-sized page.  Before v6.15 with ``vmf_insert_mixed`` /
  ``vmf_insert_pfn_pmd``/``_pud``: a devmap entry, no page reference, no mapcount.  From v6.15
  ("device/dax: properly refcount device dax pages when mapping", folded into c_38607c62b3):
  ``vmf_insert_page_mkwrite`` / ``vmf_insert_folio_pmd`` / ``_pud``: one folio reference and one
  (entire) mapcount per mapping.  The model keeps a PMD/PUD mapping as one entry per 4K page
  with ``Pte.huge`` = its order; the head's entry holds the reference.
* ``vma_is_fsdax`` is false for device-dax (a character device), so FOLL_LONGTERM pins are
  allowed; GUP takes the head's reference (FOLL_PIN on a large folio: +1 and ``_pincount``).
"""

from __future__ import annotations

from ....sync import Var
from ...mm.mmap import PAGE_SHIFT, PTE_PRESENT, Pte, linear_page_index
from ...mm.memory import FAULT_FLAG_WRITE, VM_FAULT_NOPAGE, VM_FAULT_SIGBUS
from .. import example


class dev_dax:
    """One device-dax instance (``/dev/daxX.Y``): its pgmap (probed the era's way by the example
    driver's ``probe``) and, as a file, what ``do_mmap`` gets (``vm_ops`` "devdax")."""

    vm_ops = "devdax"
    fsdax = False

    def __init__(self, k, nr_pages: int, align_order: int = 0, start_pfn: int = 0x200000,
                 name: str | None = None) -> None:
        shift = align_order if k.fact("vmemmap_shift_supported") else 0
        self.drv = example.ExampleDriver(k, "generic", nr_pages=nr_pages, start_pfn=start_pfn,
                                         vmemmap_shift=shift, name=name or f"dax0.0@{start_pfn:#x}")
        self.pgmap = self.drv.pgmap
        self.align_order = align_order
        self.name = self.pgmap.name
        self.vmas = Var((), f"{self.name}.vmas")

    def _zd_key(self) -> tuple:
        return ("dev_dax", self.name)

    def mmap(self, k, vma) -> None:
        """``dax_mmap``: the VMA joins the device.  The kernel's ``check_vma`` (drivers/dax/device.c,
        v4.5+) also refuses a private or ``align``-unaligned VMA with -EINVAL; the model leaves
        that to the fault, which gives SIGBUS for a VMA that cannot hold an aligned mapping (as
        the kernel's fault does after its PMD/PUD fallback: ``__dev_dax_pte_fault`` refuses an
        ``align`` above the fault size)."""
        self.vmas.set(self.vmas.get("dax_mmap") + (vma,), "dax_mmap")

    def fault(self, k, vmf) -> int:
        """``dax_vm_ops.fault`` / ``.huge_fault``."""
        return k.dev_dax_huge_fault(vmf)


def dev_dax_probe(k, nr_pages: int, align_order: int = 0, start_pfn: int = 0x200000) -> dev_dax:
    """``dev_dax_probe``: map the range (``devm_memremap_pages``) with the era's pgmap type.
    Kernel: drivers/dax/device.c, v4.5+."""
    dax = dev_dax(k, nr_pages, align_order, start_pfn)
    dax.drv.probe()
    return dax


def dev_dax_huge_fault(k, vmf) -> int:
    """``dev_dax_huge_fault``: map the ``align``-sized page containing the address whole.
    Kernel: drivers/dax/device.c, v4.5+."""
    vma = vmf.vma
    dax = vma.vm_file
    order = dax.align_order
    pgoff = linear_page_index(vma, vmf.address)
    first = pgoff & ~((1 << order) - 1)
    start_pfn, nr = dax.pgmap.ranges[0]
    if first + (1 << order) > nr:
        return VM_FAULT_SIGBUS
    base = vma.vm_start + ((first - vma.vm_pgoff) << PAGE_SHIFT)
    if base < vma.vm_start or base + ((1 << order) << PAGE_SHIFT) > vma.vm_end:
        return VM_FAULT_SIGBUS                  # the VMA cannot hold an aligned mapping
    head = k.pfn_to_page(start_pfn + first)
    k.dev_dax_insert(vma, base, head, order, bool(vmf.flags & FAULT_FLAG_WRITE))
    return VM_FAULT_NOPAGE


def dev_dax_insert(k, vma, base: int, head, order: int, write: bool) -> None:
    """Before v6.15: ``vmf_insert_mixed`` (order 0) / ``vmf_insert_pfn_pmd``/``_pud``: devmap
    entries for every page of the mapping, no reference, no mapcount.

    Kernel: drivers/dax/device.c, v4.5+."""
    mm = vma.vm_mm
    pt, _ = mm.pte(base, alloc=True)
    pt.ptl.lock("insert_pfn_pmd" if order else "insert_pfn")
    for i in range(1 << order):
        page = k.pfn_to_page(head.pfn + i)
        _, v = mm.pte(base + (i << PAGE_SHIFT), alloc=True)
        if v.get("pte_none") is None:
            v.set(Pte(PTE_PRESENT, page, write, write, devmap=True, huge=order), "set_pmd_at(pmd_mkdevmap)")
    pt.ptl.unlock("insert_pfn_pmd" if order else "insert_pfn")


FUNCTIONS = (dev_dax_probe, dev_dax_huge_fault, dev_dax_insert)
