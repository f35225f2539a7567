"""fs/dax.c and the filesystems' break-layouts wait (fs/xfs/xfs_file.c, fs/ext4/inode.c).

* ``dax_associate_entry``/``dax_disassociate_entry``: an fsdax page joins/leaves a file's
  mapping (``page->mapping``, ``page->index``).  Before v6.15 this takes no page reference (the
  PTE is a pfn mapping); from v6.15 (c_38607c62b3) the mapping of the page takes one, and
  ``folio->share`` counts shared associations.
* ``dax_layout_busy_page(pages)``: the first page that is not idle (refcount above
  ``k.fact("fsdax_idle_refcount")``: 1 before v6.15, 0 after).
* ``dax_wait_page_idle(page)``: ``___wait_var_event(&page->_refcount, idle)`` (v6.15:
  ``wait_var_event(page, dax_page_is_idle(page))``).  Its wake-up comes from the put that makes
  the page idle (``wake_up_var``); a put path that forgets it (F12, v5.18 ``gup_put_folio``)
  leaves the waiter asleep for good: the checker reports the hang, the REPL raises
  ``WouldBlockForever``.
* ``dax_break_layouts(pages)``: loop until no busy page remains (xfs_break_dax_layouts).

Installed by c_5fac7408d828 (v4.18).
"""

from __future__ import annotations


def dax_associate_entry(k, page, mapping, index: int = 0) -> None:
    func = "dax_associate_entry"
    k.set_page_field(page, "mapping", mapping, func)
    k.set_page_field(page, "index", index, func)


def dax_disassociate_entry(k, page, trunc: bool = True) -> None:
    func = "dax_disassociate_entry"
    idle = k.fact("fsdax_idle_refcount", 1)
    if trunc and page._refcount.peek() > idle:
        k.world.violate("dax_disassociate_busy_page", "WARN_ON_ONCE(trunc && page_ref_count(page) > 1)",
                        page.pfn, func)
    k.set_page_field(page, "mapping", None, func)
    k.set_page_field(page, "index", 0, func)


def dax_page_is_idle(k, page) -> bool:
    return k.page_ref_count(page, "dax_page_is_idle") <= k.fact("fsdax_idle_refcount", 1)


def dax_layout_busy_page(k, pages):
    """The first page of ``pages`` that is still busy, or None."""
    for page in pages:
        page = page.head
        if not k.dax_page_is_idle(page):
            return page
    return None


def dax_wait_page_idle(k, page) -> None:
    """``___wait_var_event(&page->_refcount, page_ref_count(page) == idle, ...)``."""
    idle = k.fact("fsdax_idle_refcount", 1)
    ref = page._refcount
    k.world.event("dax_wait_page_idle", page.pfn, "waiting", None, f"refcount == {idle}")
    k.page_waitqueue(page).wait_event(lambda: ref.value <= idle, (ref,), "___wait_var_event")


def dax_break_layouts(k, pages) -> None:
    """xfs_break_dax_layouts / ext4_break_layouts: wait until every page is idle."""
    while True:
        page = k.dax_layout_busy_page(pages)
        if page is None:
            return
        k.dax_wait_page_idle(page)


def fsdax_idle_without_wakeup(k, page, func: str) -> None:
    """A put made an fsdax page idle on a path that sends no wake-up (F12)."""
    k.world.violate("fsdax_waiter_never_woken",
                    "missing wake_up_var(&page->_refcount): a dax_layout_busy_page() waiter sleeps forever",
                    page.pfn, func)


FUNCTIONS = (dax_associate_entry, dax_disassociate_entry, dax_page_is_idle, dax_layout_busy_page,
             dax_wait_page_idle, dax_break_layouts, fsdax_idle_without_wakeup)
