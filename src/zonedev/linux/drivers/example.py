"""A minimal ZONE_DEVICE driver for every pgmap type, written the way each era's drivers were.

Not a kernel file: the smallest driver that exercises the core the way real ones did, for the
tests and ``zonedev lifecycle`` (the HMM test driver, dmirror, is ``linux/lib/test_hmm.py``).

=================  =========================================================================
type               what the driver does
=================  =========================================================================
private / public   (nouveau, test_hmm) a free list of device pages.  Map: ``hmm_devmem_add``
/ coherent         (v4.14-v5.2) or ``memremap_pages`` (v5.3+).  Allocate: ``get_page`` +
                   ``lock_page`` (v4.14-v5.17), ``lock_page`` (v5.18-v6.0),
                   ``zone_device_page_init`` (v6.1+); then ``unlock_page`` (migration done).
                   Free: the last ``put_page``; ``page_free`` puts the page back on the list.
fsdax              (pmem) pages of a file: ``dax_associate_entry`` (v6.15+: the mapping takes a
                   page reference, 0 -> 1, modelled as ``page_ref_inc`` charged to
                   ``vmf_insert_page_mkwrite``; how insert_page avoids folio_get's 0 check is
                   INFERRED); free = unmap (v6.15+) and ``dax_disassociate_entry``.
                   ``page_free`` (v4.18-v5.5) is pmem's ``wake_up_var``.
generic            (device-dax) ``vmf_insert_*`` (v6.15+: takes a page reference).
p2pdma             ``pci_alloc_p2pmem``/``pci_free_p2pmem`` (pool; one pgmap reference per
                   allocation); v6.2+ ``p2pmem_alloc_mmap`` and the unmap ``put_page``, whose
                   final put runs ``p2pdma_page_free``.
=================  =========================================================================

The pgmap reference before v5.3 is the driver's own (pmem's queue counter, devdax's and
p2pdma's percpu_refs); teardown is the era's: the driver kills, ``devm_memremap_pages_release``
runs, the driver waits and exits (v4.5-v4.20); ``kill`` is a pgmap callback (v5.0); ``kill`` and
``cleanup`` are callbacks (v5.2); ``memunmap_pages`` (v5.3+).

``callbacks`` lists the driver callbacks the kernel ran, in order, as ``(name, pfn)``.
"""

from __future__ import annotations

from ...sync import Var
from ..include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_FS_DAX, MEMORY_DEVICE_PCI_P2PDMA,
                                MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, dev_pagemap,
                                dev_pagemap_ops)

TYPES = ("private", "public", "coherent", "fsdax", "generic", "p2pdma")
_FREELIST = (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC, MEMORY_DEVICE_COHERENT)


class UnknownType(ValueError):
    """The kernel has no pgmap type of that name."""


