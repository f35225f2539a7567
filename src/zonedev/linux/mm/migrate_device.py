"""Device memory migration (mm/migrate_device.c, v6.0+; mm/migrate.c before):
``migrate_vma_setup`` (collect + unmap), ``migrate_vma_pages``, ``migrate_vma_finalize``,
``migrate_device_range``/``migrate_device_pages``/``migrate_device_finalize`` (v6.1,
e778406b40db) and ``migrate_device_coherent_page`` (v6.0).

The model follows the v6.1 code shape for every era (v4.14-v5.3 had one ``migrate_vma()``
call with driver callbacks doing the same steps).  Era differences that change refcounts:

* ``folio_migrate_mapping`` (``migrate_page_move_mapping``) expects one extra reference on a
  device-private source page while free device pages sit at refcount 1 with an elevated count
  (v4.14-v5.17: ``expected_page_refs`` adds ``is_device_private_page``), none after
  27674ef6c73f (v5.18) -- read from the core's ``zd_alloc`` fact;
* ``fault_page`` (16ce101db85d, v6.1): the faulting thread's reference is expected
  (``migrate_vma_fault_extra``); installed by ``patches/c_16ce101db85d.py``.

The source pfn arrays hold ints: ``pfn << MIGRATE_PFN_SHIFT | flags`` as in the kernel.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from .mmap import (PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PTE_DEVICE_PRIVATE, PTE_MIGRATION, PTE_PRESENT,
                   VM_HUGETLB, VM_SPECIAL, VM_WRITE, Pte, err, vma_is_anonymous)
from .mmu_notifier import MMU_NOTIFY_MIGRATE, mmu_notifier_range

MIGRATE_PFN_VALID = 1 << 0
MIGRATE_PFN_MIGRATE = 1 << 1
MIGRATE_PFN_WRITE = 1 << 3
MIGRATE_PFN_COMPOUND = 1 << 4                   # v6.19 (a30b48bf1b24): a PMD-sized folio
MIGRATE_PFN_SHIFT = 6

MIGRATE_VMA_SELECT_SYSTEM = 1 << 0
MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1
MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2     # v6.0
MIGRATE_VMA_SELECT_COMPOUND = 1 << 3            # v6.19 (device-private THP series)


def migrate_pfn(pfn: int) -> int:
    return (pfn << MIGRATE_PFN_SHIFT) | MIGRATE_PFN_VALID


def migrate_pfn_to_page(k, mpfn: int):
    if not mpfn & MIGRATE_PFN_VALID:
        return None
    return k.pfn_to_page(mpfn >> MIGRATE_PFN_SHIFT)


@dataclass
class migrate_vma:
    vma: Any = None
    start: int = 0
    end: int = 0
    src: list = field(default_factory=list)
    dst: list = field(default_factory=list)
    npages: int = 0
    cpages: int = 0
    pgmap_owner: Any = None
    flags: int = 0
    fault_page: Any = None


def migrate_vma_collect(k, migrate: migrate_vma) -> None:
    """``migrate_vma_collect()`` + ``migrate_vma_collect_pmd()``: inside an MMU_NOTIFY_MIGRATE
    invalidation (owner = ``pgmap_owner``), walk the PTEs under their PTL; select pages; take a
    reference; if the page can be trylocked, replace the PTE with a migration entry and drop
    the mapping's rmap and reference.

    Kernel: mm/migrate_device.c, v6.1."""
    vma = migrate.vma
    mm = vma.vm_mm
    rng = mmu_notifier_range(MMU_NOTIFY_MIGRATE, mm, migrate.start, migrate.end, vma=vma,
                             owner=migrate.pgmap_owner)
    k.mmu_notifier_invalidate_range_start(rng)
    for addr in range(migrate.start, migrate.end, PAGE_SIZE):
        k.migrate_vma_collect_split_thp(migrate, vma, addr)
        k.migrate_vma_collect_pte(migrate, vma, addr)
    k.mmu_notifier_invalidate_range_end(rng)
    migrate.end = migrate.start + (migrate.npages << PAGE_SHIFT)


def migrate_vma_collect_split_thp(k, migrate: migrate_vma, vma, addr: int) -> None:
    """The ``pmd_trans_huge`` branch of ``migrate_vma_collect_pmd()`` before v6.19: a huge zero
    PMD is split (``split_huge_pmd``); a THP is referenced, trylocked and split to base pages
    (``split_huge_page``), then collected PTE by PTE.  A THP that cannot be locked stays
    PMD-mapped and its pages are refused (``migrate_vma_check_page``: PageCompound).

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    e = vma.vm_mm.peek_pte(addr)
    if e is None or not e.huge or e.devmap or e.kind != PTE_PRESENT:
        return
    folio = e.page.head
    if k.is_huge_zero_page(folio):
        k.split_huge_pmd_address(vma, addr)
        return
    k.get_page(folio)
    if not k.trylock_page(folio):
        k.put_page(folio)
        return
    k.split_huge_pmd_address(vma, addr)
    k.split_folio(folio, lock_at=folio)
    k.unlock_page(folio)
    k.put_page(folio)


