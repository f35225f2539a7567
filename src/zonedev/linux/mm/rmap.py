"""Reverse mapping (mm/rmap.c): ``_mapcount`` and the anon rmap walk.

``_mapcount`` is kept as the kernel keeps it for small pages: -1 when unmapped, +1 per PTE
mapping a present page, a device-private entry or a device-exclusive entry (v5.14+: the
exclusive entry keeps the mapping's rmap and reference); a migration entry holds neither.
The zero page is never counted (``vm_normal_page`` is NULL for it).

The anon walk (``rmap_walk_anon``) visits every VMA of every mm linked to the page's
``anon_vma`` and computes the address from ``page->index`` and ``vma->vm_pgoff``, as
``vma_address()`` does.
"""

from __future__ import annotations

from .mmap import (PAGE_SHIFT, PAGE_SIZE, PTE_DEVICE_EXCLUSIVE, PTE_DEVICE_PRIVATE, PTE_MIGRATION,
                   PTE_PRESENT, Pte, linear_page_index)
from .mmu_notifier import MMU_NOTIFY_CLEAR, MMU_NOTIFY_EXCLUSIVE, mmu_notifier_range


def _mapcount_add(k, page, n: int, func: str) -> int:
    new = page._mapcount.add_return(n, func)
    k.world.event(func, page.pfn, "_mapcount", new - n, new)
    if new < -1:
        k.world.violate("mapcount_underflow", "BUG: Bad page map: mapcount underflow", page.pfn, func)
    return new


def page_add_new_anon_rmap(k, page, vma, address: int) -> None:
    """``page_add_new_anon_rmap()`` / ``folio_add_new_anon_rmap()``: first mapping of a new anon
    page: mapcount 0 (one mapping), ``mapping`` = the VMA's anon_vma, ``index``.

    Kernel: mm/rmap.c, v4.5+."""
    old = page._mapcount.set(0, "page_add_new_anon_rmap")
    k.world.event("page_add_new_anon_rmap", page.pfn, "_mapcount", old, 0)
    k.set_page_field(page, "mapping", vma.anon_vma, "__page_set_anon_rmap")
    k.set_page_field(page, "index", linear_page_index(vma, address), "__page_set_anon_rmap")


def page_add_anon_rmap(k, page, vma=None, address: int = 0) -> None:
    """``page_add_anon_rmap()``: another PTE maps an existing anon page (migration restore).
    Kernel: mm/rmap.c, v4.5+."""
    _mapcount_add(k, page, 1, "page_add_anon_rmap")


def page_add_file_rmap(k, page, vma=None) -> None:
    """``page_add_file_rmap()``: a PTE maps a page-cache page: ``_mapcount`` +1. Kernel: mm/rmap.c,
    v4.5+."""
    _mapcount_add(k, page, 1, "page_add_file_rmap")


def page_dup_rmap(k, page) -> None:
    """``page_dup_rmap()``: fork copied a PTE (copy_present_pte / copy_nonpresent_pte).
    Kernel: mm/rmap.c, v4.5+."""
    _mapcount_add(k, page, 1, "page_dup_rmap")


def page_remove_rmap(k, page, vma=None) -> None:
    """``page_remove_rmap()``: a PTE stops mapping the page: ``_mapcount`` -1. Kernel: mm/rmap.c,
    v4.5+."""
    _mapcount_add(k, page, -1, "page_remove_rmap")


def rmap_walk_anon(k, page, visit) -> None:
    """Call ``visit(vma, address)`` for every VMA that may map anon ``page``; stop when it returns
    False.

    Kernel: mm/rmap.c, v4.5+."""
    av = page.mapping.get("page_anon_vma")
    if av is None or not getattr(av, "anon", False):
        return
    index = page.index.get("vma_address")
    for mm in av.mms.get("anon_vma_interval_tree_foreach"):
        for vma in mm.vmas.get("anon_vma_interval_tree_foreach"):
            if vma.anon_vma is not av:
                continue
            addr = vma.vm_start + ((index - vma.vm_pgoff) << PAGE_SHIFT)
            if vma.vm_start <= addr < vma.vm_end:
                if visit(vma, addr) is False:
                    return


def try_to_migrate(k, page, flags: int = 0) -> None:
    """``try_to_migrate()`` / ``try_to_migrate_one()`` (v5.14+; ``try_to_unmap(TTU_MIGRATION)``
    before): replace every PTE mapping ``page`` (present, device-private) with a migration
    entry, dropping its rmap and reference.  The caller holds the page lock and a reference.

    Kernel: mm/rmap.c, v5.14+."""
    def one(vma, addr):
        mm = vma.vm_mm
        pt = mm.pgtable(addr)
        if pt is None:
            return True
        rng = mmu_notifier_range(MMU_NOTIFY_CLEAR, mm, addr, addr + PAGE_SIZE, vma=vma)
        k.mmu_notifier_invalidate_range_start(rng)
        pt.ptl.lock("page_vma_mapped_walk")
        v = pt.pte(addr)
        pte = v.get("page_vma_mapped_walk")
        if pte is not None and pte.page is page and pte.kind in (PTE_PRESENT, PTE_DEVICE_PRIVATE) and pte.huge:
            # set_pmd_migration_entry (v6.19 65edfda6f3f2: device-private PMDs too)
            k.set_pmd_entries(pt, addr, PTE_MIGRATION, page, pte.write, "set_pmd_migration_entry")
            k.page_remove_rmap(page, vma)
            k.put_page(page)
        elif pte is not None and pte.page is page and pte.kind in (PTE_PRESENT, PTE_DEVICE_PRIVATE):
            v.set(Pte(PTE_MIGRATION, page, pte.write), "set_pte_at(migration entry)")
            k.page_remove_rmap(page, vma)
            k.put_page(page)
        pt.ptl.unlock("page_vma_mapped_walk_done")
        k.mmu_notifier_invalidate_range_end(rng)
        return True
    k.rmap_walk_anon(page, one)


