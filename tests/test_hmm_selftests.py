"""The hmm-tests.c port: every ported case, on every modelled kernel whose hmm-tests had it,
in both variants where the kernel has device-coherent memory.  Each case asserts the kernel
test's own values; afterwards the model's invariants (free lists, pgmap refs, calloc/cfree)
and the absence of violations are checked by ``run_case``."""

import pytest

from zonedev.selftests.hmm_tests import CASES, NOT_PORTED, PORTED
from zonedev.selftests.runner import plan, run_case, run_hmm, setup_kernel
from zonedev.sync import World, use_world

KERNELS = ["v5.17", "v5.18", "v6.0", "v6.1", "v6.15", "newest"]


def _params():
    out = []
    with use_world(World()):
        for kn in KERNELS:
            k, mod = setup_kernel(kn)
            for full, fixture, fn, variant, reason in plan(k, mod):
                if reason is None:
                    out.append(pytest.param(kn, full, id=f"{kn}-{full}"))
    return out


@pytest.mark.parametrize("kernel,case", _params())
def test_case(kernel, case):
    with use_world(World()):
        k, mod = setup_kernel(kernel)
        (item,) = [it for it in plan(k, mod) if it[0] == case]
        full, fixture, fn, variant, reason = item
        assert run_case(k, mod, full, fixture, fn, variant, 16) is None


def test_v61_and_newest_run_every_ported_case_in_both_variants():
    for kn, total in (("v6.1", 28), ("newest", 37)):      # hmm-tests.c S1 / S2 test counts
        results = run_hmm(kn, write=lambda s: None)
        assert len(results) == 2 * total
        ran = [r for r in results if r.status != "skip"]
        assert len(ran) == 2 * (len(PORTED) if kn == "newest" else len(PORTED) - 8)   # 8 S2-only THP cases
        assert all(r.status == "ok" for r in ran), [(r.name, r.reason) for r in ran if r.status != "ok"]
        assert all(r.reason.startswith("not ported: ") for r in results if r.status == "skip")


def test_ktap_output_numbering_and_skip_reasons():
    """kselftest numbering: fixture hmm (private, then coherent), then hmm2; S1 has 28 tests."""
    lines = []
    run_hmm("v6.0", write=lines.append)
    assert lines[0] == "TAP version 13"
    assert lines[1] == "1..56" and lines[2] == "# Starting 56 tests from 4 test cases."
    assert "ok 12 hmm.hmm_device_private.migrate" in lines
    assert "ok 13 hmm.hmm_device_private.migrate_fault" in lines
    rel = [l for l in lines if "hmm_device_private.migrate_release" in l and l.startswith("ok ")]
    assert rel == ["ok 14 hmm.hmm_device_private.migrate_release # SKIP no migrate_device_range()/"
                   "HMM_DMIRROR_RELEASE in this kernel (e778406b40db, v6.1)"]
    assert "ok 8 hmm.hmm_device_private.anon_write_huge" in lines
    assert "ok 9 hmm.hmm_device_private.anon_write_hugetlbfs # SKIP not ported: hugetlbfs is not modelled" in lines
    assert lines[-1] == "# Totals: pass:50 fail:0 xfail:0 xpass:0 skip:6 error:0"
    lines = []
    run_hmm("v5.18", variant="coherent", write=lines.append)
    assert all("# SKIP DEVICE_COHERENT not available" in l for l in lines if l.startswith("ok "))


def test_kernels_before_test_hmm_skip_everything():
    results = run_hmm("v5.7", write=lambda s: None)
    assert results and all(r.status == "skip" and "v5.8" in r.reason for r in results)


def test_full_size_migrate_matches_kernel_sizes():
    """One case at the kernel's own sizes: 1024-int pages, and the selftests' npages=1024 with
    256 MiB chunks would be slow; npages=64 with full 1024-int pages keeps the data path exact."""
    with use_world(World()):
        k, mod = setup_kernel("v6.1", chunk_pages=128, page_ints=1024)
        (item,) = [it for it in plan(k, mod, "private") if it[0].endswith(".migrate_fault")]
        assert run_case(k, mod, item[0], item[1], item[2], item[3], 64) is None


def test_cli_selftest_hmm():
    from click.testing import CliRunner

    from zonedev.cli import main
    r = CliRunner().invoke(main, ["selftest", "hmm", "--kernel", "v6.1", "--variant", "private"])
    assert r.exit_code == 0, r.output
    assert "ok 12 hmm.hmm_device_private.migrate\n" in r.output
    assert "# Totals: pass:26 fail:0" in r.output
    r = CliRunner().invoke(main, ["selftest", "hmm", "--kernel", "v9.9"])
    assert r.exit_code == 2 and "unknown kernel" in r.output


def test_newest_thp_cases_both_variants_ktap():
    """The S2 THP cases on newest through the KTAP runner, both variants (a subset: the whole
    port runs through ``zonedev selftest hmm --kernel newest``)."""
    lines = []
    names = ("migrate_anon_huge_fault", "migrate_partial_unmap_fault", "migrate_anon_huge_err")
    results = run_hmm("newest", write=lines.append, only=names)
    assert len(results) == 2 * len(names)
    assert all(r.status == "ok" for r in results), [(r.name, r.reason) for r in results]
    assert "ok 2 hmm.hmm_device_private.migrate_partial_unmap_fault" in lines
    assert lines[-1] == "# Totals: pass:6 fail:0 xfail:0 xpass:0 skip:0 error:0"
    lines = []
    run_hmm("newest", write=lines.append, only=("benchmark_thp_migration",))
    assert any("benchmark_thp_migration # SKIP not ported: a throughput benchmark" in l for l in lines)
