"""Run the hmm-tests port on a modelled kernel and print KTAP the way kselftest does.

Order, names and lines as the kselftest harness prints them
(tools/testing/selftests/kselftest_harness.h, ``test_harness_run`` and ``__run_test``, v6.x):
``TAP version 13``, the plan, ``# Starting N tests from M test cases.`` (M: the fixture/variant
pairs with a test to run), then per test ``#  RUN           NAME ...``, a ``#      SKIP      reason``
line where the test skips (the ``SKIP()`` macro), ``#            OK  NAME`` or ``#          FAIL  NAME``
and the result line (``ok 12 hmm.hmm_device_private.migrate``, ``ok 8 NAME # SKIP reason``); at the
end ``# PASSED: P / N tests passed.`` (a skip counts as passed, as ``__test_passed`` has it) and
``# Totals: pass:... skip:... error:0`` (``ksft_print_cnts``).  Fixture ``hmm`` with its variants
(``hmm_device_private``, ``hmm_device_coherent``) runs every ``hmm`` test, then fixture ``hmm2``.

Like ``test_hmm.sh``, the module is loaded once for the whole run (free lists and chunks carry
over between cases) and each case runs in its own process that ends with teardown (close) and
exit.  After every case the model checks what the kernel tests cannot see (``check_devices``):
every device page back on its free list at the kernel's free refcount, pgmap references equal
to the idle count plus the pages in use, and ``calloc - cfree`` equal to the pages in use.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

from ..sync import WouldBlockForever, use_world
from ..sync.world import World
from .hmm_tests import ABSENT, CASES, NOT_PORTED, Ctx
from .uapi import Process

VARIANTS = ("private", "coherent")


@dataclass
class Result:
    number: int
    name: str
    status: str               # "ok", "not ok", "skip"
    reason: str = ""
    seconds: float = 0.0


def build_kernel(name: str):
    import zonedev
    from ..patches import SERIES
    if "base_mm" in SERIES:
        return zonedev.kernel(name)
    return _dev_kernel(name)


def _dev_kernel(name: str):
    """Fallback while the shared SERIES does not yet list the mm/HMM modules: every patch module
    on disk, ordered by version (stable by file name)."""
    import importlib
    import pkgutil
    from .. import patches as P
    from ..linux.kernel import kernel_class
    mods = []
    for info in pkgutil.iter_modules(P.__path__):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{P.__name__}.{info.name}").PATCH)
    limit = P.version_key(name)
    order = {"base": 0, "base_mm": 1}
    chosen = sorted((p for p in mods if P.version_key(p.version) <= limit),
                    key=lambda p: (P.version_key(p.version), order.get(p.commit.split("-")[0], 2) if p.version == "v4.5" else 2))
    chosen.sort(key=lambda p: (P.version_key(p.version), 0 if p.commit == "v4.5-base" else 1 if p.commit == "v4.5-mm" else 2))
    return kernel_class(name + "-dev", chosen)()


#: HPAGE_PMD_ORDER of a selftest run (the kernel's is 9): 8-page THPs keep the THP cases fast
THP_ORDER = 3


def setup_kernel(name: str, chunk_pages: int = 64, page_ints: int = 16, thp_order: int = THP_ORDER):
    k = build_kernel(name)
    k.page_ints = page_ints
    k.thp_pmd_order = thp_order
    if not k.fact("dmirror"):
        return k, None
    mod = k.hmm_dmirror_init(chunk_pages, True)
    return k, mod


def variant_skip(k, mod, variant: str) -> str | None:
    if mod is None:
        return "lib/test_hmm.c (the dmirror driver) and hmm-tests first appear in v5.8 (b2ef9f5a5cb3)"
    if variant == "coherent" and len(mod.devices) < 4:
        return "DEVICE_COHERENT not available: MEMORY_DEVICE_COHERENT is v6.0 (f25cbb7a95a2)"
    return None


def check_devices(k, mod) -> list[str]:
    """The invariants the selftests cannot see, at steady state (no case running)."""
    problems = []
    zd_init = k.fact("zd_alloc") == "zone_device_page_init"
    for mdev in mod.devices:
        in_use_total = 0
        free = set()
        # free_folios (v6.19 dmirror): PMD-order runs
        for lst, nr in ((mdev.free_pages, 1), (mdev.__dict__.get("free_folios"), k.hpage_pmd_nr())):
            p = lst.peek() if lst is not None else None
            seen = 0
            while p is not None and seen < 1 << 20:
                free.update(range(p.pfn, p.pfn + nr))
                p = p.zone_device_data.peek()
                seen += 1
        for chunk in mdev.devmem_chunks.peek():
            start, n = chunk.pagemap.ranges[0]
            in_use = 0
            for pfn in range(start, start + n):
                page = k.pfn_to_page(pfn)
                rc = page._refcount.peek()
                if pfn in free:
                    if rc != chunk.free_refcount:
                        problems.append(f"{mdev.name}: free page {pfn:#x} has refcount {rc}, "
                                        f"the kernel's free value is {chunk.free_refcount}")
                else:
                    in_use += 1
                    problems.append(f"{mdev.name}: page {pfn:#x} not back on the free list "
                                    f"(refcount {rc}, mapcount {page._mapcount.peek() + 1})")
            if chunk.pagemap.ref is not None and chunk.idle_ref is not None:
                want = chunk.idle_ref + (in_use if zd_init else 0)
                got = chunk.pagemap.ref.peek()
                if got != want:
                    problems.append(f"{mdev.name}: pgmap {chunk.pagemap.name} percpu_ref {got}, "
                                    f"expected {want} ({in_use} pages in use)")
            in_use_total += in_use
        d = mdev.calloc.peek() - mdev.cfree.peek() - mdev.removed_frees
        if d != in_use_total:
            problems.append(f"{mdev.name}: calloc - cfree = {d} (less {mdev.removed_frees} frees of removed chunks), "
                            f"{in_use_total} pages in use")
    return problems


def run_case(k, mod, name: str, fixture: str, fn, variant: str, npages: int) -> str | None:
    """Run one case in a fresh process; None if it passed, else the failure text."""
    proc = Process(k)
    t = Ctx(k, proc, variant, fixture, npages)
    try:
        if fixture == "hmm":
            t.fd = proc.open_dmirror(0 if variant == "private" else 2)
        else:
            t.fd0 = proc.open_dmirror(0 if variant == "private" else 2)
            t.fd1 = proc.open_dmirror(1 if variant == "private" else 3)
        fn(t)
        for fd in list(proc.fds):            # FIXTURE_TEARDOWN: close() == 0
            if proc.close(fd) != 0:
                return "close() != 0"
        proc.exit()
    except AssertionError as e:
        proc.exit() if proc.alive else None
        return str(e)
    except WouldBlockForever as e:
        return f"hang: {e}"
    except OSError as e:
        return f"unexpected error {e}"
    violations = [str(v) for v in k.world.violations]
    problems = check_devices(k, mod)
    if violations or problems:
        return "; ".join(violations + problems)
    return None


def plan(k, mod, variant: str | None = None):
    """[(test name, fixture, function, skip reason or None)] in kselftest order."""
    out = []
    for fixture in ("hmm", "hmm2"):
        for v in VARIANTS:
            if variant and v != variant:
                continue
            vskip = variant_skip(k, mod, v)
            for name, fx, fn, need in CASES:
                if fx != fixture or need(k) == ABSENT:
                    continue
                full = f"{fixture}.{fixture}_device_{v}.{name}"
                reason = vskip or need(k)
                if fn is None and not vskip:
                    reason = "not ported: " + dict(NOT_PORTED)[name]
                out.append((full, fixture, fn, v, reason))
    return out


def list_cases(kernel: str, chunk_pages: int = 64, page_ints: int = 16) -> list[str]:
    """The lines ``hmm-tests -l`` prints (``test_harness_list_tests``): a ``# FIXTURE VARIANT TEST``
    header, then per fixture its name on the first row, its variants and its tests side by side
    (the harness walks the two lists together), a dashed line between fixtures.  The tests are
    the ones this kernel's hmm-tests.c has."""
    with use_world(World()):
        k = build_kernel(kernel)
    out = [f"{'# FIXTURE':<20} {'VARIANT':<25} TEST"]
    for n, fixture in enumerate(("hmm", "hmm2")):
        tests = [name for name, fx, _fn, need in CASES if fx == fixture and need(k) != ABSENT]
        variants = [f"{fixture}_device_{v}" for v in VARIANTS]
        if n:
            out.append("-" * 80)
        for i in range(max(len(tests), len(variants))):
            out.append(f"{fixture if i == 0 else '':<20} {variants[i] if i < len(variants) else '':<25} "
                       f"{tests[i] if i < len(tests) else ''}".rstrip())
    return out


