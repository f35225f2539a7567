"""``zonedev selftest hmm --kernel K [--variant private|coherent]``: the kernel's HMM selftests
(tools/testing/selftests/mm/hmm-tests.c) run on the modelled kernel, KTAP output like kselftest.

Exit status 0 when every case that ran passed (skips included), 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import sys

import click


@click.group(name="selftest")
def command() -> None:
    """Run the kernel's own selftests on the model.

    \b
    Examples:
      zonedev selftest hmm --kernel v6.1
      zonedev selftest hmm -l"""


@command.command(name="hmm")
@click.option("--kernel", "-k", "kernel", default="newest", show_default=True,
              help="a kernel version (6.12, 6.1.0-56-amd64) or modelled name (`zonedev kernels`)")
@click.option("--variant", type=click.Choice(["private", "coherent"]), default=None,
              help="only the hmm_device_private or hmm_device_coherent variants")
@click.option("--npages", type=int, default=16, show_default=True,
              help="buffer size in pages (the kernel's HMM_BUFFER_SIZE is 1024 pages)")
@click.option("--chunk-pages", type=int, default=64, show_default=True,
              help="dmirror chunk size in pages (the kernel's DEVMEM_CHUNK_SIZE is 65536); a coherent "
                   "device has one fixed chunk, so keep --npages at most this")
@click.option("--page-ints", type=int, default=16, show_default=True,
              help="ints per page kept as data (a 4 KiB page holds 1024)")
@click.option("--thp-order", type=int, default=3, show_default=True,
              help="HPAGE_PMD_ORDER of the run (the kernel's is 9: 2 MiB THPs of 512 pages)")
@click.option("--test", "-t", "only", multiple=True, metavar="NAME",
              help="run only this test (e.g. migrate_fault); repeatable, as the harness's -t")
@click.option("--list", "-l", "list_only", is_flag=True,
              help="list the fixtures, variants and tests, as the harness's -l, and run nothing")
def hmm(kernel: str, variant: str | None, npages: int, chunk_pages: int, page_ints: int, only: tuple,
        list_only: bool = False, thp_order: int = 3) -> None:
    """hmm-tests.c cases on the dmirror model (lib/test_hmm.c), KTAP output as kselftest prints it.

    \b
    Examples:
      zonedev selftest hmm --kernel v6.1
      zonedev selftest hmm -k 6.12 --variant private -t migrate_fault
      zonedev selftest hmm -l"""
    from ..patches import UnknownKernel, resolve
    from ..selftests.hmm_tests import CASES, NOT_PORTED
    from ..selftests.runner import run_hmm
    from ._errors import fail
    try:
        r = resolve(kernel)
    except UnknownKernel as e:
        fail(f"--kernel: {e}")
    if npages < 7 or npages > 4096:
        fail("--npages: need 7 <= --npages <= 4096")
    if not 1 <= page_ints <= 1024:
        fail("--page-ints: need 1 <= --page-ints <= 1024")
    if chunk_pages < 8 or chunk_pages > 65536:
        fail("--chunk-pages: need 8 <= --chunk-pages <= 65536")
    if not 1 <= thp_order <= 9:
        fail("--thp-order: need 1 <= --thp-order <= 9 (a PMD maps at most one page-table page)")
    if chunk_pages < 2 << thp_order:
        fail(f"--chunk-pages: a THP run needs chunks of at least two THPs ({2 << thp_order} pages)")
    known = list(dict.fromkeys([c[0] for c in CASES] + [n for n, _ in NOT_PORTED]))
    for name in only:
        if name not in known:
            fail(f"--test: no case {name!r} in hmm-tests (cases: {', '.join(known)})")
    kernel = r.name
    if list_only:
        from ..selftests.runner import list_cases
        for line in list_cases(kernel):
            click.echo(line)
        return
    if only:
        from ..selftests.runner import build_kernel
        from ..selftests.hmm_tests import ABSENT
        from ..sync import World, use_world
        with use_world(World()):
            k = build_kernel(kernel)
        present = {c[0] for c in CASES if c[3](k) != ABSENT}
        for name in only:
            if name not in present:
                fail(f"--test: {kernel}'s hmm-tests has no case {name!r} (it came in a later kernel)")
    if r.note:
        click.echo(f"# zonedev: {r.note}")
    results = run_hmm(kernel, variant, npages, chunk_pages, page_ints, write=click.echo, only=only,
                      thp_order=thp_order)
    sys.exit(1 if any(r.status == "not ok" for r in results) else 0)
