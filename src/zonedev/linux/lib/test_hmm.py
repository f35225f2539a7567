"""The ``dmirror`` HMM test driver (lib/test_hmm.c, v5.8+ b2ef9f5a5cb3; ``lib/test_hmm_uapi.h``).

Modelled as ``kernel_hmm_selftests.md`` §1 describes it (D1, about v6.15, with the era
differences below):

* devices: minors 0 and 1 ``MEMORY_DEVICE_PRIVATE``; minors 2 and 3 ``MEMORY_DEVICE_COHERENT``
  when the kernel has coherent memory (v6.0+) and the module got SPM addresses (the model
  always gives them); the quirk "minor 2 uses spm_addr_dev1" is kept;
* chunks of ``DEVMEM_CHUNK_SIZE`` (256 MiB = 65,536 pages in the kernel; ``chunk_pages``
  here, 64 by default for speed), one eager chunk at device init; the free list threaded
  through ``page->zone_device_data`` under ``mdevice->lock``; ``calloc``/``cfree``;
* private device pages are backed by a system page hung off ``zone_device_data``
  (``BACKING_PAGE``), whose own ``zone_device_data`` points at the mirror;
* the per-mirror xarray (``pt``) holds page pointers tagged WRITE (3) or ATOMIC (1) and **no
  references**; the interval notifier erases entries, ignoring this device's own
  MMU_NOTIFY_MIGRATE events;
* allocation per era (core fact ``zd_alloc``): ``get_page`` + ``lock_page`` (v5.8-v5.17),
  ``lock_page`` (v5.18-v6.0, 27674ef6c73f), ``zone_device_page_init`` (v6.1+, ef233450898f);
* ioctls READ, WRITE, MIGRATE_TO_DEV (``HMM_DMIRROR_MIGRATE`` before v6.0), MIGRATE_TO_SYS
  (v6.0), SNAPSHOT, EXCLUSIVE and CHECK_EXCLUSIVE (v5.14), RELEASE (v6.1); FLAGS (D2, THP
  allocation failure injection) is not modelled and returns -EINVAL as an unknown command;
* eviction on fd close (744dd97752ef, newest only: ``evict_on_close``).

Errors raise ``OSError`` with the errno the ioctl returns; an ioctl on a closed file gives
EBADF (the VFS has no such fd any more).
"""

from __future__ import annotations

import errno
from typing import Any

from ...sync import Lock, RetryLoop, Var
from ..include.memremap import (MEMORY_DEVICE_COHERENT, MEMORY_DEVICE_PRIVATE, dev_pagemap,
                                dev_pagemap_ops)
from ..mm.hmm import HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, hmm_range
from ..mm.memory import VM_FAULT_SIGBUS
from ..mm.migrate_device import (MIGRATE_PFN_MIGRATE, MIGRATE_PFN_VALID, MIGRATE_PFN_WRITE,
                                 MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
                                 MIGRATE_VMA_SELECT_SYSTEM, migrate_pfn, migrate_pfn_to_page, migrate_vma)
from ..mm.mmap import (next_id, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, VM_MIXEDMAP, VM_READ, VM_WRITE, err, vma_lookup)
from ..mm.mmu_notifier import MMU_NOTIFY_MIGRATE, mmu_interval_notifier

DMIRROR_NDEVICES = 4
DEVMEM_CHUNK_SIZE_PAGES = 65536          # 256 MiB
DMIRROR_BATCH = 64                        # pfns[64] / src_pfns[64] in D1

HMM_DMIRROR_MEMORY_DEVICE_PRIVATE = 1
HMM_DMIRROR_MEMORY_DEVICE_COHERENT = 2

# ioctl numbers (_IOWR('H', nr, struct hmm_dmirror_cmd)); the model passes nr
HMM_DMIRROR_READ = 0x00
HMM_DMIRROR_WRITE = 0x01
HMM_DMIRROR_MIGRATE_TO_DEV = 0x02
HMM_DMIRROR_MIGRATE = HMM_DMIRROR_MIGRATE_TO_DEV      # the pre-v6.0 name
HMM_DMIRROR_MIGRATE_TO_SYS = 0x03
HMM_DMIRROR_SNAPSHOT = 0x04
HMM_DMIRROR_EXCLUSIVE = 0x05
HMM_DMIRROR_CHECK_EXCLUSIVE = 0x06
HMM_DMIRROR_RELEASE = 0x07
HMM_DMIRROR_FLAGS = 0x08

# snapshot bytes (dmirror_mkentry)
HMM_DMIRROR_PROT_ERROR = 0xFF
HMM_DMIRROR_PROT_NONE = 0x00
HMM_DMIRROR_PROT_READ = 0x01
HMM_DMIRROR_PROT_WRITE = 0x02
HMM_DMIRROR_PROT_PMD = 0x04
HMM_DMIRROR_PROT_PUD = 0x08
HMM_DMIRROR_PROT_ZERO = 0x10
HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL = 0x20
HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE = 0x30
HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL = 0x40
HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE = 0x50

DPT_XA_TAG_ATOMIC = 1
DPT_XA_TAG_WRITE = 3


class hmm_dmirror_cmd:
    """``struct hmm_dmirror_cmd``: ``ptr`` is the user buffer (a Python list: ints for data,
    bytes-as-ints for SNAPSHOT)."""

    def __init__(self, addr: int = 0, ptr: list | None = None, npages: int = 0) -> None:
        self.addr = addr
        self.ptr = ptr if ptr is not None else []
        self.npages = npages
        self.cpages = 0
        self.faults = 0

    def copy(self) -> "hmm_dmirror_cmd":
        c = hmm_dmirror_cmd(self.addr, self.ptr, self.npages)
        c.cpages, c.faults = self.cpages, self.faults
        return c


