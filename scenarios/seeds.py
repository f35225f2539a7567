"""The five seed threads (``shared/seeds/``), each as the claim it makes, asked on every kernel.

Each scenario states a claim from one thread in the words of its authors, runs the smallest
concurrent shape that can refute it, and declares where the claim holds (``safe``) and what
goes wrong where it does not.  The what-if patches taken from the same threads are in
``scenarios/patches/``; try one on the scenario it names:

    zonedev check scenarios/seeds.py::page_free_at_one --kernel v4.5 --patch scenarios/patches/hmm_free_hook_2016.py

=====================  ======  ==============================================================
scenario               seed    the claim
=====================  ======  ==============================================================
page_free_at_one       004     page_free fires when the count reaches 1; a driver can rely on it
page_free_vs_memunmap  004     ... also while the driver tears the pgmap down (F7's quirk)
pgmap_ref_per_page     000     one pgmap reference per page keeps the pgmap alive while a page
                               is in use, without pgmap get/put on the get_page fast path
dax_free_path          001     the free path leaves a DAX page alone: no memcg uncharge, no
                               ->mapping clearing, just the wake-up (F6)
longterm_pin_fast      002     a FOLL_LONGTERM pin of an fsdax page never succeeds through the
                               fast GUP path (it bails to the slow path, whose VMA check refuses)
fsdax_gup_of_mapped    003     O_DIRECT into a DAX mapping while truncate waits (xfstests
                               generic/413): what the 0-based proposal broke
=====================  ======  ==============================================================


Three finding kinds belong to these scenarios, not to the kernel: ``page_free_never_called`` (the
driver was never told its page is free), ``dax_page_uncharged`` (the free path ran the
device-private memcg uncharge on an fsdax page -- unneeded, and a no-op in the kernel because an
fsdax page is never charged; Dan Williams' "certainly unnecessary and might be broken") and
``longterm_pin_fast`` (GUP-fast handed back a FOLL_LONGTERM pin of an fsdax page).

The end-to-end forms of seeds 002 and 003 through the DAX file system are in ``fsdax.py``
(``longterm_pin_fsdax_end_to_end``, ``generic_413_odirect_from_dax_mapping``); these are the
page-level claims.
"""

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.mm import FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE
from zonedev.linux.include.mm_types import PG_zd_uncharged
from zonedev.sync import Lock, Var

zonedev.finding_kind("page_free_never_called",
                     "every reference to a driver's device page was dropped, and its page_free never ran")
zonedev.finding_kind("longterm_pin_fast",
                     "GUP-fast returned a FOLL_LONGTERM pin of an fsdax page (no VMA check refused it)")
zonedev.finding_kind("dax_page_uncharged",
                     "the free path called mem_cgroup_uncharge on an fsdax page (device-private clean-up on a "
                     "DAX page, F6; the kernel returns at once for a page that was never charged)")


# --- seed 004: page_free at refcount 1 ---------------------------------------------------------

def _driver_page(k, holders: int):
    """A driver's device page with a ``page_free`` callback, allocated, plus ``holders - 1`` more
    references.  MEMORY_DEVICE_PRIVATE from v4.14; before it (v4.5, v4.12) the only ZONE_DEVICE
    pages are the host ones and the driver fills in the ``free_devpage``/``page_free`` field itself
    after ``devm_memremap_pages`` (Anshuman's question in seed 004: when does it load it?), and
    allocates the way HMM v13 did: ``get_page`` + ``lock_page`` on a free page at refcount 1."""
    if "private" in k.fact("type_names"):
        drv = ExampleDriver(k, "private", nr_pages=1)
        drv.probe()
        page, _ = drv.alloc()
    else:
        drv = ExampleDriver(k, "generic", nr_pages=1)
        drv.probe()
        drv.pgmap.ops.page_free = drv._page_free
        page = drv.pgmap.pages[0]
        k.get_page(page)
        k.lock_page(page)
        k.unlock_page(page)
    for _ in range(holders - 1):
        k.get_page(page)
    return drv, page


