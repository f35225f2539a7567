"""``zonedev matrix --html``: one self-contained page; a failing cell opens its race diagram.

The page is opened in headless Chromium (Debian's ``chromium``, installed by ``.ci/run``) at the
URL a click on the cell navigates to (``#cell=FILE::NAME@KERNEL``), and the DOM after the page's
script ran is checked: that cell's section is shown, with one column per thread and the failing
step marked, and every other section stays hidden.
"""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from zonedev.cli import main

from test_matrix import TEARDOWN

EVIL = TEARDOWN + '''

@zonedev.scenario(expect={"v5.18": "safe", "v6.1": "safe"}, mode="stateful", refs=["<img src=x onerror=alert(1)>"])
def teardown3(k):
    """Two puts race memunmap_pages <script>alert("x")</script>; v5.18 deliberately expected safe."""
    return _race(k)
'''

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Sections(HTMLParser):
    """The page's detail sections (hidden or not, and their text) and its grid links."""

    def __init__(self):
        super().__init__()
        self.sections = {}
        self.links = []
        self.scripts = 0
        self._cur = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
            assert "src" not in a
        if tag in ("link", "img", "iframe"):
            raise AssertionError(f"external resource <{tag}> in the page")
        if tag == "a" and a.get("href", "").startswith("#cell="):
            self.links.append(a["href"])
        if tag == "section" and "data-cell" in a:
            self._cur = a["data-cell"]
            self.sections[self._cur] = {"hidden": "hidden" in a, "text": [], "fail_rows": 0}
            self._depth = 1
        elif self._cur is not None and tag == "section":
            self._depth += 1
        elif self._cur is not None and tag == "tr" and "fail" in a.get("class", ""):
            self.sections[self._cur]["fail_rows"] += 1
        if self._cur is not None and tag in ("br", "td", "th", "div", "p", "tr"):
            self.sections[self._cur]["text"].append(" ")

    def handle_endtag(self, tag):
        if self._cur is not None and tag == "section":
            self._depth -= 1
            if not self._depth:
                self._cur = None

    def handle_data(self, data):
        if self._cur is not None:
            self.sections[self._cur]["text"].append(data)


def dump_dom(page: Path, fragment: str, tmp_path: Path) -> str:
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom",
                        page.as_uri() + fragment], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_failing_cell_opens_its_race_diagram_in_chromium(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("evil.py").write_text(EVIL)
    r = CliRunner().invoke(main, ["matrix", "evil.py", "--jobs", "1", "--html", "m.html"])
    assert r.exit_code == 1, r.output
    page = tmp_path / "m.html"
    raw = page.read_text()
    assert "<script>alert" not in raw and "<img" not in raw          # everything escaped
    assert "http://" not in raw and "https://" not in raw            # nothing fetched
    static = Sections()
    static.feed(raw)
    assert static.scripts == 1 and all(s["hidden"] for s in static.sections.values())
    key = "evil.py::teardown3@v5.18"
    href = "#cell=" + quote(key, safe="")
    assert href in static.links                                      # what a click on the cell opens

    dom = Sections()
    dom.feed(dump_dom(page, href, tmp_path))
    shown = {k for k, s in dom.sections.items() if not s["hidden"]}
    assert shown == {key}
    text = " ".join("".join(dom.sections[key]["text"]).split())
    assert "DIFFERS from the expectation" in text and "got use_after_free, expected safe" in text
    for column in ("CPU 0 gup_user", "CPU 1 migration", "CPU 2 memunmap"):
        assert column in text
    assert "memunmap_pages: percpu_ref_kill" in text and "__remove_pages: pfn 0x100000 memmap" in text
    assert re.search(r">> \d+ .*<<< use_after_free", text)         # the failing step, marked
    assert dom.sections[key]["fail_rows"] == 1
    assert "zonedev replay evil.py::teardown3 --kernel v5.18 --schedule" in text
    assert "refs: <img src=x onerror=alert(1)>" in text              # shown as text, never run
    # the safe cell opens too, with no diagram
    other = Sections()
    other.feed(dump_dom(page, "#cell=" + quote("evil.py::teardown3@v6.1", safe=""), tmp_path))
    assert {k for k, s in other.sections.items() if not s["hidden"]} == {"evil.py::teardown3@v6.1"}
    assert other.sections["evil.py::teardown3@v6.1"]["fail_rows"] == 0


def test_quiet_steps_of_one_function_share_a_row():
    from zonedev.report.html import race

    def st(i, t, fn, label, events=(), findings=()):
        return {"step": i, "thread": t, "function": fn, "label": label, "object": "x",
                "events": [dict(function=fn, pfn=0x100, field="_refcount", old=2, new=1, text="")
                           for _ in events], "findings": list(findings), "preempted": False}

    cx = {"threads": ["a", "b"], "failing_step": 5, "omitted_steps": 0, "waiting": [], "kind": "k",
          "steps": [st(0, 0, "mmu_notifier_invalidate_range_start", "spin_lock"),
                    st(1, 0, "mmu_notifier_invalidate_range_start", "mn_itree_inv_start_range"),
                    st(2, 0, "mmu_notifier_invalidate_range_start", "mn_itree_inv_start_range"),
                    st(3, 1, "put_page", "folio_put", events=[1]),
                    st(4, 1, "put_page", "folio_put"),
                    st(5, 0, "remove", "__remove_pages", findings=["use_after_free"])]}
    page = race(cx)
    rows = re.findall(r'<td class="idx">([^<]*)</td>', page)
    assert rows == ["0-2", "3", "4", "&gt;&gt; 5"]
    assert "spin_lock, mn_itree_inv_start_range \u00d72" in page
    assert "pfn 0x100 _refcount 2 &rarr; 1" in page and "&lt;&lt;&lt; use_after_free" in page
    cx["failing_step"] = 1                      # even a quiet failing step keeps its own row
    rows = re.findall(r'<td class="idx">([^<]*)</td>', race(cx))
    assert rows == ["0", "&gt;&gt; 1", "2", "3", "4", "5"]


def test_page_lists_the_mismatches_with_links_to_their_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("evil.py").write_text(EVIL)
    r = CliRunner().invoke(main, ["matrix", "evil.py", "--jobs", "1", "--html", "m.html"])
    assert r.exit_code == 1
    page = Path("m.html").read_text()
    listed = re.findall(r'<ul class="mismatches"><li><a href="([^"]+)">([^<]+)</a>: ([^<]+)</li></ul>', page)
    assert listed == [("#cell=" + quote("evil.py::teardown3@v5.18", safe=""), "evil.py::teardown3 on v5.18",
                       "expected safe, got use_after_free")]