class dmirror_chunk:
    def __init__(self, mdevice, pagemap: dev_pagemap) -> None:
        self.pagemap = pagemap
        self.mdevice = mdevice
        self.remove = Var(False, f"{pagemap.name}.remove")
        # model-only: what the pages and the pgmap ref look like with nothing allocated
        self.idle_ref = None
        self.free_refcount = None

    def _zd_key(self) -> tuple:
        return ("dmirror_chunk", self.pagemap.name)


class dmirror_device:
    def __init__(self, module, minor: int, zone_device_type: int) -> None:
        self.module = module
        self.minor = minor
        self.zone_device_type = zone_device_type
        tag = f"hmm_dmirror{minor}"
        self.name = tag
        self.devmem_lock = Lock(f"{tag}.devmem_lock")
        self.devmem_chunks = Var((), f"{tag}.devmem_chunks")
        self.lock = Lock(f"{tag}.lock")
        self.calloc = Var(0, f"{tag}.calloc")
        self.cfree = Var(0, f"{tag}.cfree")
        self.free_pages = Var(None, f"{tag}.free_pages")
        self.removed_frees = 0          # model-only: frees of pages of chunks being removed

    def _zd_key(self) -> tuple:
        return ("dmirror_device", self.minor)

    def __repr__(self) -> str:
        return f"<dmirror_device {self.minor} {'private' if self.zone_device_type == 1 else 'coherent'}>"


class dmirror:
    """The per-open mirror (``struct dmirror``)."""

    def __init__(self, mdevice, mm) -> None:
        self.id = next_id("dmirror")
        self.mdevice = mdevice
        self.mm = mm
        self.mutex = Lock(f"dmirror{self.id}.mutex")
        self.pt: dict[int, Var] = {}
        self.notifier: mmu_interval_notifier | None = None
        self.freed = False

    def _zd_key(self) -> tuple:
        return ("dmirror", self.id)

    def slot(self, pfn: int) -> Var:
        v = self.pt.get(pfn)
        if v is None:
            v = self.pt[pfn] = Var(None, f"dmirror{self.id}.pt[{pfn:#x}]")
        return v


class dmirror_file:
    """An open ``/dev/hmm_dmirrorN`` (``struct file`` with ``private_data``); also what
    ``mmap`` of the fd maps (``dmirror_fops_mmap``)."""

    vm_ops = "dmirror"
    mmap_vm_flags = VM_MIXEDMAP

    def __init__(self, k, mirror: dmirror) -> None:
        self.k = k
        self.private_data = mirror
        self.closed = False

    def mmap(self, k, vma) -> None:
        k.dmirror_fops_mmap(self, vma)


class hmm_module:
    """The loaded module: ``dmirror_devices[]`` and its parameters."""

    def __init__(self, chunk_pages: int, spm: bool) -> None:
        self.chunk_pages = chunk_pages
        self.spm = spm
        self.devices: list[dmirror_device] = []
        self.next_private_pfn = 0x400000
        self.spm_addr_dev0 = 0x800000
        self.spm_addr_dev1 = 0x800000 + max(chunk_pages, 1) * 4


# --- helpers -------------------------------------------------------------------------------------

def _page_ints(k) -> int:
    return getattr(k, "page_ints", 1024)


def BACKING_PAGE(k, page):
    return page.zone_device_data.get("BACKING_PAGE") if k.is_device_private_page(page) else page


def dmirror_page_to_chunk(page) -> dmirror_chunk:
    return page.pgmap.data


def dmirror_select_device(mirror: dmirror) -> int:
    return MIGRATE_VMA_SELECT_DEVICE_PRIVATE if mirror.mdevice.zone_device_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE \
        else MIGRATE_VMA_SELECT_DEVICE_COHERENT


def _copy_highpage(dst, src) -> None:
    dst.data.set(src.data.get("copy_highpage"), "copy_highpage")


# --- module init / exit ----------------------------------------------------------------------------

def hmm_dmirror_init(k, chunk_pages: int = 64, spm: bool = True) -> hmm_module:
    """``hmm_dmirror_init()``: two private devices, two coherent ones when the kernel has
    MEMORY_DEVICE_COHERENT and SPM addresses are given; each eagerly gets one chunk.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mod = hmm_module(chunk_pages, spm)
    types = [HMM_DMIRROR_MEMORY_DEVICE_PRIVATE] * 2
    if spm and MEMORY_DEVICE_COHERENT in (k.fact("memory_types") or ()):
        types += [HMM_DMIRROR_MEMORY_DEVICE_COHERENT] * 2
    for minor, t in enumerate(types):
        mdev = dmirror_device(mod, minor, t)
        mod.devices.append(mdev)
        k.dmirror_allocate_chunk(mdev, False)
    k.hmm_module = mod
    return mod


def hmm_dmirror_exit(k, mod: hmm_module) -> None:
    """``hmm_dmirror_exit()`` -> ``dmirror_device_remove()``: remove every chunk
    (``memunmap_pages`` waits for the pgmap references to drain).

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    for mdev in mod.devices:
        k.dmirror_device_remove_chunks(mdev)