def migrate_vma_collect_pte(k, migrate: migrate_vma, vma, addr: int) -> None:
    """One PTE of ``migrate_vma_collect_pmd()`` (its loop body; a missing PTE page is
    ``migrate_vma_collect_hole``): append the entry's source pfn.

    Kernel: mm/migrate_device.c, v6.1."""
    mm = vma.vm_mm
    pt = mm.pgtable(addr)
    mpfn = 0
    if pt is None:                                   # migrate_vma_collect_hole
        if vma_is_anonymous(vma):
            mpfn = MIGRATE_PFN_MIGRATE
            migrate.cpages += 1
        migrate.src.append(mpfn)
        migrate.dst.append(0)
        migrate.npages += 1
        return
    pt.ptl.lock("pte_offset_map_lock")
    v = pt.pte(addr)
    pte = v.get("ptep_get")
    page = None
    if pte is None:
        if vma_is_anonymous(vma):
            mpfn = MIGRATE_PFN_MIGRATE
            migrate.cpages += 1
    elif pte.kind != PTE_PRESENT:
        if pte.kind == PTE_DEVICE_PRIVATE:
            p = pte.page
            if migrate.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE and p.pgmap.owner is migrate.pgmap_owner:
                page = p
                mpfn = migrate_pfn(p.pfn) | MIGRATE_PFN_MIGRATE | (MIGRATE_PFN_WRITE if pte.write else 0)
    else:
        if k.is_zero_page(pte.page) and migrate.flags & MIGRATE_VMA_SELECT_SYSTEM:
            mpfn = MIGRATE_PFN_MIGRATE
            migrate.cpages += 1
        else:
            p = k.vm_normal_page(vma, pte)
            skip = False
            if p is not None and not k.is_zone_device_page(p) and not migrate.flags & MIGRATE_VMA_SELECT_SYSTEM:
                skip = True
            elif p is not None and k.is_device_coherent_page(p):
                if not migrate.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT or \
                        p.pgmap.owner is not migrate.pgmap_owner:
                    skip = True
            if not skip and p is not None:
                page = p
                mpfn = migrate_pfn(p.pfn) | MIGRATE_PFN_MIGRATE | (MIGRATE_PFN_WRITE if pte.write else 0)
    if page is not None and page.mapping.get("page->mapping") is None:
        page, mpfn = None, 0
    if page is not None:
        k.get_page(page)
        if k.migrate_vma_trylock(migrate, page):
            v.set(Pte(PTE_MIGRATION, page, bool(mpfn & MIGRATE_PFN_WRITE)), "set_pte_at(migration entry)")
            migrate.cpages += 1
            k.page_remove_rmap(page, vma)
            k.put_page(page)
        else:
            k.put_page(page)
            mpfn = 0
    pt.ptl.unlock("pte_unmap_unlock")
    migrate.src.append(mpfn)
    migrate.dst.append(0)
    migrate.npages += 1


def migrate_vma_trylock(k, migrate, page) -> bool:
    """``trylock_page(page)`` in collect (the v6.1 form; later kernels skip it for a fault page
    that ``do_swap_page`` already locked).

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    return k.trylock_page(page)


def migrate_device_unlock_src(k, page, fault_page) -> None:
    """``folio_unlock(src)`` in ``migrate_device_unmap``'s restore loop and in
    ``__migrate_device_finalize``: before 1afaeb8293c9 (v6.15) collect trylocked the fault page
    like any other, so it is unlocked here like any other.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    k.unlock_page(page)


