"""The seed-thread scenarios (scenarios/seeds.py) hold their declared answers, and each what-if
patch of scenarios/patches/ changes exactly the cells its docstring names."""

from pathlib import Path

import pytest
from click.testing import CliRunner

import zonedev
from zonedev.cli import main
from zonedev.linux.drivers.example import ExampleDriver
from zonedev.linux.include.mm_types import PG_zd_uncharged
from zonedev.patches import load_patch_file
from zonedev.rt.scenario import load_scenarios
from zonedev.sync import World, use_world

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "scenarios" / "seeds.py"
PATCHES = ROOT / "scenarios" / "patches"


@pytest.fixture(scope="module")
def sc():
    return load_scenarios(SEEDS)


def kinds(res) -> frozenset:
    assert res.verdict != "error", res.summary()
    return frozenset(f.kind for f in res.findings)


def run(scenario, kernel, patches=()):
    return zonedev.check(scenario, kernel, patches=[str(p) for p in patches], minimize=False, tables=False)


# a kernel on each side of every change the expectations declare
REPRESENTATIVE = {
    "page_free_at_one": ["v4.12", "v4.14", "v5.18", "v6.1"],
    "page_free_vs_memunmap": ["v4.5", "v4.16", "v5.0", "v5.6", "v5.18", "v6.1"],
    "pgmap_ref_per_page": ["v4.5", "v4.12", "v5.2", "v5.18"],
    "dax_free_path": ["v4.18", "v4.19", "v5.6", "v6.15"],
    "fsdax_gup_of_mapped": ["v4.18", "v5.17", "v6.15"],
    "longterm_pin_fast": ["v4.18", "v5.2", "v6.15"],
}


@pytest.mark.parametrize("name,kernel", [(n, k) for n, ks in REPRESENTATIVE.items() for k in ks])
def test_seed_scenario_holds_its_expectation(sc, name, kernel):
    s = sc[name]
    res = run(s, kernel)
    assert res.exhaustive
    assert kinds(res) == s.expected(kernel), f"{name} on {kernel}: {res.summary()}"


def test_every_seed_scenario_cites_its_seed_and_covers_newest(sc):
    seeds = {p.name for p in (ROOT.parent / "shared" / "seeds").glob("*.txt")} or None
    for name in REPRESENTATIVE:
        s = sc[name]
        cited = [r for r in s.refs if r.endswith(".txt")]
        assert cited, name
        if seeds:
            assert set(cited) <= seeds, name
        assert s.applies("newest") and s.doc
    assert set(REPRESENTATIVE) == set(sc)


# what each patch's docstring says the matrix shows: (patch, kernel, scenario, before, after)
PATCH_EFFECTS = [
    ("hmm_free_hook_2016", "v4.5", "page_free_at_one", {"page_free_never_called"}, {"page_free_twice"}),
    ("hmm_free_hook_2016", "v4.5", "page_free_vs_memunmap", {"page_free_never_called", "use_after_free"},
     {"use_after_free"}),
    ("single_reference_2017", "v4.5", "pgmap_ref_per_page",
     {"hang", "percpu_ref_underflow", "percpu_ref_use_after_exit", "use_after_free"}, {"use_after_free"}),
    ("single_reference_2017", "v4.5", "page_free_at_one", {"page_free_never_called"}, {"page_free_never_called"}),
    ("devmap_private_cleanup_2019", "v5.3", "dax_free_path", {"dax_page_uncharged"}, set()),
    # v5.3/v5.17: the teardown put can also drain the pgmap and let memunmap_pages return while a
    # user's 2 -> 1 put still runs page_free (use_after_free; mm/memremap.c __put_devmap_managed_page)
    ("devmap_private_cleanup_2019", "v5.3", "page_free_vs_memunmap", {"page_free_while_referenced", "use_after_free"},
     {"page_free_while_referenced", "use_after_free"}),
    ("remove_extra_refcount_2021", "v5.17", "fsdax_gup_of_mapped", set(), {"get_on_free_page"}),
    ("remove_extra_refcount_2021", "v5.17", "dax_free_path", set(), {"get_on_free_page"}),
    ("remove_extra_refcount_2021", "v5.17", "page_free_vs_memunmap", {"page_free_while_referenced", "use_after_free"},
     {"use_after_free"}),
    ("remove_extra_refcount_2021", "v5.17", "pgmap_ref_per_page", set(), {"get_on_free_page"}),
    ("remove_extra_refcount_2021", "v5.17", "page_free_at_one", set(), set()),
]


@pytest.mark.parametrize("patch,kernel,name,before,after", PATCH_EFFECTS)
def test_patch_changes_exactly_the_documented_cell(sc, patch, kernel, name, before, after):
    path = PATCHES / f"{patch}.py"
    p = load_patch_file(path)
    assert p.seed and p.version == kernel
    doc = path.read_text()
    assert f"``{name}`` on {kernel}" in doc          # the docstring names the cell it changes
    assert kinds(run(sc[name], kernel)) == before
    assert kinds(run(sc[name], kernel, [path])) == after