def _page_free_ran(drv):
    def page_free_ran():
        if not any(name in ("page_free", "folio_free") for name, _ in drv.callbacks):
            return "every reference is gone and the driver's page_free never ran: it cannot reuse the page"
        return None
    return zonedev.Check(page_free_ran, "page_free_never_called", "page_free_ran")


def _driver_state(drv):
    return lambda: (len(drv.callbacks), tuple(p.memmap_live for p in drv.pgmap.pages))


@zonedev.scenario(
    mode="stateful",
    expect={"..v4.12": "page_free_never_called", "v4.14..": "safe"},
    refs=["004_a62c87353d9b55fb.txt", "5042db43cc26", "7b2d55d2c893", "e76384884344", "07d802699528",
          "27674ef6c73f", "ef233450898f"])
def page_free_at_one(k):
    """Seed 004 (HMM v13, 2016): "When a ZONE_DEVICE page refcount reach 1 it means it is free and
    nobody is holding a reference on it ... Add a callback and call it when that happen so device
    driver can implement their own free page management."  Can a driver rely on it -- put the page
    back on its free list, and hand it out again, the moment page_free runs -- when the last two
    holders (the mapping's reference and a GUP user's) drop theirs at the same time?

    v4.5-v4.12: no callback exists; the driver is never told (``page_free_never_called``).
    v4.14 on (page_free: 5042db43cc26, put_page's hook: 7b2d55d2c893): safe on every kernel --
    the decrement and the test are one atomic ``page_ref_dec_return`` (v4.14
    ``put_zone_device_private_or_public_page``, v4.18 ``__put_devmap_managed_page`` of
    e76384884344, v5.6 ``put_devmap_managed_page`` of 07d802699528), and from v5.18
    (27674ef6c73f) the free is the plain 1 -> 0 transition (then reset to 1 until v6.1,
    ef233450898f, where free pages rest at 0).
    The hook as posted in 2016 read ``page_count(page) == 1`` after put_page's own decrement:
    both puts can see 1 (``scenarios/patches/hmm_free_hook_2016.py``: ``page_free_twice``)."""
    drv, page = _driver_page(k, 2)

    def mapping_put():
        k.put_page(page)          # migrate_vma_finalize / zap: the mapping's reference

    def gup_user():
        k.put_page(page)          # the other holder, concurrently

    return zonedev.Run({"mapping": mapping_put, "gup_user": gup_user},
                       finally_=[_page_free_ran(drv)], state=_driver_state(drv), opaque=[drv])


@zonedev.scenario(
    mode="stateful",
    expect={"..v4.12": ["page_free_never_called", "use_after_free"],
            "v4.14..v4.20": "use_after_free",
            "v5.0": ["page_free_while_referenced", "use_after_free"],
            "v5.2..v5.17": ["page_free_while_referenced", "use_after_free"],
            "v5.18..v6.0": "use_after_free",
            "v6.1..": "safe"},
    refs=["004_a62c87353d9b55fb.txt", "F7", "F2", "F8", "a95c90f1e2c2", "50f44ee7248a", "27674ef6c73f",
          "0dc45ca1ce18"])
def page_free_vs_memunmap(k):
    """Seed 004, at teardown: a driver that reuses a page as soon as page_free runs, while the
    page's user still holds it and the driver unmaps its device memory (``memunmap_pages``, the
    era's devm release before v5.3).  Does page_free still mean "nobody holds it"?

    Not in the 1-based eras that put every pfn at teardown: the teardown put takes the held page
    2 -> 1 and page_free runs on a page in use (F7, ``page_free_while_referenced``; device-private
    pages from v5.0, when HMM moved onto ``devm_memremap_pages`` with a95c90f1e2c2's series, to
    v5.17).  Around it the teardown itself goes wrong: the memmap is removed under the held page
    before v5.2 (F2, fixed by 50f44ee7248a; HMM pages v4.14-v4.20 held no pgmap reference at
    all; v4.5-v4.12 have no page_free, ``page_free_never_called``) and again v5.18-v6.0 (F8:
    27674ef6c73f dropped the per-page pgmap reference).  From v6.1 (0dc45ca1ce18) the page holds
    a pgmap reference, page_free runs at the user's 1 -> 0, and memunmap waits: safe."""
    drv, page = _driver_page(k, 1)

    def user():
        k.put_page(page)

    return zonedev.Run({"user": user, "memunmap": drv.remove},
                       finally_=[_page_free_ran(drv)], state=_driver_state(drv), opaque=[drv])