class ExampleDriver:
    def __init__(self, k, kind: str = "private", nr_pages: int = 4, start_pfn: int = 0x100000,
                 vmemmap_shift: int = 0, name: str | None = None) -> None:
        names = k.fact("type_names") or {}
        if kind not in names:
            raise UnknownType(f"{k.name} has no {kind!r} pgmap type (it has: {', '.join(sorted(names))})")
        self.k = k
        self.kind = kind
        self.type = names[kind]
        self.callbacks: list[tuple[str, int | None]] = []
        ops = dev_pagemap_ops()
        t = self.type
        if t in _FREELIST:
            if k.fact("folio_free"):
                ops.folio_free = self._page_free
            else:
                ops.page_free = self._page_free
            ops.migrate_to_ram = self._migrate_to_ram
            ops.folio_split = self._folio_split if k.fact("folio_free") else None
        elif t == MEMORY_DEVICE_FS_DAX and k.has("dax_associate_entry") and not k.has("free_devmap_managed_page") \
                and not k.has("free_zone_device_page") and not k.has("free_zone_device_folio"):
            ops.page_free = self._pmem_page_free          # v4.18-v5.5: pmem_pagemap_page_free
        elif t == MEMORY_DEVICE_PCI_P2PDMA and k.has("p2pdma_page_free"):
            ops.page_free = self._p2pdma_page_free
        self.pgmap = dev_pagemap(t, nr_pages, start_pfn, ops=ops, owner=self, vmemmap_shift=vmemmap_shift,
                                 name=name or f"{kind}@{start_pfn:#x}")
        self.free = Var((), f"{self.pgmap.name} driver free list")
        self.mapping = f"{kind}-file"

    # --- callbacks ---------------------------------------------------------------------------

    def _page_free(self, page, *data) -> None:
        name = "folio_free" if self.k.fact("folio_free") else "page_free"
        self.callbacks.append((name, page.pfn))
        self.free.set(self.free.get("driver page_free") + (page.pfn,), "driver page_free")

    def _pmem_page_free(self, page, *data) -> None:
        self.callbacks.append(("page_free", page.pfn))
        self.k.wake_up_var_refcount(page, self.k.fact("fsdax_page_free") or "pmem_pagemap_page_free")

    def _p2pdma_page_free(self, page, *data) -> None:
        self.callbacks.append(("page_free", page.pfn))
        self.k.p2pdma_page_free(page)

    def _migrate_to_ram(self, vmf) -> int:
        self.callbacks.append(("migrate_to_ram", None))
        return 0

    def _folio_split(self, head, tail) -> None:
        self.callbacks.append(("folio_split", head.pfn))

    def _kill(self, ref_or_pgmap) -> None:
        self.callbacks.append(("kill", None))
        self.pgmap.ref.kill("percpu_ref_kill")

    def _cleanup(self, ref_or_pgmap) -> None:
        self.callbacks.append(("cleanup", None))
        self._wait_and_exit()

    def _wait_and_exit(self) -> None:
        self.pgmap.done.wait_for_completion("wait_for_completion")
        self.k.percpu_ref_exit_pgmap(self.pgmap, "percpu_ref_exit")

    # --- probe / remove ------------------------------------------------------------------------

    def _hmm(self) -> bool:
        return self.type in (MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC) and self.k.has("hmm_devmem_add")

    def probe(self) -> str:
        """Map the device memory; returns the kernel call that did it."""
        k, pgmap = self.k, self.pgmap
        if k.has("memunmap_pages"):
            k.memremap_pages(pgmap)
            op = "memremap_pages"
        elif self._hmm():
            k.hmm_devmem_add(pgmap)
            op = "hmm_devmem_add"
        else:
            k.pgmap_percpu_ref(pgmap, "percpu_ref_release")      # the driver's own ref
            if k.has("dev_pagemap_kill"):
                pgmap.ops.kill = self._kill
            if k.has("dev_pagemap_cleanup"):
                pgmap.ops.cleanup = self._cleanup
            k.devm_memremap_pages(pgmap)
            op = "devm_memremap_pages"
        if self.type in _FREELIST or self.type == MEMORY_DEVICE_PCI_P2PDMA:
            step = 1 << pgmap.vmemmap_shift
            self.free.set(tuple(p.pfn for p in pgmap.pages[::step]), "driver probe")
        return op

    def remove(self) -> str:
        """Tear the device memory down; returns the kernel call that did it."""
        k, pgmap = self.k, self.pgmap
        if k.has("memunmap_pages"):
            k.memunmap_pages(pgmap)
            return "memunmap_pages"
        if self._hmm():
            k.hmm_devmem_remove(pgmap)
            return "hmm_devmem_remove"
        if k.has("dev_pagemap_cleanup"):            # v5.2: the release does everything
            k.devm_memremap_pages_release(pgmap)
        elif k.has("dev_pagemap_kill"):             # v5.0: release kills; the driver waits after
            k.devm_memremap_pages_release(pgmap)
            self._wait_and_exit()
        else:                                       # v4.5-v4.20: the driver kills and waits around release
            pgmap.ref.kill("percpu_ref_kill")
            k.devm_memremap_pages_release(pgmap)
            self._wait_and_exit()
        return "devm_memremap_pages_release"

    # --- pages -------------------------------------------------------------------------------

    def take_free_pfn(self) -> int:
        free = self.free.get("driver alloc")
        if not free:
            raise RuntimeError(f"{self.pgmap.name}: no free device page")
        self.free.set(free[1:], "driver alloc")
        return free[0]

    def alloc(self):
        """Allocate a page the era's way; returns ``(page, op)``."""
        k, t = self.k, self.type
        if t in _FREELIST:
            page = k.pfn_to_page(self.take_free_pfn())
            how = k.fact("zd_alloc")
            if how == "zone_device_page_init":
                k.zone_device_page_init(page)
            elif how == "lock_page":
                k.lock_page(page)
            else:
                k.get_page(page)
                k.lock_page(page)
            k.unlock_page(page)
            return page, how
        if t == MEMORY_DEVICE_PCI_P2PDMA:
            page = k.pfn_to_page(self.take_free_pfn())
            if k.fact("p2pdma_mmap"):
                k.p2pmem_alloc_mmap(self.pgmap, page)
                return page, "p2pmem_alloc_mmap"
            k.pci_alloc_p2pmem(self.pgmap, page)
            return page, "pci_alloc_p2pmem"
        page = self.pgmap.pages[0]
        if t == MEMORY_DEVICE_FS_DAX:
            k.dax_associate_entry(page, self.mapping, 0)
            if k.fact("dax_mapping_takes_ref"):
                k.page_ref_inc(page, "vmf_insert_page_mkwrite")
                return page, "dax_associate_entry+vmf_insert_page_mkwrite"
            return page, "dax_associate_entry"
        if k.fact("dax_mapping_takes_ref"):           # device-dax, v6.15+
            k.page_ref_inc(page, "vmf_insert_page_mkwrite")
            return page, "vmf_insert_page_mkwrite"
        return page, "vmf_insert_mixed"

    def release(self, page) -> str:
        """Drop what ``alloc`` took (the final put of an allocated page); returns the op."""
        k, t = self.k, self.type
        if t in _FREELIST:
            k.put_page(page)
            return "put_page"
        if t == MEMORY_DEVICE_PCI_P2PDMA:
            if k.fact("p2pdma_mmap"):
                k.put_page(page)                  # zap_pte_range
                return "put_page"
            k.pci_free_p2pmem(self.pgmap, page)
            self.free.set(self.free.get("driver free") + (page.pfn,), "driver free")
            return "pci_free_p2pmem"
        if k.fact("dax_mapping_takes_ref"):
            k.put_page(page)                      # zap_pte_range
            if t == MEMORY_DEVICE_FS_DAX:
                k.dax_disassociate_entry(page)
                return "put_page+dax_disassociate_entry"
            return "put_page"
        if t == MEMORY_DEVICE_FS_DAX:
            k.dax_disassociate_entry(page)
            return "dax_disassociate_entry"
        return "zap_pte_range"
