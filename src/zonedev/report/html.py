"""``matrix.html``: the matrix as one self-contained page.

The grid (scenarios down, kernels across) links each cell to a section below it; opening a cell
(clicking it, or a URL ending in ``#cell=FILE::NAME@KERNEL``) shows that cell's verdict against
its expectation and, when something was found, its counterexample drawn the way kernel
developers draw races in commit messages: one column per thread (``CPU 0 (gup_user)``,
``CPU 1 (memunmap)``, ...), one row per step with the kernel function, the primitive and the
refcount/pgmap changes the step made (consecutive steps of one thread in one function that change
nothing share a row), and the failing step marked.

Everything is in the file: no network (a Content-Security-Policy forbids it), no external
scripts or fonts; every text from the model or the scenario is HTML-escaped.  The one script only
shows the section the URL fragment names.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from ..patches import kernel_range
from ..sync.kinds import KINDS
from .grid import abbreviations, cell_text, kinds_in, labels, words
from .matrix_json import check_of, question, replay_of

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 0; }
table.grid { border-collapse: collapse; }
table.grid th, table.grid td { border: 1px solid #ccc; padding: 2px 8px; text-align: center; }
table.grid th.row { text-align: left; font-weight: normal; font-family: monospace; }
table.grid tr.file th { text-align: left; background: #f4f4f4; font-family: monospace; }
td.match { background: #e8f6e8; } td.mismatch { background: #ffd9d9; font-weight: bold; }
td.error { background: #ffe9b3; font-weight: bold; } td.na { color: #999; } td.notrun { color: #999; }
td a { color: inherit; text-decoration: none; display: block; }
section.detail { border: 1px solid #999; padding: 1em; margin: 1.5em 0; }
table.race { border-collapse: collapse; font: 13px/1.35 monospace; }
table.race th { text-align: left; border-bottom: 2px solid #444; padding: 2px 16px 2px 4px; }
table.race td { vertical-align: top; padding: 2px 16px 2px 4px; }
table.race td.idx { color: #888; text-align: right; white-space: nowrap; }
table.race tr.fail td { background: #ffd9d9; }
table.race tr.fail td.idx { font-weight: bold; color: #b00; }
.fn { font-weight: bold; } .ev { color: #0b4f8a; padding-left: 1.5em; }
.found { color: #b00; font-weight: bold; padding-left: 1.5em; }
.legend, .summary { margin: 1em 0; } .question { font-style: italic; } code, pre { background: #f4f4f4; padding: 1px 4px; }
"""

SCRIPT = """
(function () {
  function open() {
    var h = window.location.hash, key = null;
    if (h.indexOf('#cell=') === 0) { key = decodeURIComponent(h.slice(6)); }
    var all = document.querySelectorAll('section.detail'), shown = null;
    for (var i = 0; i < all.length; i++) {
      var on = all[i].getAttribute('data-cell') === key;
      all[i].hidden = !on;
      if (on) { shown = all[i]; }
    }
    if (shown) { shown.scrollIntoView(); }
  }
  window.addEventListener('hashchange', open);
  open();
})();
"""


def e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def cell_key(spec: str, kernel: str) -> str:
    """The fragment that opens a cell: ``#cell=`` + this, URL-encoded."""
    return f"{spec}@{kernel}"


def _event(ev: dict[str, Any], step_fn: str) -> str:
    where = f"pfn {ev['pfn']:#x} " if isinstance(ev["pfn"], int) else ""
    fn = f"{ev['function']}: " if ev["function"] and ev["function"] != step_fn else ""
    return f'<div class="ev">{e(fn)}{e(where)}{e(ev["field"])} {e(ev["old"])} &rarr; {e(ev["new"])}</div>'


def _quiet(st: dict[str, Any]) -> bool:
    """A step that changed nothing visible and found nothing: it may share a row."""
    return not st["events"] and not st["findings"]


