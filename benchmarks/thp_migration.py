"""hmm-tests' ``benchmark_thp_migration`` on the model: ``python benchmarks/thp_migration.py
[--kernel newest] [--thp-order 3] [--rounds 5] [--page-ints 4]``.

The kernel test (tools/testing/selftests/mm/hmm-tests.c @00890d35dbe7, TEST_F_TIMEOUT 120 s)
maps buffers of 512 KiB, 1, 2, 4, 8, 16 and 256 MiB with and without MADV_HUGEPAGE, touches
them, does one warm-up sys->dev->sys round and then 5 timed rounds of HMM_DMIRROR_MIGRATE_TO_DEV
+ HMM_DMIRROR_MIGRATE_TO_SYS, and prints a table; it asserts only that each migration returns 0.
Here the sizes are the same multiples of the PMD (1/4, 1/2, 1, 2, 4, 8 and 128 PMDs) of the run's
HPAGE_PMD_ORDER; the times are the model's (Python), not a device's -- what the table shows is
the model's cost per page with and without THP migration (one compound entry per PMD versus
HPAGE_PMD_NR base entries), and that every round returns 0 with the device invariants intact.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from zonedev.linux.lib.test_hmm import HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS  # noqa: E402
from zonedev.linux.mm.huge_memory import MADV_HUGEPAGE  # noqa: E402
from zonedev.linux.mm.mmap import MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SHIFT, PROT_READ, PROT_WRITE  # noqa: E402
from zonedev.selftests.hmm_tests import hmm_buffer  # noqa: E402
from zonedev.selftests.runner import check_devices, setup_kernel  # noqa: E402
from zonedev.selftests.uapi import Process, hmm_dmirror_cmd_ioctl  # noqa: E402
from zonedev.sync import World, use_world  # noqa: E402

#: the kernel's sizes as fractions of its 2 MiB PMD
SIZES = [("512 KiB", 1, 4), ("1 MiB", 1, 2), ("2 MiB", 1, 1), ("4 MiB", 2, 1), ("8 MiB", 4, 1),
         ("16 MiB", 8, 1), ("256 MiB", 128, 1)]


def run_one(kernel: str, order: int, page_ints: int, npmd_num: int, npmd_den: int, use_thp: bool,
            rounds: int) -> tuple[float, float]:
    with use_world(World()):
        k, mod = setup_kernel(kernel, chunk_pages=max(64, (2 << order) * max(1, npmd_num)), page_ints=page_ints,
                              thp_order=order)
        p = Process(k)
        fd = p.open_dmirror(0)
        pmd = p.read_pmd_pagesize()
        size = pmd * npmd_num // npmd_den
        npages = size >> PAGE_SHIFT
        ptr = p.mmap(size + pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        a = (ptr + pmd - 1) & ~(pmd - 1)
        if use_thp:
            assert p.madvise(a, size, MADV_HUGEPAGE) == 0
        n = npages * page_ints
        p.write_buf(a, list(range(n)))
        b = hmm_buffer(ptr=a, mirror=[0] * n, size=size)

        def one_round():
            t0 = time.perf_counter()
            assert hmm_dmirror_cmd_ioctl(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages) == 0
            t1 = time.perf_counter()
            assert hmm_dmirror_cmd_ioctl(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages) == 0
            return t1 - t0, time.perf_counter() - t1
        one_round()                                            # warm-up
        if use_thp and size >= pmd:                            # the THP went to the device whole
            assert hmm_dmirror_cmd_ioctl(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages) == 0
            assert p.mm.peek_pte(a).huge == order, "THP not migrated as one folio"
            assert hmm_dmirror_cmd_ioctl(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages) == 0
        s2d = d2s = 0.0
        for _ in range(rounds):
            a_, b_ = one_round()
            s2d += a_
            d2s += b_
        assert p.read_buf(a, n) == list(range(n))
        p.munmap(ptr, size + pmd)
        p.close(fd)
        assert not k.world.violations, k.world.violations
        assert not check_devices(k, mod), check_devices(k, mod)
        return s2d / rounds * 1000, d2s / rounds * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="newest")
    ap.add_argument("--thp-order", type=int, default=3, help="HPAGE_PMD_ORDER of the run (kernel: 9)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (the kernel's 5)")
    ap.add_argument("--page-ints", type=int, default=4)
    ap.add_argument("--max-pmds", type=int, default=8, help="skip sizes above this many PMDs (256 MiB = 128)")
    args = ap.parse_args()
    print(f"benchmark_thp_migration on {args.kernel}, HPAGE_PMD_ORDER {args.thp_order} "
          f"({1 << args.thp_order} pages), {args.rounds} rounds, model milliseconds per round")
    print(f"{'size':>8} {'PMDs':>6} | {'s2d THP':>9} {'s2d base':>9} | {'d2s THP':>9} {'d2s base':>9}")
    for name, num, den in SIZES:
        if num / den > args.max_pmds:
            continue
        thp = run_one(args.kernel, args.thp_order, args.page_ints, num, den, True, args.rounds)
        base = run_one(args.kernel, args.thp_order, args.page_ints, num, den, False, args.rounds)
        print(f"{name:>8} {num / den:>6g} | {thp[0]:9.2f} {base[0]:9.2f} | {thp[1]:9.2f} {base[1]:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