def dmirror_allocate_chunk(k, mdevice: dmirror_device, want_page: bool):
    """``dmirror_allocate_chunk()``: memremap a new chunk, push all its pages on the free list,
    optionally pop one for the caller (``calloc++``).  Returns the page, True, or raises.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mod = mdevice.module
    n = mod.chunk_pages
    if mdevice.zone_device_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
        start = mod.next_private_pfn            # request_free_mem_region()
        mod.next_private_pfn += n
        ptype = MEMORY_DEVICE_PRIVATE
    else:
        start = mod.spm_addr_dev0 if (mdevice.minor - 2) else mod.spm_addr_dev1
        ptype = MEMORY_DEVICE_COHERENT
    chunk_box: list = []
    ops = dev_pagemap_ops(page_free=lambda page, *a: k.dmirror_devmem_free(page),
                          migrate_to_ram=lambda vmf: k.dmirror_devmem_fault(vmf))
    pgmap = dev_pagemap(ptype, nr_pages=n, start_pfn=start, ops=ops, owner=mdevice,
                        name=f"dmirror{mdevice.minor}@{start:#x}")
    chunk = dmirror_chunk(mdevice, pgmap)
    pgmap.data = chunk
    mdevice.devmem_lock.lock("mutex_lock(&mdevice->devmem_lock)")
    try:
        k.memremap_pages(pgmap)
    except Exception:
        mdevice.devmem_lock.unlock("mutex_unlock(&mdevice->devmem_lock)")
        raise err(errno.ENOMEM, "dmirror_allocate_chunk: memremap_pages failed")
    chunk.idle_ref = pgmap.ref.peek() if pgmap.ref is not None else None
    chunk.free_refcount = k.pfn_to_page(start)._refcount.peek()
    mdevice.devmem_chunks.set(mdevice.devmem_chunks.get("devmem_chunks") + (chunk,), "devmem_chunks[devmem_count++]")
    mdevice.devmem_lock.unlock("mutex_unlock(&mdevice->devmem_lock)")
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    head = mdevice.free_pages.get("mdevice->free_pages")
    for pfn in range(start, start + n):
        page = k.pfn_to_page(pfn)
        page.zone_device_data.set(head, "page->zone_device_data = mdevice->free_pages")
        head = page
    page = None
    if want_page:
        page = head
        head = page.zone_device_data.get("zone_device_data")
        mdevice.calloc.set(mdevice.calloc.get("calloc") + 1, "calloc++")
    mdevice.free_pages.set(head, "mdevice->free_pages")
    mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
    return page if want_page else True


def dmirror_devmem_alloc_page(k, mdevice: dmirror_device):
    """``dmirror_devmem_alloc_page()``: backing page (private), pop the free list or make a new
    chunk, then the era's allocation protocol.  Returns the device page, locked, or None.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    rpage = None
    if mdevice.zone_device_type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE:
        rpage = k.alloc_page()
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    dpage = mdevice.free_pages.get("mdevice->free_pages")
    if dpage is not None:
        mdevice.free_pages.set(dpage.zone_device_data.get("dpage->zone_device_data"), "mdevice->free_pages")
        mdevice.calloc.set(mdevice.calloc.get("calloc") + 1, "calloc++")
        mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
    else:
        mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
        try:
            dpage = k.dmirror_allocate_chunk(mdevice, True)
        except OSError:
            if rpage is not None:
                k.__free_page(rpage)
            return None
    proto = k.fact("zd_alloc")
    if proto == "zone_device_page_init" or (proto is None and k.has("zone_device_page_init")):
        k.zone_device_page_init(dpage)          # v6.1+: pgmap ref, refcount 0 -> 1, lock
    elif proto == "lock_page":
        k.lock_page(dpage)                      # v5.18-v6.0
    else:
        k.get_page(dpage)                       # v5.8-v5.17: the driver's own reference
        k.lock_page(dpage)
    dpage.zone_device_data.set(rpage, "dpage->zone_device_data = rpage")
    return dpage


def dmirror_devmem_free(k, page) -> None:
    """``dmirror_devmem_free()`` (``.page_free``): free the backing page; unless the chunk is
    being removed, ``cfree++`` and push the page back on the free list.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mdevice = dmirror_page_to_chunk(page).mdevice
    rpage = page.zone_device_data.get("BACKING_PAGE") if k.is_device_private_page(page) else page
    if rpage is not page and rpage is not None:
        k.__free_page(rpage)
    mdevice.lock.lock("spin_lock(&mdevice->lock)")
    if not dmirror_page_to_chunk(page).remove.get("chunk->remove"):
        mdevice.cfree.set(mdevice.cfree.get("cfree") + 1, "cfree++")
        page.zone_device_data.set(mdevice.free_pages.get("mdevice->free_pages"), "page->zone_device_data")
        mdevice.free_pages.set(page, "mdevice->free_pages = page")
    else:
        mdevice.removed_frees += 1
    mdevice.lock.unlock("spin_unlock(&mdevice->lock)")


# --- open / release / mmap ------------------------------------------------------------------------

def dmirror_interval_invalidate(k, mni, rng, cur_seq: int) -> bool:
    """``dmirror_interval_invalidate()``: the mirror's notifier callback; bump the sequence and drop
    the mirrored range. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mirror = mni.owner_obj
    if rng.event == MMU_NOTIFY_MIGRATE and rng.owner is mirror.mdevice:
        return True
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    k.mmu_interval_set_seq(mni, cur_seq)
    k.dmirror_do_update(mirror, rng.start, rng.end)
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    return True