def remove_migration_ptes(k, src, dst, locked: bool = False) -> None:
    """``remove_migration_ptes()`` / ``remove_migration_pte()``: every migration entry for
    ``src`` becomes a mapping of ``dst`` -- a device-private entry if ``dst`` is device-private,
    a present PTE otherwise -- taking a reference and an rmap on ``dst``.

    Kernel: mm/migrate.c, v4.5+."""
    def one(vma, addr):
        mm = vma.vm_mm
        pt = mm.pgtable(addr)
        if pt is None:
            return True
        pt.ptl.lock("page_vma_mapped_walk")
        v = pt.pte(addr)
        pte = v.get("page_vma_mapped_walk")
        if pte is not None and pte.kind == PTE_MIGRATION and pte.page is src and pte.huge:
            # remove_migration_pmd (v6.19 65edfda6f3f2 / a30b48bf1b24: a device-private PMD for a
            # device-private folio)
            k.get_page(dst)
            k.page_add_anon_rmap(dst, vma, addr)
            k.set_pmd_entries(pt, addr, PTE_DEVICE_PRIVATE if k.is_device_private_page(dst) else PTE_PRESENT,
                              dst, pte.write, "set_pmd_at")
        elif pte is not None and pte.kind == PTE_MIGRATION and pte.page is src:
            k.get_page(dst)
            if k.is_device_private_page(dst):
                new = Pte(PTE_DEVICE_PRIVATE, dst, pte.write)
            else:
                new = Pte(PTE_PRESENT, dst, pte.write, pte.write)
            if k.PageAnon(dst):
                k.page_add_anon_rmap(dst, vma, addr)
            else:
                k.page_add_file_rmap(dst, vma)
            v.set(new, "set_pte_at")
        pt.ptl.unlock("page_vma_mapped_walk_done")
        return True
    k.rmap_walk_anon(src, one)


def make_device_exclusive(k, mm, addr: int, owner, fault_folio=None):
    """``make_device_exclusive()`` (mm/rmap.c, v6.15 four-argument form; v5.14-v6.14 had
    ``make_device_exclusive_range`` with the same effect per page).

    GUP the page writable (FOLL_GET|FOLL_WRITE|FOLL_SPLIT_PMD: breaks COW), lock it, invalidate
    the address with MMU_NOTIFY_EXCLUSIVE (owner ``owner``), and replace the present PTE with a
    device-exclusive entry that keeps the mapping's rmap and reference.  Returns the page,
    locked and with the GUP reference, or raises ``OSError``.
    """
    import errno as _e
    from .gup_user import FOLL_GET, FOLL_SPLIT_PMD, FOLL_WRITE
    from .mmap import err
    pages = k.get_user_pages_remote(mm, addr, 1, FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD, locked=True)
    page = pages[0]
    if not k.PageAnon(page):
        k.put_page(page)
        raise err(_e.EOPNOTSUPP, "make_device_exclusive: not anonymous")
    k.lock_page(page)
    vma = None
    from .mmap import vma_lookup
    vma = vma_lookup(mm, addr)
    rng = mmu_notifier_range(MMU_NOTIFY_EXCLUSIVE, mm, addr, addr + PAGE_SIZE, vma=vma, owner=owner)
    k.mmu_notifier_invalidate_range_start(rng)
    pt = mm.pgtable(addr)
    pt.ptl.lock("pte_offset_map_lock")
    v = pt.pte(addr)
    pte = v.get("ptep_get")
    ok = pte is not None and pte.kind == PTE_PRESENT and pte.page is page and pte.write
    if ok:
        v.set(Pte(PTE_DEVICE_EXCLUSIVE, page, True), "set_pte_at(device exclusive entry)")
    pt.ptl.unlock("pte_unmap_unlock")
    k.mmu_notifier_invalidate_range_end(rng)
    if not ok:
        k.unlock_page(page)
        k.put_page(page)
        raise err(_e.EBUSY, "make_device_exclusive: PTE changed")
    return page


def restore_exclusive_pte(k, vma, page, addr: int, ptev, pte) -> None:
    """``restore_exclusive_pte()`` (mm/memory.c, v5.14+): the device-exclusive entry becomes the
    present PTE again; the rmap and reference it kept carry over."""
    ptev.set(Pte(PTE_PRESENT, page, pte.write, pte.write), "set_pte_at(restore_exclusive_pte)")


FUNCTIONS = (page_add_new_anon_rmap, page_add_anon_rmap, page_add_file_rmap, page_dup_rmap,
             page_remove_rmap, rmap_walk_anon, try_to_migrate, remove_migration_ptes,
             make_device_exclusive, restore_exclusive_pte)
