"""Expected verdicts per kernel, declared in scenarios, checked when the file loads."""

import pytest

from zonedev.patches import KERNELS
from zonedev.rt.scenario import ScenarioFileError, load_scenarios

HEAD = "import zonedev\n\n"


def _file(tmp_path, expect, name="s.py"):
    f = tmp_path / name
    f.write_text(HEAD + f"@zonedev.scenario(expect={expect}, refs=['F8'])\ndef s(k):\n    return zonedev.Run([])\n")
    return f


def test_ranges_cover_modelled_kernels(tmp_path):
    sc = load_scenarios(_file(tmp_path, '{"v5.18..v6.0": "use_after_free", "v6.1..": "safe"}'))["s"]
    assert list(sc.expect) == KERNELS[KERNELS.index("v5.18"):]
    assert sc.expected("v5.19") == {"use_after_free"} and sc.expected("newest") == frozenset()
    assert sc.applies("v6.2") and not sc.applies("v5.17") and sc.expected("v5.17") is None
    assert sc.refs == ["F8"]


def test_versions_as_keys_and_kind_lists(tmp_path):
    sc = load_scenarios(_file(tmp_path, '{"..5.17.3": ["hang", "leak"], "6.12": "safe"}'))["s"]
    assert sc.expected("v4.5") == {"hang", "leak"} and sc.expected("v6.2") == frozenset()


@pytest.mark.parametrize("expect,why", [
    ('{"v9.9": "safe"}', "unknown kernel"),
    ('{"v6.1": "use_after_fre"}', "unknown finding kind 'use_after_fre'"),
    ('{"v6.1..": "safe", "newest": "hang"}', "both cover newest"),
    ('{"v6.1..v5.18": "safe"}', "is empty"),
    ('{"v6.1": 3}', "say 'safe'"),
    ('{}', "non-empty"),
])
def test_bad_expectations_name_file_and_line(tmp_path, expect, why):
    f = _file(tmp_path, expect, name=f"bad{abs(hash(expect))}.py")
    with pytest.raises(ScenarioFileError) as e:
        load_scenarios(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:3: scenario s: ") and why in msg, msg