def dmirror_do_update(k, mirror: dmirror, start: int, end: int) -> None:
    """Erase [start, end) from the xarray (it holds no references).
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    lo, hi = start >> PAGE_SHIFT, end >> PAGE_SHIFT
    for pfn in sorted(mirror.pt):
        if lo <= pfn < hi:
            v = mirror.pt[pfn]
            if v.get("xa_load") is not None:
                v.set(None, "xa_erase")


def dmirror_fops_open(k, minor: int, mm) -> dmirror_file:
    """``open("/dev/hmm_dmirrorN")`` -> ``dmirror_fops_open()``: a mirror of the opener's mm.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mod = k.hmm_module
    if minor >= len(mod.devices):
        raise err(errno.ENOENT, f"/dev/hmm_dmirror{minor}: no such device")
    mirror = dmirror(mod.devices[minor], mm)
    mirror.notifier = mmu_interval_notifier(mm, 0, 1 << 64,
                                            lambda mni, rng, seq: k.dmirror_interval_invalidate(mni, rng, seq),
                                            mirror)
    k.mmu_interval_notifier_insert(mirror.notifier)
    return dmirror_file(k, mirror)


def dmirror_fops_release(k, filp: dmirror_file) -> None:
    """``dmirror_fops_release()``: remove the notifier, (newest, 744dd97752ef: evict every chunk
    of the device -- read without ``devmem_lock``, as D2 does) destroy the xarray, free the
    mirror.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mirror = filp.private_data
    k.mmu_interval_notifier_remove(mirror.notifier)
    if k.fact("dmirror_evict_on_close"):
        for chunk in mirror.mdevice.devmem_chunks.get("devmem_chunks"):
            k.dmirror_device_evict_chunk(chunk)
    for v in mirror.pt.values():
        v.set(None, "xa_destroy")
    mirror.freed = True
    filp.closed = True


def dmirror_fops_mmap(k, filp: dmirror_file, vma) -> None:
    """``dmirror_fops_mmap()``: insert zeroed kernel pages (VM_MIXEDMAP).
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    for addr in range(vma.vm_start, vma.vm_end, PAGE_SIZE):
        page = k.alloc_page()
        page.data.set(None, "__GFP_ZERO")
        k.vm_insert_page(vma, addr, page)
        k.put_page(page)


# --- mirroring: READ / WRITE -------------------------------------------------------------------------

def dmirror_do_fault(k, mirror: dmirror, rng: hmm_range) -> int:
    """``dmirror_do_fault()``: copy what ``hmm_range_fault`` returned into the mirror's page table.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    for i, (flags, page) in enumerate(rng.hmm_pfns[: (rng.end - rng.start) >> PAGE_SHIFT]):
        pfn = (rng.start >> PAGE_SHIFT) + i
        if flags & HMM_PFN_ERROR or not flags & HMM_PFN_VALID or page is None:
            k.world.violate("dmirror_warn", "WARN_ON(!(*pfns & HMM_PFN_VALID))", None, "dmirror_do_fault")
            continue
        tag = DPT_XA_TAG_WRITE if flags & HMM_PFN_WRITE else 0
        if not tag and rng.default_flags & HMM_PFN_WRITE:
            return -errno.EFAULT
        mirror.slot(pfn).set((page, tag), "xa_store")
    return 0


def _hmm_range_fault_locked(k, mirror: dmirror, rng: hmm_range) -> int:
    """The retry loop dmirror_range_fault() and dmirror_range_snapshot() share: fault the range
    under the mmap read lock, then take the mirror mutex and retry while an invalidation ran in
    between.  Returns 0 with ``mirror.mutex`` held, or an error with it released.

    The kernel gives up with -EBUSY after HMM_RANGE_DEFAULT_TIMEOUT (1000 ms of retrying); the
    model retries fairly instead (``RetryLoop``: again once the notifier sequence changed, which
    every -EBUSY implies) and never times out -- with finitely many threads the invalidations
    stop long before a second has passed."""
    mm = mirror.mm
    loop = RetryLoop("dmirror_range_fault: retry (-EBUSY)")
    while True:
        rng.notifier_seq = k.mmu_interval_read_begin(rng.notifier)
        mm.mmap_lock.down_read("mmap_read_lock")
        ret = k.hmm_range_fault(rng)
        mm.mmap_lock.up_read("mmap_read_unlock")
        if ret:
            if ret == -errno.EBUSY:
                loop.retry([rng.notifier.invalidate_seq])
                continue
            return ret
        mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
        if not k.mmu_interval_read_retry(rng.notifier, rng.notifier_seq):
            return 0
        mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
        loop.retry([rng.notifier.invalidate_seq])


def dmirror_range_fault(k, mirror: dmirror, rng: hmm_range) -> int:
    """``dmirror_range_fault()``: ``hmm_range_fault`` in the read_begin/read_retry loop, updating
    the mirror under its lock. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    ret = _hmm_range_fault_locked(k, mirror, rng)
    if ret:
        return ret
    ret = k.dmirror_do_fault(mirror, rng)
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    return ret