# --- seed 000: one pgmap reference per page ---------------------------------------------------------

def _gup_fast_devmap(k, page) -> bool:
    """gup_pte_range() on a devmap PTE, as the generic GUP-fast did it (v4.12-era mm/gup.c,
    kernel_eras §1(f), §6.6): look the pgmap up (``get_dev_pagemap``), take the page reference
    speculatively (``page_cache_get_speculative``: no pgmap reference), drop the lookup's pgmap
    reference.  Kept in every era here (``linux/mm/gup_user.py`` models the v6.17 removal)."""
    pgmap = k.get_dev_pagemap(page.pfn)
    if pgmap is None:
        return False
    ok = k.page_cache_get_speculative(page)
    k.put_dev_pagemap(pgmap)
    return ok


@zonedev.scenario(
    mode="stateful",
    expect={"v4.5": ["hang", "percpu_ref_underflow", "percpu_ref_use_after_exit", "use_after_free"],
            "v4.12..v5.0": "use_after_free",
            "v5.2..v5.17": "safe",
            "v5.18..": "use_after_free"},
    refs=["000_06f966850a821b88.txt", "71389703839e", "F1", "F2", "50f44ee7248a", "27674ef6c73f",
          "0dc45ca1ce18"])
def pgmap_ref_per_page(k):
    """Seed 000 (2017, 71389703839e): "take a single get_dev_pagemap() reference to signify that
    the page is alive and use the final put of the page to drop that reference", with no pgmap
    get/put on the get_page/put_page fast path -- "any waits for the percpu_ref to drop to zero
    occur *after* devm_memremap_page_release()".  A GUP-fast user of a pmem/device-dax page drops
    its reference while the driver releases the device: is the pgmap (and the memmap) alive until
    that put?

    v4.5: the reference GUP-fast took carries no pgmap reference, but put_page drops one: the
    pgmap ref underflows (F1, the pmem crash 71389703839e fixed: "percpu ref ... <= 0 (0) after
    switching to atomic"), so its release never runs and the driver's wait hangs, and a late put
    touches the exited ref; independently the release does not wait for page users (F2).  v4.12-v5.0: one reference per page, but the driver waits only after
    the release removed the memmap (F2).  v5.2-v5.17: the claim holds (50f44ee7248a waits in
    ``cleanup`` before the memmap goes).  v5.18 on: ``memunmap_pages`` puts the per-page
    references back in bulk (27674ef6c73f), so a page user no longer keeps the pgmap alive;
    0dc45ca1ce18 (v6.1) restored a per-page reference only for device-private/coherent pages
    (see ``page_free_vs_memunmap``).  The GUP runs before the race: the claim is about a user
    that holds a page; a lookup racing the teardown is ``trust.py::get_dev_pagemap_vs_memunmap``
    (F11, through RCU) and, through the file system, ``fsdax.py``."""
    drv = ExampleDriver(k, "generic", nr_pages=1)
    drv.probe()
    page = drv.pgmap.pages[0]
    # GUP-fast, else the slow path's grab (follow_page_pte -> try_grab_page): before the race
    held = _gup_fast_devmap(k, page) or k.try_grab_page(page, FOLL_GET)

    def gup_user():
        if held:
            k.put_page(page)      # the I/O is done: put_page

    return zonedev.Run({"gup_user": gup_user, "release": drv.remove},
                       state=lambda: tuple(p.memmap_live for p in drv.pgmap.pages), opaque=[drv])


# --- seed 001: device-private clean-up on a DAX page -----------------------------------------------

