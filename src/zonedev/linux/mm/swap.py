"""mm/swap.c and the include/linux/mm.h get/put helpers that no era changed in a way the model
cares about.  The era-dependent ``put_page``/``__put_page``/``folio_put``/``release_pages``
are installed by the patch modules that changed them (base.py, c_71389703839e.py,
c_27674ef6c73f.py, c_38607c62b3.py, ...).

``folio_get``/``folio_put``/``folio_try_get``/``try_get_page`` exist in the model in every era
so scenario code can use one spelling; before v5.16 they stand for ``get_page``/``put_page``/
``get_page_unless_zero`` on the head page (folios arrived in v5.16, ``try_get_page`` in v5.1).
"""

from __future__ import annotations


def folio_get(k, folio) -> None:
    """``folio_get()``: take a reference on the folio (``get_page`` on the head page before v5.16).
    Kernel: include/linux/mm.h, v5.16+ (get_page on the head before)."""
    k.get_page(folio)


def folio_put(k, folio) -> None:
    """``folio_put()``: drop a reference on the folio; the era's ``__folio_put`` at 0. Kernel:
    include/linux/mm.h, v5.16+ (put_page on the head before)."""
    k.put_page(folio)


def folio_put_refs(k, folio, refs: int) -> None:
    """``folio_put_refs()`` (v5.16+): drop ``refs`` references; free at 0.
    Kernel: include/linux/mm.h, v5.16+."""
    if k.page_ref_sub_and_test(folio, refs, "folio_put_refs"):
        k.__folio_put(folio)


def __folio_put(k, folio) -> None:
    """``__folio_put()`` (v5.16+): before v5.18 the same routing as ``__put_page``.
    Kernel: mm/swap.c, v5.16+."""
    k.__put_page(folio)


def try_get_page(k, page) -> bool:
    """``try_get_page()`` (v5.1+): fails (with a WARN) on a page whose count is <= 0.
    Kernel: include/linux/mm.h, v5.1+."""
    page = page.head
    if page._refcount.peek() <= 0:
        k.world.violate("get_on_free_page", "WARN_ON_ONCE(page_ref_count(page) <= 0)", page.pfn, "try_get_page")
        return False
    k.page_ref_inc(page, "try_get_page")
    return True


def folio_try_get(k, folio) -> bool:
    """``folio_try_get()`` (v5.16+; ``get_page_unless_zero`` before).
    Kernel: include/linux/page_ref.h, v5.16+."""
    return k.page_ref_add_unless(folio.head, 1, 0, "folio_try_get")


def put_pages_list(k, pages) -> None:
    """``put_pages_list()``: ``put_page`` on each page of the list. Kernel: mm/swap.c, v4.5+."""
    for page in pages:
        k.put_page(page)


def release_pages(k, pages) -> None:
    """``release_pages()`` (v4.5 shape): drop one reference on each, free those that reach 0.
    Kernel: mm/swap.c, v4.5+."""
    for page in pages:
        page = page.head
        if k.put_page_testzero(page, "release_pages"):
            k.__put_page(page)


FUNCTIONS = (folio_get, folio_put, folio_put_refs, __folio_put, try_get_page, folio_try_get, put_pages_list, release_pages)