def migrate_vma_fault_extra(k, migrate, page) -> int:
    """References on ``page`` the caller of ``migrate_vma_setup`` holds besides collect's: none
    before 16ce101db85d.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    return 0


def migrate_vma_check_page(k, page, fault_page=None) -> bool:
    """``migrate_vma_check_page()``: not pinned -- references beyond the expected ones must be
    mappings.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    extra = 1 + (k.migrate_vma_fault_extra(None, page) if fault_page is page else 0)
    if page.order:
        return False
    if k.is_zone_device_page(page):
        extra += 1                    # "Page from ZONE_DEVICE have one extra reference"
    m = page.mapping.get("page_mapping")
    if m is not None and not getattr(m, "anon", False):
        extra += 1
    return page._refcount.read("page_count") - extra <= k.page_mapcount(page)


def migrate_device_unmap(k, src: list, npages: int, fault_page=None) -> int:
    """``migrate_device_unmap()`` (``migrate_vma_unmap`` before v6.1): unmap remaining mappings
    with ``try_to_migrate``; pages still mapped or pinned are restored and dropped.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    unmapped = 0
    restore = 0
    for i in range(npages):
        page = migrate_pfn_to_page(k, src[i])
        if page is None:
            if src[i] & MIGRATE_PFN_MIGRATE:
                unmapped += 1
            continue
        # a system page is isolated from the LRU here; the model keeps collect's reference as
        # the isolation reference (the kernel takes one and drops the other)
        if k.page_mapcount(page) > 0:
            k.try_to_migrate(page)
        if k.page_mapcount(page) > 0 or not k.migrate_vma_check_page(page, fault_page):
            src[i] &= ~MIGRATE_PFN_MIGRATE
            restore += 1
            continue
        unmapped += 1
    for i in range(npages):
        if not restore:
            break
        page = migrate_pfn_to_page(k, src[i])
        if page is None or src[i] & MIGRATE_PFN_MIGRATE:
            continue
        k.remove_migration_ptes(page, page)
        src[i] = 0
        k.migrate_device_unlock_src(page, fault_page)
        k.put_page(page)
        restore -= 1
    return unmapped


def migrate_vma_setup(k, args: migrate_vma) -> int:
    """``migrate_vma_setup()``: validate, collect, unmap.  Returns 0 or raises ``OSError``
    (-EINVAL for a missing/special VMA or a range outside it).

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    nr = (args.end - args.start) >> PAGE_SHIFT
    args.start &= PAGE_MASK
    args.end &= PAGE_MASK
    vma = args.vma
    if vma is None or vma.vm_flags & (VM_HUGETLB | VM_SPECIAL):
        raise err(errno.EINVAL, "migrate_vma_setup: bad vma")
    if nr <= 0:
        raise err(errno.EINVAL, "migrate_vma_setup: empty range")
    if args.start < vma.vm_start or args.start >= vma.vm_end:
        raise err(errno.EINVAL, "migrate_vma_setup: start outside vma")
    if args.end <= vma.vm_start or args.end > vma.vm_end:
        raise err(errno.EINVAL, "migrate_vma_setup: end outside vma")
    k.migrate_vma_check_fault_page(args)
    args.src = []
    args.dst = []
    args.cpages = 0
    args.npages = 0
    k.migrate_vma_collect(args)
    if args.cpages:
        args.cpages = k.migrate_device_unmap(args.src, args.npages, args.fault_page)
    return 0


