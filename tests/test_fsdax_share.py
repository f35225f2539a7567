"""Reflinked DAX blocks and ``folio->share`` (v6.15, fs/dax.c ``dax_associate_entry`` /
``dax_folio_put``): a block in two files is associated once per file, ``->mapping`` is cleared
when the second file maps it and stays NULL, ``->share`` counts the files, and the block leaves
the last file with ``->share`` at 0."""

from __future__ import annotations

import pytest

import zonedev
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.mm.mmap import MAP_SHARED, PROT_READ, PROT_WRITE


def _map(k, f):
    mm = k.mm_alloc()
    mm.mmap_lock.down_write()
    addr = k.do_mmap(mm, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f)
    mm.mmap_lock.up_write()
    return mm, addr


def _reflinked(kn):
    k = zonedev.kernel(kn)
    pm = ExampleDriver(k, "fsdax", nr_pages=2)
    pm.probe()
    sb = k.daxfs_mount(pm.pgmap)
    a = k.daxfs_create(sb, "a")
    k.daxfs_fallocate(a, 1)
    ma, xa = _map(k, a)
    k.dax_user_write(ma, xa, 7)
    b = k.daxfs_create(sb, "b")
    k.daxfs_reflink(a, b)
    mb, xb = _map(k, b)
    return k, pm.pgmap.pages[0], sb, (a, ma, xa), (b, mb, xb)


def share(page):
    """``folio->share`` is the ``->index`` word; meaningful while ``->mapping`` is NULL."""
    return page.index.peek()


@pytest.mark.parametrize("kn", ["v6.15", "newest"])
def test_two_files_share_one_block(kn):
    k, page, sb, (a, ma, xa), (b, mb, xb) = _reflinked(kn)
    assert page.mapping.peek() is a.i_mapping                    # one file: the not-shared branch
    assert k.dax_user_read(mb, xb) == 7                          # b maps the same block
    assert page.mapping.peek() is None and share(page) == 2      # dax_folio_make_shared, share++
    assert (page._refcount.peek(), page._mapcount.peek() + 1) == (2, 2)
    k.dax_user_write(mb, xb, 9)                                  # copy on write: b gets its own block
    assert k.dax_user_read(mb, xb) == 9 and k.dax_user_read(ma, xa) == 7
    assert b.i_blocks.peek()[0] != page.pfn and sb.shared.peek() == ()
    assert page.mapping.peek() is None and share(page) == 1      # b's association dropped
    mine = k.memmap[b.i_blocks.peek()[0]]
    assert mine.mapping.peek() is b.i_mapping and mine.index.peek() == 0
    k.daxfs_truncate(a, 0)                                       # the last file lets go
    assert share(page) == 0 and page.mapping.peek() is None
    assert page._refcount.peek() == 0 and page.pfn in sb.free.peek()
    assert k.world.violations == []


@pytest.mark.parametrize("kn", ["v6.15", "newest"])
def test_truncating_one_file_keeps_the_shared_block(kn):
    """Truncating the file that mapped the block first: ``dax_folio_put`` drops one share and
    keeps the folio; the block stays allocated for ``b`` and its data intact."""
    k, page, sb, (a, ma, xa), (b, mb, xb) = _reflinked(kn)
    k.dax_user_read(mb, xb)
    k.daxfs_truncate(a, 0)
    assert share(page) == 1 and page.pfn not in sb.free.peek() and sb.shared.peek() == ()
    assert k.dax_user_read(mb, xb) == 7
    k.daxfs_truncate(b, 0)
    assert share(page) == 0 and page.pfn in sb.free.peek()
    assert k.world.violations == []


def test_before_v6_15_the_last_association_wins():
    """v5.19-v6.14 had ``page->share`` too; the model does not: there the block belongs to the
    file that mapped it last (documented simplification), and nothing warns."""
    k, page, sb, (a, ma, xa), (b, mb, xb) = _reflinked("v6.2")
    k.dax_user_read(mb, xb)
    assert page.mapping.peek() is b.i_mapping
    k.daxfs_truncate(b, 0)
    assert page.pfn not in sb.free.peek() and k.dax_user_read(ma, xa) == 7
    assert k.world.violations == []
