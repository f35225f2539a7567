"""eddb1c228f79 "mm/gup: introduce pin_user_pages*() and FOLL_PIN" (v5.6, John Hubbard).

[kernel_eras §6.2, M12: CONFIRMED id from a Fixes: tag; v5.6 INFERRED]  ``pin_user_pages*()``
set FOLL_PIN; in this first step a pin is counted exactly like FOLL_GET (one page reference)
and ``unpin_user_page()`` is ``put_page()`` (the put_user_page rename).  Exact pin counting
comes with 3faa52c03f44 (v5.7).

Model: ``pin_user_page(page)`` = the page-level half of ``pin_user_pages()`` on one page.
"""

from ..linux.include.mm import FOLL_GET, FOLL_PIN
from ._patch import Patch

PATCH = Patch(
    commit="eddb1c228f79", title="mm/gup: introduce pin_user_pages*() and FOLL_PIN",
    version="v5.6", confidence="CONFIRMED",
    replaces="DMA users took plain get_user_pages() references, indistinguishable from other references",
)


@PATCH.define
def try_grab_page(k, page, flags: int = FOLL_GET) -> bool:
    """``try_grab_page()``: FOLL_GET and the new FOLL_PIN both take a plain ``get_page`` reference
    (pins are not counted apart yet).  Kernel: mm/gup.c, as eddb1c228f79 "mm/gup: introduce
    pin_user_pages*() and FOLL_PIN" (v5.6) has it."""
    if flags & (FOLL_GET | FOLL_PIN):
        k.get_page(page)
    return True


@PATCH.define
def pin_user_page(k, page) -> bool:
    """A FOLL_PIN grab of one page, what ``pin_user_pages`` does per page.  Kernel: mm/gup.c, as
    eddb1c228f79 "mm/gup: introduce pin_user_pages*() and FOLL_PIN" (v5.6) has it."""
    return k.try_grab_page(page, FOLL_PIN)


@PATCH.define
def unpin_user_page(k, page) -> None:
    """``unpin_user_page()``: ``put_page`` (a pin is a plain reference in v5.6).  Kernel: mm/gup.c,
    as eddb1c228f79 "mm/gup: introduce pin_user_pages*() and FOLL_PIN" (v5.6) has it."""
    k.put_page(page)


@PATCH.define
def unpin_user_pages(k, pages) -> None:
    """``unpin_user_pages()``: ``unpin_user_page`` on each page.  Kernel: mm/gup.c, as eddb1c228f79
    "mm/gup: introduce pin_user_pages*() and FOLL_PIN" (v5.6) has it."""
    for page in pages:
        k.unpin_user_page(page)