def migrate_vma_check_fault_page(k, args) -> None:
    """Before 16ce101db85d there is no ``fault_page``.
    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    args.fault_page = None


def migrate_vma_insert_page(k, migrate: migrate_vma, addr: int, page, i: int) -> None:
    """``migrate_vma_insert_page()``: map a new (device) page where there was none or the zero
    page; like ``do_anonymous_page`` with a ZONE_DEVICE page.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    vma = migrate.vma
    mm = vma.vm_mm
    if not vma_is_anonymous(vma):
        migrate.src[i] &= ~MIGRATE_PFN_MIGRATE
        return
    if k.is_device_private_page(page):
        entry = Pte(PTE_DEVICE_PRIVATE, page, bool(vma.vm_flags & VM_WRITE))
    else:
        if k.is_zone_device_page(page) and not k.is_device_coherent_page(page):
            migrate.src[i] &= ~MIGRATE_PFN_MIGRATE
            return
        w = bool(vma.vm_flags & VM_WRITE)
        entry = Pte(PTE_PRESENT, page, w, w)
    pt, v = mm.pte(addr, alloc=True)
    pt.ptl.lock("pte_offset_map_lock")
    orig = v.get("ptep_get")
    if orig is not None and not (orig.kind == PTE_PRESENT and k.is_zero_page(orig.page)):
        pt.ptl.unlock("pte_unmap_unlock")
        migrate.src[i] &= ~MIGRATE_PFN_MIGRATE
        return
    k.page_add_new_anon_rmap(page, vma, addr)
    k.get_page(page)
    v.set(entry, "set_pte_at")
    pt.ptl.unlock("pte_unmap_unlock")
    migrate.src[i] = MIGRATE_PFN_MIGRATE


def folio_migrate_mapping(k, mapping, newpage, page, extra_count: int) -> int:
    """``folio_migrate_mapping()`` / ``migrate_page_move_mapping()`` for a page without a
    mapping (anonymous, not in swap cache): the refcount must be exactly the expected one.

    Kernel: mm/migrate.c, v5.16+ (migrate_page_move_mapping before)."""
    expected = 1 + extra_count
    if k.fact("zd_alloc") == "get_page+lock_page" and k.is_device_private_page(page):
        expected += 1     # v4.14-v5.17 expected_page_refs(): device private pages' extra ref
    if page._refcount.read("folio_ref_count") != expected:
        return -errno.EAGAIN
    k.set_page_field(newpage, "index", page.index.get("folio->index"), "folio_migrate_mapping")
    k.set_page_field(newpage, "mapping", page.mapping.get("folio->mapping"), "folio_migrate_mapping")
    return 0


def __migrate_device_pages(k, src: list, dst: list, npages: int, migrate: migrate_vma | None) -> None:
    notified = None
    for i in range(npages):
        newpage = migrate_pfn_to_page(k, dst[i])
        page = migrate_pfn_to_page(k, src[i])
        if newpage is None:
            src[i] &= ~MIGRATE_PFN_MIGRATE
            continue
        if page is None:
            if not src[i] & MIGRATE_PFN_MIGRATE:
                continue
            addr = migrate.start + i * PAGE_SIZE
            if notified is None:
                notified = mmu_notifier_range(MMU_NOTIFY_MIGRATE, migrate.vma.vm_mm, addr, migrate.end,
                                              vma=migrate.vma, owner=migrate.pgmap_owner)
                k.mmu_notifier_invalidate_range_start(notified)
            k.migrate_vma_insert_page(migrate, addr, newpage, i)
            continue
        mapping = page.mapping.get("folio_mapping")
        if mapping is not None and getattr(mapping, "anon", False):
            mapping = None                       # folio_mapping() is NULL for anon pages
        if k.is_device_private_page(newpage) or k.is_device_coherent_page(newpage):
            if mapping is not None:              # only anonymous memory goes to the device
                src[i] &= ~MIGRATE_PFN_MIGRATE
                continue
        elif k.is_zone_device_page(newpage):
            src[i] &= ~MIGRATE_PFN_MIGRATE
            continue
        if mapping is not None:
            src[i] &= ~MIGRATE_PFN_MIGRATE       # file pages: not modelled (migrate_folio)
            continue
        extra = k.migrate_vma_fault_extra(migrate, page) if migrate is not None and migrate.fault_page is page else 0
        if k.folio_migrate_mapping(None, newpage, page, extra):
            src[i] &= ~MIGRATE_PFN_MIGRATE
    if notified is not None:
        k.mmu_notifier_invalidate_range_end(notified)


