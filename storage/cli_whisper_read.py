"""Read-only whisper commands: info, fetch, dump, diff.

Each prints exactly what the matching whisper 1.1.10 script prints, so
scripts and habits built around whisper-info.py & co. keep working.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable

from storage import whisper
from storage.cli_errors import CommandError

METADATA = struct.Struct("!2LfL")
ARCHIVE_INFO = struct.Struct("!3L")
POINT = struct.Struct("!Ld")
AGGREGATION_NAMES = {1: "average", 2: "sum", 3: "last", 4: "max", 5: "min",
                     6: "avg_zero", 7: "absmax", 8: "absmin"}
DROP_FILTERS: dict[str, Callable[[float | None], bool]] = {
    "zeroes": lambda value: value != 0,
    "nulls": lambda value: value is not None,
    "empty": lambda value: value != 0 and value is not None,
}


def run_info(args: argparse.Namespace) -> int:
    info = whisper.info(args.path)
    if info is None:
        raise CommandError(f"[ERROR] cannot read whisper file={args.path!r}")
    info = dict(info)
    info["fileSize"] = os.stat(args.path).st_size
    if args.field:
        if args.field not in info:
            print(f'Unknown field "{args.field}". Valid fields are {",".join(info)}')
            return 1
        print(info[args.field])
        return 0
    if args.json:
        print(json.dumps(info, indent=2, separators=(",", ": ")))
        return 0
    archives = info.pop("archives")
    lines = [f"{key}: {value}" for key, value in info.items()] + [""]
    for index, archive in enumerate(archives):
        lines.append(f"Archive {index}")
        lines.extend(f"{key}: {value}" for key, value in archive.items())
        lines.append("")
    _write_lines(lines)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    now = int(time.time())
    from_time = now - 86400 if args.from_time is None else args.from_time
    until_time = now if args.until is None else args.until
    data = whisper.fetch(args.path, from_time, until_time)
    if not data:
        raise CommandError("No data in selected timerange")
    (start, end, step), raw_values = data
    values = [None if value is None else float(value) for value in raw_values]
    if args.drop:
        keep = DROP_FILTERS[args.drop]
        values = [value for value in values if keep(value)]
    if args.json:
        values_json = str(values).replace("None", "null")
        print(f'{{\n    "start" : {start},\n    "end" : {end},\n    "step" : {step},\n'
              f'    "values" : {values_json}\n  }}')
        return 0
    lines = []
    for index, value in enumerate(values):
        stamp = start + index * step
        shown = "None" if value is None else f"{value:f}"
        lines.append(f"{_time_text(stamp, args.pretty, args.time_format)}\t{shown}")
    _write_lines(lines)
    return 0


def run_dump(args: argparse.Namespace) -> int:
    if not os.path.exists(args.path):
        raise CommandError(f'[ERROR] File "{args.path}" does not exist!')
    with open(args.path, "rb") as handle:
        content = handle.read()
    header = _dump_header(content)
    lines: list[str] = []
    if not args.raw:
        lines += [
            "Meta data:",
            f"  aggregation method: {header['aggregationMethod']}",
            f"  max retention: {header['maxRetention']:d}",
            f"  xFilesFactor: {header['xFilesFactor']:g}",
            "",
        ]
        for index, archive in enumerate(header["archives"]):
            lines += [
                f"Archive {index} info:",
                f"  offset: {archive['offset']:d}",
                f"  seconds per point: {archive['secondsPerPoint']:d}",
                f"  points: {archive['points']:d}",
                f"  retention: {archive['retention']:d}",
                f"  size: {archive['size']:d}",
                "",
            ]
    for index, archive in enumerate(header["archives"]):
        if not args.raw:
            lines.append(f"Archive {index} data:")
        start, end = archive["offset"], archive["offset"] + archive["size"]
        if end > len(content):
            _write_lines(lines)
            raise CommandError(f"[ERROR] archive {index} runs past the end of the file")
        for slot, (stamp, value) in enumerate(POINT.iter_unpack(content[start:end])):
            if args.raw:
                lines.append(f"{stamp}:{value:.35g}")
            else:
                shown = _time_text(stamp, args.pretty, args.time_format)
                lines.append(f"{slot:d}: {shown}, {value:10.35g}")
    _write_lines(lines)
    return 0


def _dump_header(content: bytes) -> dict:
    """The header as whisper-dump.py reads it (unknown aggregation types show as average)."""
    try:
        aggregation_type, max_retention, xff, count = METADATA.unpack_from(content, 0)
    except struct.error:
        raise CommandError("[ERROR] Unable to unpack header") from None
    archives = []
    for index in range(count):
        try:
            offset, seconds, points = ARCHIVE_INFO.unpack_from(
                content, METADATA.size + index * ARCHIVE_INFO.size)
        except struct.error:
            raise CommandError(f"[ERROR] Unable to read archive {index} metadata") from None
        archives.append({"offset": offset, "secondsPerPoint": seconds, "points": points,
                         "retention": seconds * points, "size": points * POINT.size})
    return {"aggregationMethod": AGGREGATION_NAMES.get(aggregation_type, "average"),
            "maxRetention": max_retention, "xFilesFactor": xff, "archives": archives}


def run_diff(args: argparse.Namespace) -> int:
    diffs = whisper.diff(args.path_a, args.path_b, ignore_empty=args.ignore_empty,
                         until_time=args.until or None)
    if args.json:
        archives = []
        for archive, points, total in diffs:
            entry = {"archive": archive, "total": total, "points": len(points)}
            if not args.summary:
                entry["datapoint"] = [{"timestamp": p[0], "value_a": p[1], "value_b": p[2]}
                                      for p in points]
            archives.append(entry)
        print(json.dumps({"path_a": args.path_a, "path_b": args.path_b, "archives": archives},
                         sort_keys=True, indent=2, separators=(",", " : ")))
        return 0
    pretty, headers = not args.columns, not args.no_headers
    out: list[str] = []
    if args.summary:
        row = "%7s %9s %9s\n" if pretty else "%s %s %s\n"
        if headers:
            out.append(row % ("archive", "total", "differing"))
        out.extend(row % (archive, total, len(points)) for archive, points, total in diffs)
    else:
        head = "%7s %11s %13s %13s\n" if pretty else "%s %s %s %s\n"
        row = "%7s %11d %13s %13s\n" if pretty else "%s %d %s %s\n"
        if headers:
            out.append(head % ("archive", "timestamp", "value_a", "value_b"))
        for archive, points, total in diffs:
            if pretty:
                out.append(f"Archive {archive:d} ({len(points):d} of {total:d} datapoints differ)\n")
                out.append(head % ("", "timestamp", "value_a", "value_b"))
            label = "" if pretty else archive
            out.extend(row % (label, p[0], p[1], p[2]) for p in points)
    sys.stdout.write("".join(out))
    return 0


def _time_text(stamp: int, pretty: bool, time_format: str | None) -> str:
    if not pretty:
        return str(stamp)
    if time_format:
        return time.strftime(time_format, time.localtime(stamp))
    return time.ctime(stamp)


def _write_lines(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