def test_single_reference_on_v45_is_v412(sc):
    """The 2017 change is the only patch between v4.5 and v4.12: the patched row equals v4.12's."""
    path = PATCHES / "single_reference_2017.py"
    for name in ("page_free_at_one", "page_free_vs_memunmap", "pgmap_ref_per_page"):
        assert kinds(run(sc[name], "v4.5", [path])) == kinds(run(sc[name], "v4.12")), name


def test_patch_on_the_command_line():
    r = CliRunner().invoke(main, ["check", f"{SEEDS}::page_free_at_one", "--kernel", "v4.5",
                                  "--patch", str(PATCHES / "hmm_free_hook_2016.py")])
    assert r.exit_code == 1, r.output
    first = r.output.splitlines()[0]
    assert "v4.5+hmm-v13-04of" in first and "page_free_twice" in first
    assert "--patch" in r.output and "hmm_free_hook_2016.py" in r.output    # the replay command keeps it


# --- the two observables seed 001 needed ----------------------------------------------------------

def _dax_put_after_gup(kernel):
    """An fsdax page in a file; a GUP user takes a reference and drops it (in a world of its own)."""
    with use_world(World()):
        k = zonedev.kernel(kernel)
        drv = ExampleDriver(k, "fsdax", nr_pages=1)
        drv.probe()
        page, _ = drv.alloc()
        k.get_page(page)
        k.put_page(page)
    return k, page, drv


def test_v418_free_path_makes_a_dax_page_forget_its_file():
    k, page, drv = _dax_put_after_gup("v4.18")
    assert [v.kind for v in k.world.violations] == ["dax_mapping_lost"]
    assert page.mapping.peek() is None
    k, page, drv = _dax_put_after_gup("v4.19")         # 2fa147bdbf67
    assert k.world.violations == [] and page.mapping.peek() == drv.mapping


@pytest.mark.parametrize("kernel,uncharged", [("v5.3", True), ("v5.6", False), ("v6.15", False)])
def test_memcg_uncharge_of_a_dax_page_is_recorded(kernel, uncharged):
    k, page, _ = _dax_put_after_gup(kernel)
    assert bool(page.flags.bits >> PG_zd_uncharged & 1) is uncharged
    assert k.world.violations == []                      # a no-op in the kernel: not a violation


def test_longterm_pin_fast_finds_a_fast_path_without_the_devmap_bail(sc, tmp_path):
    """The scenario can fail: on v6.2, a GUP-fast that decides by the folio alone (v6.15's rule,
    before fsdax folios were marked not long-term pinnable) hands back the long-term pin."""
    patch = tmp_path / "no_devmap_bail.py"
    patch.write_text(
        "import zonedev\n"
        "from zonedev.linux.include.mm import FOLL_LONGTERM, FOLL_PIN\n"
        "PATCH = zonedev.Patch(commit='feedface0002', title='gup-fast: no devmap bail (planted)', version='v6.2')\n"
        "\n"
        "@PATCH.define\n"
        "def gup_fast(k, mm, start, nr_pages, gup_flags):\n"
        "    keep = []\n"
        "    mm.gup_fast_irqs_off.down_read('local_irq_save')\n"
        "    pages = k.gup_pte_range(mm, start, nr_pages, gup_flags & ~FOLL_LONGTERM)\n"
        "    mm.gup_fast_irqs_off.up_read('local_irq_restore')\n"
        "    for p in pages:\n"
        "        if gup_flags & FOLL_LONGTERM and not k.is_longterm_pinnable_page(p):\n"
        "            k.unpin_user_page(p) if gup_flags & FOLL_PIN else k.put_page(p)\n"
        "        else:\n"
        "            keep.append(p)\n"
        "    return keep\n")
    assert kinds(run(sc["longterm_pin_fast"], "v6.2", [patch])) == {"longterm_pin_fast"}


# each boundary of the declared expectations is the commit the docstrings name
BOUNDARIES = [
    ("page_free_at_one", "v4.14", "v4.12", "7b2d55d2c893"),
    ("page_free_vs_memunmap", "v4.20", "v5.0", "a95c90f1e2c2"),
    ("page_free_vs_memunmap", "v6.1", "v6.0", "0dc45ca1ce18"),
    ("pgmap_ref_per_page", "v5.2", "v5.0", "50f44ee7248a"),
    ("pgmap_ref_per_page", "v5.17", "v5.18", "27674ef6c73f"),
    ("dax_free_path", "v4.19", "v4.18", "2fa147bdbf67"),
    ("dax_free_path", "v5.6", "v5.3", "429589d647e2"),
    ("dax_free_path", "v6.2", "v6.15", "38607c62b3"),
]


@pytest.mark.parametrize("name,good,bad,commit", BOUNDARIES)
def test_bisect_names_the_commit_of_each_boundary(sc, name, good, bad, commit):
    from zonedev.rt.bisect import bisect
    res = bisect(sc[name], good, bad)
    assert res.changes and res.changes[0][1].commit.startswith(commit)
    assert commit in sc[name].refs
