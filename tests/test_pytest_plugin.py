"""The pytest plugin: scenario x kernel items, skips with reasons, failures with the table and
the replay command; the zonedev_verdict fixture."""

import importlib.metadata

import pytest

pytest_plugins = ["pytester"]

SCENARIO = '''
import zonedev
from zonedev.linux.drivers.example import ExampleDriver

@zonedev.scenario(mode="stateful", expect={EXPECT})
def teardown3(k):
    """Two puts of a device-private page while memunmap_pages runs."""
    drv = ExampleDriver(k, "private", nr_pages=1)
    drv.probe()
    page, _ = drv.alloc()
    k.get_page(page)
    return zonedev.Run({"gup_user": lambda: k.put_page(page), "migration": lambda: k.put_page(page),
                        "memunmap": drv.remove}, opaque=[drv])
'''


def _plugin_args():
    eps = importlib.metadata.entry_points(group="pytest11")
    return [] if any(e.value == "zonedev.pytest_plugin" for e in eps) else ["-p", "zonedev.pytest_plugin"]


def test_items_per_kernel_and_a_wrong_expectation_fails_with_table_and_replay(pytester):
    pytester.makepyfile(lib=SCENARIO.replace("{EXPECT}", '{"v5.18": "safe", "v6.1": "safe"}'))
    r = pytester.runpytest(*_plugin_args(), "lib.py", "-v", "-p", "no:cacheprovider")
    r.stdout.fnmatch_lines(["*lib.py::teardown3?v5.18? FAILED*", "*lib.py::teardown3?v6.1? PASSED*"])
    out = r.stdout.str()
    assert "teardown3 on v5.18: expected safe, found use_after_free" in out
    assert "replay: zonedev replay " in out and "--kernel v5.18 --schedule " in out
    assert "memunmap" in out and "step  CPU 0: " in out    # the interleaving table
    r.assert_outcomes(passed=1, failed=1)


def test_kernels_option_skips_where_no_verdict_is_declared(pytester):
    pytester.makepyfile(lib=SCENARIO.replace("{EXPECT}", '{"v5.18": "use_after_free", "v6.1..": "safe"}'))
    r = pytester.runpytest(*_plugin_args(), "lib.py", "-rs", "-p", "no:cacheprovider",
                           "--zonedev-kernel", "v5.17,6.12")
    r.assert_outcomes(passed=1, skipped=1)
    assert "declares no verdict for v5.17" in r.stdout.str()


def test_bad_scenario_file_is_a_collection_error_naming_file_and_line(pytester):
    pytester.makepyfile(lib=SCENARIO.replace("{EXPECT}", '{"v6.1": "use_after_fre"}'))
    r = pytester.runpytest(*_plugin_args(), "lib.py", "-p", "no:cacheprovider")
    assert "lib.py:4: scenario teardown3: expected verdict names an unknown finding kind" in r.stdout.str()
    r.assert_outcomes(errors=1)


def test_fixture_for_driver_tests(pytester):
    pytester.makepyfile(lib=SCENARIO.replace("{EXPECT}", '{"v6.1": "safe"}'))
    pytester.makepyfile(test_driver='''
def test_uaf_on_v518(zonedev_verdict):
    res = zonedev_verdict("lib.py::teardown3", "v5.18", "use_after_free")
    assert res.exhaustive

def test_wrong(zonedev_verdict):
    zonedev_verdict("lib.py::teardown3", "v5.18", "safe")
''')
    r = pytester.runpytest(*_plugin_args(), "test_driver.py", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=1, failed=1)
    assert "expected safe, found use_after_free" in r.stdout.str()


def test_helper_modules_that_only_mention_the_decorator_are_not_collected(pytester):
    # a generator of scenario files (like tests/fuzz_cli_inputs.py): the decorator only in a string
    pytester.makepyfile(gen='TEMPLATE = """\\n@zonedev.scenario(expect={})\\ndef s(k): ...\\n"""\n')
    # a module with a top-level decorator line but no scenario left after import
    pytester.makepyfile(helper="import zonedev\n\ndef scenario(f):\n    return f\n\n@scenario\ndef s(k):\n    return None\n")
    r = pytester.runpytest(*_plugin_args(), "-p", "no:cacheprovider")
    assert r.ret == 5 and "error" not in r.stdout.str().lower()     # no tests collected, no error


def test_missing_kernel_function_skips_but_a_scenario_attribute_error_fails(pytester):
    """Only a kernel function the kernel does not have (NoKernelFunction) is a skip; an
    AttributeError of the scenario's own making is a failure, not hidden as one."""
    pytester.makepyfile(lib='''
import zonedev

@zonedev.scenario(expect={"v6.1": "safe"})
def needs_later_function(k):
    """Calls a function no kernel has."""
    k.folio_free_the_future(None)

@zonedev.scenario(expect={"v6.1": "safe"})
def scenario_bug(k):
    """A NULL dereference in the scenario itself."""
    page = None
    page.refcount
''')
    r = pytester.runpytest(*_plugin_args(), "lib.py", "-rs", "-p", "no:cacheprovider")
    r.assert_outcomes(skipped=1, failed=1)
    out = r.stdout.str()
    assert "has no kernel function folio_free_the_future()" in out
    assert "scenario_bug" in out and "could not run" in out