def dmirror_fault(k, mirror: dmirror, start: int, end: int, write: bool) -> int:
    """``dmirror_fault()``: fault [start, end) of the mirrored mm into the device page table.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mm = mirror.mm
    if not k.mmget_not_zero(mm):
        return 0
    ret = 0
    addr = start
    while addr < end:
        rng = hmm_range(notifier=mirror.notifier, start=addr, end=min(addr + DMIRROR_BATCH * PAGE_SIZE, end),
                        default_flags=HMM_PFN_REQ_FAULT | (HMM_PFN_REQ_WRITE if write else 0),
                        dev_private_owner=mirror.mdevice)
        ret = k.dmirror_range_fault(mirror, rng)
        if ret:
            break
        addr = rng.end
    k.mmput(mm)
    return ret


def dmirror_do_read(k, mirror: dmirror, start: int, end: int, bounce: dict) -> int:
    """``dmirror_do_read()``: copy mirrored pages into the bounce buffer; -ENOENT for an unmirrored
    one. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    n = _page_ints(k)
    for pfn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
        entry = mirror.slot(pfn).get("xa_load")
        if entry is None:
            return -errno.ENOENT
        data = entry[0].data.get("memcpy_from_page")
        off = (pfn - (bounce["addr"] >> PAGE_SHIFT)) * n
        bounce["buf"][off:off + n] = data if data is not None else (0,) * n
        bounce["cpages"] += 1
    return 0


def dmirror_do_write(k, mirror: dmirror, start: int, end: int, bounce: dict) -> int:
    """``dmirror_do_write()``: copy the bounce buffer into mirrored pages. Kernel: lib/test_hmm.c,
    v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    n = _page_ints(k)
    for pfn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
        entry = mirror.slot(pfn).get("xa_load")
        if entry is None or entry[1] != DPT_XA_TAG_WRITE:
            return -errno.ENOENT
        off = (pfn - (bounce["addr"] >> PAGE_SHIFT)) * n
        entry[0].data.set(tuple(bounce["buf"][off:off + n]), "memcpy_to_page")
        bounce["cpages"] += 1
    return 0


def _bounce(k, start: int, npages: int) -> dict:
    return {"addr": start, "buf": [0] * (npages * _page_ints(k)), "cpages": 0}


def _copy_faulting_in(k, mirror: dmirror, cmd: hmm_dmirror_cmd, bounce: dict, copy, write: bool) -> int:
    """The loop dmirror_read() and dmirror_write() share: copy under the mirror mutex; at the
    first page the device page table lacks (-ENOENT), fault the rest of the range in
    (``cmd.faults`` counts the passes) and copy again from there."""
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    while True:
        mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
        ret = copy(mirror, start, end, bounce)
        mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
        if ret != -errno.ENOENT:
            return ret
        start = cmd.addr + (bounce["cpages"] << PAGE_SHIFT)
        ret = k.dmirror_fault(mirror, start, end, write)
        if ret:
            return ret
        cmd.faults += 1


def dmirror_read(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_read()`` (HMM_DMIRROR_READ): fault the range in, then read it through the mirror.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    bounce = _bounce(k, cmd.addr, cmd.npages)
    ret = _copy_faulting_in(k, mirror, cmd, bounce, k.dmirror_do_read, False)
    if ret == 0:
        cmd.ptr[: len(bounce["buf"])] = bounce["buf"]          # copy_to_user
    cmd.cpages = bounce["cpages"]
    return ret


def dmirror_write(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_write()`` (HMM_DMIRROR_WRITE): fault the range in writable, then write through the
    mirror. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    bounce = _bounce(k, cmd.addr, cmd.npages)
    src = list(cmd.ptr)                      # copy_from_user
    bounce["buf"][: len(src)] = src[: len(bounce["buf"])]
    ret = _copy_faulting_in(k, mirror, cmd, bounce, k.dmirror_do_write, True)
    cmd.cpages = bounce["cpages"]
    return ret


# --- migration -------------------------------------------------------------------------------------

def dmirror_migrate_alloc_and_copy(k, args: migrate_vma, mirror: dmirror) -> None:
    """``dmirror_migrate_alloc_and_copy()``: a device page for each collected source page, data
    copied. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mdevice = mirror.mdevice
    for i in range(args.npages):
        src = args.src[i]
        if not src & MIGRATE_PFN_MIGRATE:
            continue
        spage = migrate_pfn_to_page(k, src)
        if spage is not None and k.is_zone_device_page(spage):
            k.world.violate("dmirror_warn", "WARN: page already in device spage pfn", spage.pfn,
                            "dmirror_migrate_alloc_and_copy")
            continue
        dpage = k.dmirror_devmem_alloc_page(mdevice)
        if dpage is None:
            continue
        rpage = BACKING_PAGE(k, dpage)
        if spage is not None:
            _copy_highpage(rpage, spage)
        else:
            rpage.data.set(None, "clear_highpage")
        rpage.zone_device_data.set(mirror, "rpage->zone_device_data = dmirror")
        d = migrate_pfn(dpage.pfn)
        if src & MIGRATE_PFN_WRITE or (spage is None and args.vma.vm_flags & VM_WRITE):
            d |= MIGRATE_PFN_WRITE
        args.dst[i] = d


