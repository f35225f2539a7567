"""mm/gup.c: page-level reference taking for GUP (``try_grab_page``/``try_grab_folio``), the
FOLL_PIN accounting and its undo (``unpin_user_page(s)``, ``gup_put_folio``).

The page-table walk (``get_user_pages*``) is in ``linux/mm/gup_user.py`` (the HMM/mm model) and
calls these.  Era versions are installed by patch modules:

* base (v4.5-v5.5): ``try_grab_page`` = FOLL_GET only (``get_page``);
* c_eddb1c228f79 (v5.6): ``pin_user_pages*()``/FOLL_PIN introduced; a pin is a plain reference
  and ``unpin_user_page`` is ``put_page``;
* c_3faa52c03f44 (v5.7): a FOLL_PIN on a small page adds ``GUP_PIN_COUNTING_BIAS`` (1024);
  on a compound page 1 plus ``hpage_pinned_refcount``/``_pincount``; unpin on a devmap-managed
  page goes through ``__unpin_devmap_managed_user_page`` (1-based rule);
* c_d8ddc099c6b3 (v5.18): ``try_grab_folio``/``gup_put_folio``; the unpin of an fsdax page
  skips the 2->1 wake-up (F12) until Muchun Song's fix;
* c_38607c62b3 (v6.15): no devmap special case left.

``pin_user_page(k, page)`` is the model's one-page ``pin_user_pages()``:
``try_grab_page(page, FOLL_PIN)`` after the page-table walk found ``page``.
"""

from __future__ import annotations

from ..include.mm import FOLL_GET, FOLL_PIN


def try_grab_page(k, page, flags: int = FOLL_GET) -> bool:
    """``try_grab_page()`` before FOLL_PIN existed: FOLL_GET takes a ``get_page`` reference.
    Kernel: mm/gup.c, v5.7 (3faa52c03f44) name; the v4.5-v5.5 FOLL_GET behaviour."""
    if flags & (FOLL_GET | FOLL_PIN):
        k.get_page(page)
    return True


def get_user_page_ref(k, page) -> None:
    """What GUP did to a page it returned before FOLL_PIN (``get_page``).  Kernel: mm/gup.c, v4.5-v5.5."""
    k.try_grab_page(page, FOLL_GET)


FUNCTIONS = (try_grab_page, get_user_page_ref)