def run_hmm(kernel: str, variant: str | None = None, npages: int = 16, chunk_pages: int = 64,
            page_ints: int = 16, write=print, only: str | tuple | list | None = None,
            thp_order: int = THP_ORDER) -> list[Result]:
    """Run the port on ``kernel``; write KTAP lines with ``write``; return the results.
    ``only``: the test names to run (``-t``; a name or several)."""
    results: list[Result] = []
    wanted = (only,) if isinstance(only, str) else tuple(only or ())
    with use_world(World()) as world:
        k, mod = setup_kernel(kernel, chunk_pages, page_ints, thp_order)
        items = plan(k, mod, variant)
        if wanted:
            items = [it for it in items if it[0].rsplit(".", 1)[1] in wanted]
        cases = len({it[0].rsplit(".", 1)[0] for it in items})
        write("TAP version 13")
        write(f"1..{len(items)}")
        write(f"# Starting {len(items)} tests from {cases} test cases.")
        write(f"# zonedev: hmm-tests on {k.name} (npages={npages}, chunk={chunk_pages} pages, "
              f"{page_ints} ints/page, {1 << thp_order}-page THPs)")
        for i, (full, fixture, fn, v, reason) in enumerate(items, 1):
            write(f"#  RUN           {full} ...")
            if reason:
                write(f"#      SKIP      {reason}")
                write(f"#            OK  {full}")
                write(f"ok {i} {full} # SKIP {reason}")
                results.append(Result(i, full, "skip", reason))
                continue
            t0 = time.perf_counter()
            nviol = len(world.violations)
            try:
                failure = run_case(k, mod, full, fixture, fn, v, npages)
            except Exception as e:        # a model bug: report it, keep going
                failure = "model exception: " + "".join(traceback.format_exception_only(type(e), e)).strip()
            dt = time.perf_counter() - t0
            if failure is None:
                write(f"#            OK  {full}")
                write(f"ok {i} {full}")
                results.append(Result(i, full, "ok", seconds=dt))
            else:
                for line in failure.split("; "):
                    write(f"# {full}: {line}")
                write(f"#          FAIL  {full}")
                write(f"not ok {i} {full}")
                results.append(Result(i, full, "not ok", failure, dt))
                del world.violations[nviol:]
        unload_failed = False
        if mod is not None and not wanted:
            # test_hmm.sh ends with `modprobe -r test_hmm`: remove every chunk (memunmap_pages
            # waits for the pgmap references) -- the suite's only implicit leak check.
            nviol = len(world.violations)
            try:
                k.hmm_dmirror_exit(mod)
                bad = [str(v) for v in world.violations[nviol:]]
                unload_failed = bool(bad)
                write("# modprobe -r test_hmm: " + ("; ".join(bad) if bad else "ok, every pgmap drained"))
            except WouldBlockForever as e:
                unload_failed = True
                write(f"# modprobe -r test_hmm: hang: {e}")
        npass = sum(r.status == "ok" for r in results)
        nfail = sum(r.status == "not ok" for r in results)
        nskip = sum(r.status == "skip" for r in results)
        ran = len(results)
        if unload_failed:
            results.append(Result(len(results) + 1, "modprobe -r test_hmm", "not ok", "unload"))
        failed = nfail or unload_failed
        write(f"# {'FAILED' if failed else 'PASSED'}: {npass + nskip} / {ran} tests passed.")
        nported = sum(r.reason.startswith("not ported") for r in results)
        if nported:
            write(f"# {nported} skipped as not ported (hugetlbfs is not modelled; the THP benchmark is "
                      "benchmarks/thp_migration.py)")
        write(f"# Totals: pass:{npass} fail:{nfail + unload_failed} xfail:0 xpass:0 skip:{nskip} error:0")
    return results