def dmirror_migrate_finalize_and_map(k, args: migrate_vma, mirror: dmirror) -> int:
    """``dmirror_migrate_finalize_and_map()``: record the migrated device pages in the mirror.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    for i in range(args.npages):
        if not args.src[i] & MIGRATE_PFN_MIGRATE:
            continue
        dpage = migrate_pfn_to_page(k, args.dst[i])
        if dpage is None:
            continue
        entry = BACKING_PAGE(k, dpage)
        tag = DPT_XA_TAG_WRITE if args.dst[i] & MIGRATE_PFN_WRITE else 0
        mirror.slot((args.start >> PAGE_SHIFT) + i).set((entry, tag), "xa_store")
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    return 0


def _vma_walk(k, mirror: dmirror, cmd: hmm_dmirror_cmd, step, batch: int = DMIRROR_BATCH) -> int:
    """The per-VMA, per-64-page loop of migrate_to_device/system under mmap_lock (D2, v6.19:
    per ``PTRS_PER_PTE`` pages, so that a PMD fits in one batch)."""
    mm = mirror.mm
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    if not k.mmget_not_zero(mm):
        return -errno.EINVAL
    mm.mmap_lock.down_read("mmap_read_lock")
    ret = 0
    try:
        addr = start
        while addr < end:
            vma = vma_lookup(mm, addr)
            if vma is None or not vma.vm_flags & VM_READ:
                ret = -errno.EINVAL
                break
            nxt = min(end, addr + batch * PAGE_SIZE, vma.vm_end)
            args = migrate_vma(vma=vma, start=addr, end=nxt, pgmap_owner=mirror.mdevice)
            try:
                step(args)
            except OSError as e:
                ret = -e.errno
                break
            addr = nxt
    finally:
        mm.mmap_lock.up_read("mmap_read_unlock")
        k.mmput(mm)
    return ret


def dmirror_migrate_to_device(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_migrate_to_device()`` (HMM_DMIRROR_MIGRATE_TO_DEV): migrate_vma_setup, alloc and
    copy, pages, finalize. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    def step(args):
        args.flags = MIGRATE_VMA_SELECT_SYSTEM
        k.migrate_vma_setup(args)
        k.dmirror_migrate_alloc_and_copy(args, mirror)
        k.migrate_vma_pages(args)
        k.dmirror_migrate_finalize_and_map(args, mirror)
        k.migrate_vma_finalize(args)
    ret = _vma_walk(k, mirror, cmd, step)
    if ret:
        return ret
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    bounce = _bounce(k, start, cmd.npages)
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    ret = k.dmirror_do_read(mirror, start, end, bounce)
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    if ret == 0:
        cmd.ptr[: len(bounce["buf"])] = bounce["buf"]
    cmd.cpages = bounce["cpages"]
    return ret


def dmirror_devmem_fault_alloc_and_copy(k, args: migrate_vma, mirror: dmirror) -> int:
    """``dmirror_devmem_fault_alloc_and_copy()``: a system page for each device page coming back,
    data copied. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    for i in range(args.npages):
        src = args.src[i]
        spage = migrate_pfn_to_page(k, src)
        if spage is None or not src & MIGRATE_PFN_MIGRATE:
            continue
        if not (k.is_device_private_page(spage) or k.is_device_coherent_page(spage)):
            k.world.violate("dmirror_warn", "WARN_ON(!is_device_private_page(spage) && !is_device_coherent_page(spage))",
                            spage.pfn, "dmirror_devmem_fault_alloc_and_copy")
            continue
        spage = BACKING_PAGE(k, spage)
        dpage = k.alloc_page()                       # alloc_page_vma(GFP_HIGHUSER_MOVABLE)
        k.lock_page(dpage)
        addr = args.start + i * PAGE_SIZE
        mirror.slot(addr >> PAGE_SHIFT).set(None, "xa_erase")
        _copy_highpage(dpage, spage)
        args.dst[i] = migrate_pfn(dpage.pfn) | (MIGRATE_PFN_WRITE if src & MIGRATE_PFN_WRITE else 0)
    return 0