def migrate_vma_pages(k, migrate: migrate_vma) -> None:
    """``migrate_vma_pages()``: move struct page metadata to the destination pages.
    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    __migrate_device_pages(k, migrate.src, migrate.dst, migrate.npages, migrate)


def migrate_device_pages(k, src: list, dst: list, npages: int) -> None:
    """``migrate_device_pages()`` (v6.1, e778406b40db).
    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    __migrate_device_pages(k, src, dst, npages, None)


def __migrate_device_finalize(k, src: list, dst: list, npages: int, fault_page=None) -> None:
    for i in range(npages):
        newpage = migrate_pfn_to_page(k, dst[i])
        page = migrate_pfn_to_page(k, src[i])
        if page is None:
            if newpage is not None:
                k.unlock_page(newpage)
                k.put_page(newpage)
            continue
        if not src[i] & MIGRATE_PFN_MIGRATE or newpage is None:
            if newpage is not None:
                k.unlock_page(newpage)
                k.put_page(newpage)
            newpage = page
        k.remove_migration_ptes(page, newpage)
        k.migrate_device_unlock_src(page, fault_page)
        k.put_page(page)
        if newpage is not page:
            k.unlock_page(newpage)
            k.put_page(newpage)


def migrate_vma_finalize(k, migrate: migrate_vma) -> None:
    """``migrate_vma_finalize()``: migration entries become the new (or restored) mappings;
    pages are unlocked and the migration's references dropped -- the old page's last reference
    goes here, which frees a device page through its ``page_free``.

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    __migrate_device_finalize(k, migrate.src, migrate.dst, migrate.npages, migrate.fault_page)


def migrate_device_finalize(k, src: list, dst: list, npages: int) -> None:
    """``migrate_device_finalize()`` (v6.1, e778406b40db): the pfn-based finalize, as
    ``migrate_vma_finalize``. Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    __migrate_device_finalize(k, src, dst, npages, None)


def migrate_device_range(k, src: list, start_pfn: int, npages: int) -> int:
    """``migrate_device_range()`` (v6.1, e778406b40db): collect device pfns by pfn, not by
    address: take a reference on each page that is not free (``get_page_unless_zero``), trylock
    it, then unmap every mapping of it (``try_to_migrate``).

    Kernel: mm/migrate_device.c, v6.1 (mm/migrate.c before v6.0)."""
    src.clear()
    for i in range(npages):
        page = k.pfn_to_page(start_pfn + i)
        if not k.get_page_unless_zero(page):
            src.append(0)
            continue
        if not k.trylock_page(page):
            k.put_page(page)
            src.append(0)
            continue
        src.append(migrate_pfn(page.pfn) | MIGRATE_PFN_MIGRATE)
    k.migrate_device_unmap(src, npages, None)
    return 0


def migrate_device_coherent_page(k, page) -> int:
    """``migrate_device_coherent_page()`` (v6.0, "mm/gup: migrate device coherent pages when
    pinning instead of failing"): the caller's reference stands in for collect's."""
    k.lock_page(page)
    src = [migrate_pfn(page.pfn) | MIGRATE_PFN_MIGRATE]
    k.migrate_device_unmap(src, 1, None)
    if not src[0] & MIGRATE_PFN_MIGRATE:
        return -errno.EBUSY
    dpage = k.alloc_page()
    k.lock_page(dpage)
    dst = [migrate_pfn(dpage.pfn)]
    k.migrate_device_pages(src, dst, 1)
    if src[0] & MIGRATE_PFN_MIGRATE:
        dpage.data.set(page.data.get("copy_highpage"), "copy_highpage")
    k.migrate_device_finalize(src, dst, 1)
    return 0 if src[0] & MIGRATE_PFN_MIGRATE else -errno.EBUSY


FUNCTIONS = (migrate_vma_collect, migrate_vma_collect_split_thp, migrate_vma_collect_pte, migrate_vma_trylock, migrate_device_unlock_src, migrate_vma_fault_extra, migrate_vma_check_page,
             migrate_device_unmap, migrate_vma_setup, migrate_vma_check_fault_page, migrate_vma_insert_page,
             folio_migrate_mapping, migrate_vma_pages, migrate_vma_finalize, migrate_device_pages,
             migrate_device_finalize)
V6_1_FUNCTIONS = (migrate_device_range,)
V6_0_FUNCTIONS = (migrate_device_coherent_page,)