def _runs(steps: list[dict[str, Any]], failing: int | None = None) -> list[list[dict[str, Any]]]:
    """Steps grouped into rows: consecutive quiet steps of one thread in one kernel function
    share a row (``8-14  mmu_notifier_invalidate_range_start: spin_lock, mn_itree_inv_start_range,
    ...``), the way a race diagram names a function once rather than each instruction.  The
    failing step always has a row of its own."""
    rows: list[list[dict[str, Any]]] = []
    for st in steps:
        last = rows[-1][-1] if rows else None
        if (last is not None and _quiet(st) and _quiet(last) and st["thread"] == last["thread"]
                and st["function"] == last["function"] and st["function"]
                and failing not in (st["step"], last["step"])):
            rows[-1].append(st)
        else:
            rows.append([st])
    return rows


def _counted(labels: list[str]) -> list[str]:
    """Repeats written once: ``[a, b, b, b]`` -> ``[a, b x3]``."""
    out: list[str] = []
    n = 0
    for i, lab in enumerate(labels):
        n += 1
        if i + 1 == len(labels) or labels[i + 1] != lab:
            out.append(lab if n == 1 else f"{lab} \u00d7{n}")
            n = 0
    return out


def race(cx: dict[str, Any]) -> str:
    """A counterexample as a race diagram: one column per thread, the failing step marked."""
    threads = cx["threads"]
    head = "".join(f"<th>CPU {i}<br>{e(name)}</th>" for i, name in enumerate(threads))
    rows = []
    for run in _runs(cx["steps"], cx["failing_step"]):
        st = run[0]
        fail = st["step"] == cx["failing_step"]
        cells = [""] * len(threads)
        fn = st["function"]
        labels = _counted([x["label"] for x in run if x["label"] != fn])
        if fn and labels:
            text = f'<div><span class="fn">{e(fn)}</span>: {e(", ".join(labels))}</div>'
        else:
            text = f'<div><span class="fn">{e(fn or st["label"])}</span></div>'
        text += "".join(_event(ev, fn) for ev in st["events"])
        text += "".join(f'<div class="found">&lt;&lt;&lt; {e(k)}</div>' for k in st["findings"])
        cells[st["thread"]] = text
        mark = "&gt;&gt; " if fail else ""
        idx = str(st["step"]) if len(run) == 1 else f'{st["step"]}-{run[-1]["step"]}'
        rows.append(f'<tr class="{"fail" if fail else "step"}" data-step="{st["step"]}">'
                    f'<td class="idx">{mark}{idx}</td>' +
                    "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if cx["omitted_steps"]:
        rows.append(f'<tr><td class="idx">...</td><td colspan="{len(threads)}">'
                    f'({cx["omitted_steps"]} more steps to the end of the execution)</td></tr>')
    if cx["failing_step"] is None:
        cells = [""] * len(threads)
        for w in cx["waiting"]:
            cells[w["thread"]] = f'<div class="found">{e(w["what"])}</div>'
        if not cx["waiting"]:
            cells = [f'<div class="found">&lt;&lt;&lt; {e(cx["kind"])} (at the end)</div>'] + [""] * (len(threads) - 1)
        rows.append('<tr class="fail" data-step="end"><td class="idx">&gt;&gt; end</td>' +
                    "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table class="race"><thead><tr><th>step</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _detail(cell: dict[str, Any], result: Any, asks: str) -> str:
    key = cell_key(cell["scenario"], cell["kernel"])
    if cell["error"] is not None:
        state = "ERROR"
    else:
        state = "matches" if cell["match"] else "DIFFERS from the expectation"
    out = [f'<section class="detail" data-cell="{e(key)}" hidden>',
           f'<h2>{e(cell["scenario"])} on {e(cell["kernel"])}: {e(state)}</h2>',
           f'<p class="question">{e(asks)}</p>' if asks else "",
           f'<p>got <b>{e(words(cell["verdict"]))}</b>, expected <b>{e(words(cell["expected"]))}</b>; ']
    if cell["error"] is None:
        how = "exhaustive" if cell["exhaustive"] else \
            "NOT exhaustive (bound " + ", ".join(f"{k}={v}" for k, v in (cell["bound"] or {}).items()) + ")"
        out.append(f'{e(cell["executions"])} executions ({e(cell["mode"])}, {e(how)}), '
                   f'{e(cell["seconds"])} s.')
    out.append("</p>")
    if cell["refs"]:
        out.append(f'<p>refs: {e(", ".join(cell["refs"]))}</p>')
    if cell["error"] is not None:
        out.append(f'<p class="error">error: <code>{e(cell["error"])}</code></p>')
    cx = cell["counterexample"]
    if cx:
        where = f'step {cx["failing_step"]}' if cx["failing_step"] is not None else "at the end"
        out.append(f'<p class="finding"><b>{e(cx["kind"])}</b> ({e(where)}'
                   f'{", " + e(cx["thread"]) if cx["thread"] else ""}; {e(cx["preemptions"])} '
                   f'preemption{"s" if cx["preemptions"] != 1 else ""}): {e(cx["message"])}</p>')
        if not cx["reproduced"]:
            out.append("<p>WARNING: the replay did not reproduce this finding</p>")
        out.append(race(cx))
        out.append(f'<p>replay: <code>{e(replay_of(cell, result))}</code></p>')
    else:
        out.append(f'<p>check: <code>{e(check_of(cell, result))}</code></p>')
    out.append("</section>")
    return "\n".join(out)


def _covers(kernel: str) -> str:
    """The releases a modelled kernel stands for (``v6.2``: ``6.2 - 6.14``), for the column's tooltip."""
    try:
        return f"{kernel} stands for {kernel_range(kernel)}"
    except ValueError:
        return kernel


def render(result: Any, summary_text: str = "") -> str:
    """The page for ``result`` (a :class:`~zonedev.rt.matrix.MatrixResult`)."""
    abbr = abbreviations(kinds_in(result))
    by_key = {(c["scenario"], c["kernel"]): c for c in result.cells}
    names = labels(result)
    grouped = len({r.file for r in result.rows}) > 1
    head = "".join(f'<th title="{e(_covers(k))}">{e(k)}</th>' for k in result.kernels)
    rows = []
    last = None
    for i, r in enumerate(result.rows):
        if grouped and r.file != last:
            rows.append(f'<tr class="file"><th colspan="{len(result.kernels) + 1}">{e(r.file)}</th></tr>')
            last = r.file
        q = question(r.scenario)
        tds = []
        for k in result.kernels:
            applies = r.scenario.applies(k)
            c = by_key.get((r.spec, k))
            text = cell_text(c, applies, abbr)
            if not applies:
                tds.append('<td class="na">-</td>')
            elif c is None:
                tds.append('<td class="notrun">?</td>')
            else:
                cls = "error" if c["error"] is not None else "match" if c["match"] else "mismatch"
                href = "#cell=" + quote(cell_key(r.spec, k), safe="")
                tip = f"expected {words(c['expected'])}, got {words(c['verdict'])}"
                tds.append(f'<td class="{cls}" title="{e(tip)}"><a href="{e(href)}">{e(text)}</a></td>')
        rows.append(f'<tr><th class="row" title="{e(q)}">{e(names[i])}</th>{"".join(tds)}</tr>')
    legend = ["safe: nothing found", "-: does not apply", "!: differs from the expected verdict",
              "ERR: the scenario failed", "?: not run"]
    legend += [f"{s} = {k}" + (f" ({KINDS[k]})" if k in KINDS else "")
               for k, s in sorted(abbr.items(), key=lambda kv: kv[1])]
    bad = []
    for c in result.mismatches + result.errors:
        href = "#cell=" + quote(cell_key(c["scenario"], c["kernel"]), safe="")
        got = "an error" if c["error"] is not None else words(c["verdict"])
        bad.append(f'<li><a href="{e(href)}">{e(c["scenario"])} on {e(c["kernel"])}</a>: '
                   f'expected {e(words(c["expected"]))}, got {e(got)}</li>')
    listed = f'<ul class="mismatches">{"".join(bad)}</ul>' if bad else ""
    asks = {r.spec: question(r.scenario) for r in result.rows}
    details = "\n".join(_detail(c, result, asks.get(c["scenario"], "")) for c in result.cells)
    title = "zonedev matrix"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{e(title)}</title><style>{CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<pre class="summary">{e(summary_text)}</pre>
{listed}
<table class="grid"><thead><tr><th>scenario</th>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<ul class="legend">{"".join(f"<li>{e(x)}</li>" for x in legend)}</ul>
<p>Click a cell to see its verdict and, where something was found, the counterexample.</p>
{details}
<script>{SCRIPT}</script>
</body></html>
"""