def _dax_page(k):
    """A pmem fsdax page in a file, mapped shared by a process: ``dax_associate_entry`` (v6.15+
    the mapping also takes a page reference)."""
    drv = ExampleDriver(k, "fsdax", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    return drv, page


def _truncate(k, page, pte, ptl):
    """truncate/hole punch of the file: unmap the range (v6.15+: the mapping's reference goes
    with the PTE), wait until the page is idle (``xfs_break_dax_layouts``), take it out of the
    file (``dax_disassociate_entry``)."""
    def truncate():
        ptl.lock("pte_offset_map_lock")
        pte.set(None, "ptep_get_and_clear")                  # unmap_mapping_range -> zap_pte_range
        if k.fact("dax_mapping_takes_ref"):
            k.put_page(page)
        ptl.unlock("pte_unmap_unlock")
        k.dax_break_layouts([page])
        k.dax_disassociate_entry(page)
    return truncate


def _not_uncharged(page):
    def free_path_left_memcg_alone():
        if page.flags.bits >> PG_zd_uncharged & 1:
            return f"page {page.pfn:#x} (fsdax): the free path called mem_cgroup_uncharge on it"
        return None
    return zonedev.Check(free_path_left_memcg_alone, "dax_page_uncharged", "free_path_left_memcg_alone")


@zonedev.scenario(
    mode="stateful",
    expect={"v4.18": ["dax_mapping_lost", "dax_page_uncharged"],
            "v4.19..v5.3": "dax_page_uncharged",
            "v5.6..v6.2": "safe",
            "v6.15..": "dax_page_uncharged"},
    refs=["001_19201cc6408e5961.txt", "F6", "e76384884344", "2fa147bdbf67", "429589d647e2", "07d802699528",
          "38607c62b3"])
def dax_free_path(k):
    """Seed 001 (2019): Dan Williams on the generic ZONE_DEVICE free path: "it's certainly
    unnecessary and might be broken (would need to check) to call mem_cgroup_uncharge() on a DAX
    page" -- the clean-up (clear Active/Waiters, memcg uncharge, ->mapping = NULL) belongs behind
    a device-private check, and fsdax gets only its ``wake_up_var``.  A GUP user drops the last
    extra reference to an fsdax page while truncate waits for the page to go idle: what does the
    free path do to the DAX page?

    v4.18: it clears ->mapping of a page still in its file (``dax_mapping_lost``; fixed in v4.19
    by 2fa147bdbf67) and uncharges it.  v4.19-v5.5: it still uncharges it (``dax_page_uncharged``,
    F6; fixed in v5.6 by Dan's 429589d647e2).  v5.6-v6.14: the fsdax wake-up only.  v6.15 on:
    ``free_zone_device_folio`` again calls ``mem_cgroup_uncharge`` for every type, fsdax
    included -- an uncharged folio, so the kernel returns at once, but the question of seed 001
    is answered "yes" again.  The truncate is woken on every kernel (the put_page path; the unpin
    path's F12 is a different scenario)."""
    drv, page = _dax_page(k)
    k.get_page(page)                      # get_user_pages(FOLL_GET) took it before the race
    pte = Var(page.pfn, "mm.pte[dax]")
    ptl = Lock("mm.ptl[dax]")

    def gup_user():
        k.put_page(page)                  # the direct I/O completed

    return zonedev.Run({"gup_user": gup_user, "truncate": _truncate(k, page, pte, ptl)},
                       finally_=[_not_uncharged(page)], opaque=[drv])


# --- seed 002: FOLL_LONGTERM on fsdax through fast GUP --------------------------------------------

@zonedev.scenario(
    expect={"v4.18..": "safe"},
    refs=["002_bcb6ade84e983da5.txt", "7af75561e171", "38607c62b3"])
def longterm_pin_fast(k):
    """Seed 002 (2021, Jason Gunthorpe): "the immediate need is really 'should foll_longterm fail
    fast-gup to the slow path' ... and rely on VMA flags to control what the slow path does";
    Joao Martins: "just prevent FOLL_LONGTERM on fsdax -- which I guess was the original purpose
    of commit 7af75561e171".  An RDMA memory registration asks GUP-fast for a long-term pin of a
    mapped fsdax page (the lockless half of ``pin_user_pages_fast``, which cannot see the VMA)
    while the file is truncated; the application deregisters the memory region some time later.
    Does the fast path ever hand back the long-term pin?  If it did, nothing would refuse it,
    and truncate would wait until the application deregisters -- for an RDMA MR, indefinitely.

    Never, on any kernel with fsdax: before v5.2 there is no long-term GUP-fast (long-term users
    went through ``get_user_pages_longterm``, slow only); v5.2-v6.14 ``gup_pte_range`` bails on
    a devmap PTE with FOLL_LONGTERM (7af75561e171), the reason the fast path needs no pgmap
    policy; v6.15 on the DAX PTE is a normal one and the fast path grabs, then drops, a folio
    that ``folio_is_longterm_pinnable`` refuses (38607c62b3).  The slow path's -EOPNOTSUPP is
    ``fsdax.py::longterm_pin_fsdax_end_to_end``.  The bail is what matters before v6.15:
    ``is_longterm_pinnable_page`` says nothing about fsdax there, so a GUP-fast without it (the
    "removing the pgmap test from GUP" item of seed 003's list, done before v6.15) would pin."""
    pm = ExampleDriver(k, "fsdax", nr_pages=2)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap)
    f = k.daxfs_create(sb, "f")
    k.daxfs_fallocate(f, 1)
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    k.dax_user_write(mm, addr, 1)                      # the DAX fault maps the page
    page = k.memmap[f.i_blocks.peek()[0]]
    pinned = Var((), "rdma.pinned")

    def rdma_mr():
        pages = k.gup_fast(mm, addr, 1, FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)
        pinned.set(tuple(p.pfn for p in pages), "ib_umem_get")     # ib_reg_mr: held for the MR's lifetime
        for p in pages:
            k.unpin_user_page(p)                                    # ib_dereg_mr, whenever the application says

    def truncate():
        k.daxfs_truncate(f, 0)

    def no_longterm_pin():
        if pinned.peek():
            return f"GUP-fast returned a long-term pin of fsdax page {page.pfn:#x}"
        return None

    return zonedev.Run({"rdma_mr": rdma_mr, "truncate": truncate},
                       finally_=[zonedev.Check(no_longterm_pin, "longterm_pin_fast", "no_longterm_pin")],
                       opaque=[pm])


