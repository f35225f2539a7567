"""What kernel developers paste, parsed: page_ref tracepoints, dump_page() blocks, and the
ZONE_DEVICE snapshots and kprobe lines of a qemu console log.

The formats are those of ``shared/reference/kernel_traces.md`` (§1.1 page_ref, §1.2 dump_page,
§1.4 zdsnap and the ``__put_devmap_managed_*_refs`` kprobe): the payload is found first and the
header (``comm-pid [cpu] flags ts:``, trace-cmd, latency format, a dmesg timestamp) is read
loosely.  Nothing in a trace is evaluated; every number is parsed with ``int(..., 0)``.  A line
that starts like one of these records but does not parse is a :class:`TraceError` naming the
file and line; anything else (boot noise) is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


class TraceError(ValueError):
    """``FILE:LINE: what is wrong``."""


@dataclass
class Record:
    """One parsed line (or dump_page block, which starts at ``line``)."""

    line: int
    kind: str                      # page_ref | dump_page | snapshot | snapshot_page | pgmap | kprobe
    fields: dict = field(default_factory=dict)
    who: str = ""                  # comm-pid from the header, when there is one


_PAGE_REF = re.compile(r"\b(page_ref_(?:set|mod_and_test|mod_and_return|mod_unless|mod|freeze|unfreeze)):\s+(pfn=.*)$")
_HEADER = re.compile(r"^\s*(?:\[\s*\d+\.\d+\]\s*)?(?P<who>\S(?:.*?\S)?-\d+)\s+")
_KV = re.compile(r"(\w+)=(\S+)")
_PAGE_REF_INTS = ("count", "mapcount", "mt", "val", "ret")

_DMESG_TS = r"^(?:\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?\s*)?"
_DUMP_FIRST = re.compile(_DMESG_TS + r"page:\s*(\S+?)?\s*(?:ref)?count:(-?\d+) mapcount:(-?\d+) mapping:(\S+) "
                         r"index:(\S+)(?: (device )?pfn:(0x[0-9a-fA-F]+))?")
_DUMP_FLAGS = re.compile(_DMESG_TS + r"(?:(?:anon|ksm) )?flags: (0x[0-9a-fA-F]+)\(([^)]*)\)")
_DUMP_REASON = re.compile(_DMESG_TS + r"page dumped because: (.*)$")

_ZD_PGMAP = re.compile(r"zdsnap: pgmap=(\w+) type=(\d+) nr_range=(\d+) range=\[(0x[0-9a-f]+)-(0x[0-9a-f]+)\]")
_ZD_SCAN = re.compile(r"zdsnap: scanned=\[(0x[0-9a-f]+),\+(\d+)\) zone_device=(\d+) ref0=(\d+) ref1=(\d+) "
                      r"ref2=(\d+) ref_other=(\d+)")
_ZD_PAGE = re.compile(r"zdsnap: pfn=(0x[0-9a-f]+) ref=(-?\d+) map=(-?\d+) type=(\d+)")
_ZONEDEV_PGMAP = re.compile(r"# zonedev: pgmap type=(\d+) \(\w+\) start_pfn=(0x[0-9a-f]+) nr=(\d+)")
_KPROBE = re.compile(r"(\w+): \((__put_devmap_managed_(?:page|folio)_refs|free_zone_device_(?:page|folio))"
                     r"\+0x[0-9a-f]+/0x[0-9a-f]+\)((?: \w+=\S+)*)\s*$")


def _int(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise TraceError(f"{where}: {text!r} is not a number") from None


def parse_lines(lines: list[str], path: str = "<trace>") -> Iterator[Record]:
    """Records in file order."""
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i].rstrip("\n")
        lineno = i + 1
        where = f"{path}:{lineno}"
        i += 1
        if raw.startswith("# zonedev: pgmap "):
            m = _ZONEDEV_PGMAP.match(raw)
            if not m:
                raise TraceError(f"{where}: a '# zonedev: pgmap' header that does not parse")
            start = _int(m.group(2), where)
            yield Record(lineno, "pgmap", {"pgmap": "zonedev", "type": int(m.group(1)), "start_pfn": start,
                                           "end_pfn": start + int(m.group(3))})
            continue
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _PAGE_REF.search(raw)
        if m:
            yield _page_ref(m, raw, lineno, where)
            continue
        if "page_ref_" in raw and re.search(r"\bpage_ref_\w+:", raw):
            raise TraceError(f"{where}: a page_ref line without 'pfn=...' payload")
        m = _DUMP_FIRST.search(raw)
        if m:
            rec = Record(lineno, "dump_page", {
                "count": int(m.group(2)), "mapcount": int(m.group(3)), "mapping": m.group(4),
                "index": m.group(5), "device": bool(m.group(6)),
                "pfn": _int(m.group(7), where) if m.group(7) else None})
            # the rest of the block: flags (zone=N), raw words, the reason
            while i < n and i < lineno + 12:
                nxt = lines[i].rstrip("\n")
                f = _DUMP_FLAGS.search(nxt)
                r = _DUMP_REASON.search(nxt)
                if f:
                    names = f.group(2).split("|")
                    rec.fields["flags"] = [x for x in names if "=" not in x]
                    for x in names:
                        if x.startswith("zone="):
                            rec.fields["zone"] = _int(x[5:], f"{path}:{i + 1}")
                if r:
                    rec.fields["reason"] = r.group(1).strip()
                    i += 1
                    break
                if _DUMP_FIRST.search(nxt) or _PAGE_REF.search(nxt):
                    break
                i += 1
            yield rec
            continue
        if "zdsnap:" in raw:
            rec = _zdsnap(raw, lineno, where)
            if rec is not None:
                yield rec
            continue
        m = _KPROBE.search(raw)
        if m:
            kv = {k: v for k, v in _KV.findall(m.group(3))}
            fields = {"event": m.group(1), "function": m.group(2)}
            for key, value in kv.items():
                fields[key] = _int(value, where)
            h = _HEADER.match(raw)
            yield Record(lineno, "kprobe", fields, h.group("who") if h else "")
            continue
        if re.search(r"\(__put_devmap_managed_|\(free_zone_device_", raw):
            raise TraceError(f"{where}: a kprobe line whose fields do not parse")


def _page_ref(m: re.Match, raw: str, lineno: int, where: str) -> Record:
    fields: dict = {"event": m.group(1)}
    payload = dict(_KV.findall(m.group(2)))
    if "pfn" not in payload or "count" not in payload:
        raise TraceError(f"{where}: {m.group(1)} line without pfn= and count=")
    fields["pfn"] = _int(payload["pfn"], where)
    for key in _PAGE_REF_INTS:
        if key in payload:
            fields[key] = _int(payload[key], where)
    flags = payload.get("flags", "none")
    fields["flags"] = [] if flags == "none" or flags.startswith("0x") else flags.split("|")
    fields["mapping"] = payload.get("mapping", "")
    if m.group(1) != "page_ref_set" and "val" not in fields:
        raise TraceError(f"{where}: {m.group(1)} line without val=")
    head = raw[:m.start()]
    h = _HEADER.match(head)
    return Record(lineno, "page_ref", fields, h.group("who") if h else "")


def _zdsnap(raw: str, lineno: int, where: str) -> Record | None:
    m = _ZD_PGMAP.search(raw)
    if m:
        start, end = _int(m.group(4), where), _int(m.group(5), where)
        return Record(lineno, "pgmap", {"pgmap": m.group(1), "type": int(m.group(2)),
                                        "start_pfn": start >> 12, "end_pfn": (end + 1) >> 12})
    m = _ZD_SCAN.search(raw)
    if m:
        names = ("first_pfn", "nr", "zone_device", "ref0", "ref1", "ref2", "ref_other")
        values = [_int(m.group(1), where)] + [int(g) for g in m.groups()[1:]]
        return Record(lineno, "snapshot", dict(zip(names, values)))
    m = _ZD_PAGE.search(raw)
    if m:
        return Record(lineno, "snapshot_page", {"pfn": _int(m.group(1), where), "count": int(m.group(2)),
                                                "mapcount": int(m.group(3)), "type": int(m.group(4))})
    if re.search(r"zdsnap: (pgmap|scanned|pfn)=", raw):
        raise TraceError(f"{where}: a zdsnap line that does not parse")
    return None


def parse_file(path: str | Path) -> list[Record]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise TraceError(f"{path}:0: {e.strerror or e}") from None
    return list(parse_lines(text.splitlines(), str(path)))