def dmirror_migrate_to_system(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_migrate_to_system()`` (HMM_DMIRROR_MIGRATE_TO_SYS): migrate device pages of a range
    back to RAM. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    cmd.cpages = 0

    def step(args):
        args.flags = dmirror_select_device(mirror)
        k.migrate_vma_setup(args)
        k.dmirror_devmem_fault_alloc_and_copy(args, mirror)
        k.migrate_vma_pages(args)
        cmd.cpages += sum(1 for s in args.src if s & MIGRATE_PFN_VALID and s & MIGRATE_PFN_MIGRATE)
        k.migrate_vma_finalize(args)
    return _vma_walk(k, mirror, cmd, step)


def dmirror_devmem_fault(k, vmf) -> int:
    """``dmirror_devmem_fault()`` (``.migrate_to_ram``): migrate the faulting page back to a
    system page.  The backing page and the mirror are found through ``zone_device_data``: if
    the device page was freed meanwhile (F9) that field is a free-list link, and the kernel
    would dereference freed memory -- reported as ``use_after_free``.

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    page = vmf.page
    rpage = page.zone_device_data.get("vmf->page->zone_device_data")
    gone = rpage is None or k.is_zone_device_page(rpage) or k.page_is_buddy_free(rpage)
    mirror = None if gone else rpage.zone_device_data.get("rpage->zone_device_data")
    if gone or not isinstance(mirror, dmirror) or mirror.freed:
        k.world.violate("use_after_free",
                        "BUG: KASAN: use-after-free in dmirror_devmem_fault (the device page was freed "
                        "under migrate_to_ram: zone_device_data is stale)", page.pfn, "dmirror_devmem_fault")
        return VM_FAULT_SIGBUS
    args = migrate_vma(vma=vmf.vma, start=vmf.address, end=vmf.address + PAGE_SIZE,
                       pgmap_owner=mirror.mdevice, flags=dmirror_select_device(mirror), fault_page=page)
    try:
        k.migrate_vma_setup(args)
    except OSError:
        return VM_FAULT_SIGBUS
    ret = k.dmirror_devmem_fault_alloc_and_copy(args, mirror)
    if ret:
        return ret
    k.migrate_vma_pages(args)
    k.migrate_vma_finalize(args)
    return 0


# --- snapshot --------------------------------------------------------------------------------------

def dmirror_mkentry(k, mirror: dmirror, entry) -> int:
    """``dmirror_mkentry()``: one snapshot byte from an hmm_pfns entry (valid, write, device-private
    owner). Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    flags, page = entry
    if flags & HMM_PFN_ERROR:
        return HMM_DMIRROR_PROT_ERROR
    if not flags & HMM_PFN_VALID:
        return HMM_DMIRROR_PROT_NONE
    if k.is_device_private_page(page):
        perm = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL if dmirror_page_to_chunk(page).mdevice is mirror.mdevice \
            else HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE
    elif k.is_device_coherent_page(page):
        perm = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL if dmirror_page_to_chunk(page).mdevice is mirror.mdevice \
            else HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE
    elif k.is_zero_page(page):
        perm = HMM_DMIRROR_PROT_ZERO
    else:
        perm = HMM_DMIRROR_PROT_NONE
    perm |= HMM_DMIRROR_PROT_WRITE if flags & HMM_PFN_WRITE else HMM_DMIRROR_PROT_READ
    return perm


def dmirror_range_snapshot(k, mirror: dmirror, rng: hmm_range, perm: list) -> int:
    """``dmirror_range_snapshot()``: ``hmm_range_fault`` without faulting, in the read_begin/retry
    loop. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mm = mirror.mm

    def inval(mni, r, seq):
        mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
        k.mmu_interval_set_seq(mni, seq)
        mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
        return True
    rng.notifier = mmu_interval_notifier(mm, rng.start, rng.end - rng.start, inval, mirror)
    k.mmu_interval_notifier_insert(rng.notifier)
    ret = 0
    try:
        ret = _hmm_range_fault_locked(k, mirror, rng)
        if ret:
            return ret
        n = (rng.end - rng.start) >> PAGE_SHIFT
        perm[:] = [k.dmirror_mkentry(mirror, rng.hmm_pfns[i]) for i in range(n)]
        mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    finally:
        k.mmu_interval_notifier_remove(rng.notifier)
    return ret


def dmirror_snapshot(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_snapshot()`` (HMM_DMIRROR_SNAPSHOT): the protection byte of each page of a range.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mm = mirror.mm
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    if not k.mmget_not_zero(mm):
        return -errno.EINVAL
    out = []
    ret = 0
    addr = start
    while addr < end:
        nxt = min(addr + DMIRROR_BATCH * PAGE_SIZE, end)
        rng = hmm_range(start=addr, end=nxt, dev_private_owner=mirror.mdevice)
        perm: list = []
        ret = k.dmirror_range_snapshot(mirror, rng, perm)
        if ret:
            break
        out += perm
        cmd.cpages += len(perm)
        addr = nxt
    cmd.ptr[: len(out)] = out
    k.mmput(mm)
    return ret


# --- device exclusive --------------------------------------------------------------------------------

def dmirror_exclusive(k, mirror: dmirror, cmd: hmm_dmirror_cmd) -> int:
    """``dmirror_exclusive()`` (HMM_DMIRROR_EXCLUSIVE): make the range's pages device-exclusive and
    mirror them as atomic. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mm = mirror.mm
    start = cmd.addr
    end = start + (cmd.npages << PAGE_SHIFT)
    if not k.mmget_not_zero(mm):
        return -errno.EINVAL
    mm.mmap_lock.down_read("mmap_read_lock")
    ret = 0
    for addr in range(start, end, PAGE_SIZE):
        try:
            page = k.make_device_exclusive(mm, addr, None)
        except OSError as e:
            ret = -e.errno
            break
        mirror.mutex.lock("mutex_lock(&dmirror->mutex)")        # dmirror_atomic_map
        mirror.slot(addr >> PAGE_SHIFT).set((page, DPT_XA_TAG_ATOMIC), "xa_store")
        mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
        k.unlock_page(page)
        k.put_page(page)
    mm.mmap_lock.up_read("mmap_read_unlock")
    k.mmput(mm)
    if ret:
        return ret
    bounce = _bounce(k, start, cmd.npages)
    mirror.mutex.lock("mutex_lock(&dmirror->mutex)")
    ret = k.dmirror_do_read(mirror, start, end, bounce)
    mirror.mutex.unlock("mutex_unlock(&dmirror->mutex)")
    if ret == 0:
        cmd.ptr[: len(bounce["buf"])] = bounce["buf"]
    cmd.cpages = bounce["cpages"]
    return ret


def dmirror_check_atomic(k, mirror: dmirror, start: int, end: int) -> int:
    """``dmirror_check_atomic()``: -EPERM if any page of the range is still mirrored for atomic
    access. Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    for pfn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
        e = mirror.slot(pfn).get("xa_load")
        if e is not None and e[1] == DPT_XA_TAG_ATOMIC:
            return -errno.EPERM
    return 0


# --- eviction / chunk removal (v6.1, e778406b40db) -------------------------------------------------------

def dmirror_device_evict_chunk(k, chunk: dmirror_chunk) -> None:
    """``dmirror_device_evict_chunk()``: migrate every page of a chunk back to system memory.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    start, npages = chunk.pagemap.ranges[0]
    src: list = []
    dst = [0] * npages
    k.migrate_device_range(src, start, npages)
    for i in range(npages):
        spage = migrate_pfn_to_page(k, src[i])
        if spage is None or not src[i] & MIGRATE_PFN_MIGRATE:
            continue
        spage = BACKING_PAGE(k, spage)
        dpage = k.alloc_page()
        k.lock_page(dpage)
        _copy_highpage(dpage, spage)
        dst[i] = migrate_pfn(dpage.pfn) | (MIGRATE_PFN_WRITE if src[i] & MIGRATE_PFN_WRITE else 0)
    k.migrate_device_pages(src, dst, npages)
    k.migrate_device_finalize(src, dst, npages)


def dmirror_remove_free_pages(k, chunk: dmirror_chunk) -> None:
    """As the kernel writes it: walk the list and, for each page of this chunk, make the head
    skip to its successor (correct when the chunk's pages end the list).

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mdevice = chunk.mdevice
    page = mdevice.free_pages.get("mdevice->free_pages")
    while page is not None:
        nxt = page.zone_device_data.get("page->zone_device_data")
        if dmirror_page_to_chunk(page) is chunk:
            mdevice.free_pages.set(nxt, "mdevice->free_pages")
        page = nxt


def dmirror_device_remove_chunks(k, mdevice: dmirror_device) -> None:
    """``dmirror_device_remove_chunks()``: evict and ``memunmap_pages`` every chunk of a device.
    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    mdevice.devmem_lock.lock("mutex_lock(&mdevice->devmem_lock)")
    chunks = mdevice.devmem_chunks.get("devmem_chunks")
    for chunk in chunks:
        mdevice.lock.lock("spin_lock(&mdevice->lock)")
        chunk.remove.set(True, "devmem->remove = true")
        k.dmirror_remove_free_pages(chunk)
        mdevice.lock.unlock("spin_unlock(&mdevice->lock)")
        if k.has("migrate_device_range"):
            k.dmirror_device_evict_chunk(chunk)
        k.memunmap_pages(chunk.pagemap)
    mdevice.devmem_chunks.set((), "devmem_chunks = NULL")
    mdevice.free_pages.set(None, "mdevice->free_pages = NULL")
    mdevice.devmem_lock.unlock("mutex_unlock(&mdevice->devmem_lock)")


# --- the ioctl entry ---------------------------------------------------------------------------------------

def dmirror_fops_unlocked_ioctl(k, filp: dmirror_file, command: int, cmd: hmm_dmirror_cmd) -> hmm_dmirror_cmd:
    """``dmirror_fops_unlocked_ioctl()``.  Returns the updated command struct (what
    ``copy_to_user`` writes back) or raises ``OSError`` (then the struct is not copied back).

    Kernel: lib/test_hmm.c, v5.8+ (b2ef9f5a5cb3), in its v6.15 shape."""
    if filp.closed:
        raise err(errno.EBADF, "ioctl on a closed /dev/hmm_dmirror fd")
    mirror = filp.private_data
    if mirror is None:
        raise err(errno.EINVAL, "no mirror")
    c = cmd.copy()
    if c.addr & ~PAGE_MASK:
        raise err(errno.EINVAL, "addr not page aligned")
    if c.addr >= c.addr + (c.npages << PAGE_SHIFT):
        raise err(errno.EINVAL, "empty or wrapping range")
    c.cpages = 0
    c.faults = 0
    handlers = {HMM_DMIRROR_READ: k.dmirror_read, HMM_DMIRROR_WRITE: k.dmirror_write,
                HMM_DMIRROR_MIGRATE_TO_DEV: k.dmirror_migrate_to_device,
                HMM_DMIRROR_SNAPSHOT: k.dmirror_snapshot}
    if k.fact("dmirror_migrate_to_sys"):
        handlers[HMM_DMIRROR_MIGRATE_TO_SYS] = k.dmirror_migrate_to_system
    if k.has("make_device_exclusive"):
        handlers[HMM_DMIRROR_EXCLUSIVE] = k.dmirror_exclusive
        handlers[HMM_DMIRROR_CHECK_EXCLUSIVE] = lambda m, cc: k.dmirror_check_atomic(
            m, cc.addr, cc.addr + (cc.npages << PAGE_SHIFT))
    if k.has("migrate_device_range"):
        handlers[HMM_DMIRROR_RELEASE] = lambda m, cc: (k.dmirror_device_remove_chunks(m.mdevice), 0)[1]
    h = handlers.get(command)
    if h is None:
        raise err(errno.EINVAL, f"unknown dmirror ioctl {command:#x}")
    ret = h(mirror, c)
    if ret:
        raise err(-ret, f"dmirror ioctl {command:#x}")
    cmd.cpages, cmd.faults = c.cpages, c.faults
    return cmd


FUNCTIONS = (hmm_dmirror_init, hmm_dmirror_exit, dmirror_allocate_chunk, dmirror_devmem_alloc_page,
             dmirror_devmem_free, dmirror_interval_invalidate, dmirror_do_update, dmirror_fops_open,
             dmirror_fops_release, dmirror_fops_mmap, dmirror_do_fault, dmirror_range_fault, dmirror_fault,
             dmirror_do_read, dmirror_do_write, dmirror_read, dmirror_write, dmirror_migrate_alloc_and_copy,
             dmirror_migrate_finalize_and_map, dmirror_migrate_to_device, dmirror_devmem_fault_alloc_and_copy,
             dmirror_migrate_to_system, dmirror_devmem_fault, dmirror_mkentry, dmirror_range_snapshot,
             dmirror_snapshot, dmirror_exclusive, dmirror_check_atomic, dmirror_device_evict_chunk,
             dmirror_remove_free_pages, dmirror_device_remove_chunks, dmirror_fops_unlocked_ioctl)