# --- seed 003: the 0-based proposal ------------------------------------------------------------------

@zonedev.scenario(
    mode="stateful",
    expect={"v4.18": "dax_mapping_lost", "v4.19..": "safe"},
    refs=["003_ede6d8706e8d37f1.txt", "F15", "2fa147bdbf67", "27674ef6c73f", "38607c62b3"])
def fsdax_gup_of_mapped(k):
    """Seed 003 (2021, "Remove extra ZONE_DEVICE page refcount"): the cleanup "caused xftests 413
    to fail with a warning".  generic/413 does direct I/O whose user buffer is a DAX mapping:
    GUP takes a reference on a mapped fsdax page, the I/O runs, the reference is put, while
    truncate waits for the page to go idle.  Does GUP of a mapped, otherwise idle fsdax page
    work, and does truncate see it go idle?

    Safe on every kernel with fsdax but v4.18, whose free path clears ->mapping of the page when
    the I/O's put takes it back to 1 (``dax_free_path``; fixed by 2fa147bdbf67, v4.19): 1-based until v6.14 (the mapped page rests at 1, GUP takes
    it to 2, the put back to 1 wakes truncate), and 0-based from v6.15, where the mapping itself
    holds a reference (38607c62b3) so GUP never meets a mapped page at 0.  The 2021 proposal made
    fsdax pages rest at 0 while mapped without a reference: GUP's ``try_grab_page`` on a page at
    0 is the WARN generic/413 hit (``scenarios/patches/remove_extra_refcount_2021.py`` on v5.17:
    ``get_on_free_page``).  27674ef6c73f (v5.18) merged the cleanup with fsdax left 1-based."""
    drv, page = _dax_page(k)
    pte = Var(page.pfn, "mm.pte[dax]")
    ptl = Lock("mm.ptl[dax]")

    def odirect():
        ptl.lock("follow_page_pte")
        mapped = pte.get("ptep_get") is not None
        got = mapped and k.try_grab_page(page, FOLL_GET)     # get_user_pages(FOLL_GET) under the PTL
        ptl.unlock("pte_unmap_unlock")
        if got:
            k.put_page(page)                                 # bio completion: put_page

    return zonedev.Run({"odirect": odirect, "truncate": _truncate(k, page, pte, ptl)}, opaque=[drv])
