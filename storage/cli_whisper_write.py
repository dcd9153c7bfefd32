"""Whisper commands that write: create, resize, set-aggregation, merge, fill.

They print and change files exactly as whisper 1.1.10's scripts do (same
messages, byte-identical results), with two additions: ``resize`` and
``set-aggregation`` accept a directory and then work on every ``.wsp`` file
below it with a progress bar on stderr, and the current time is read once
per command so one run is consistent with itself.
"""
from __future__ import annotations

import argparse
import bisect
import math
import os
import time
import traceback
from pathlib import Path

from storage import whisper
from storage.cli_errors import CommandError
from storage.cli_progress import each_with_progress, whisper_files


def run_create(args: argparse.Namespace) -> int:
    if args.estimate:
        return _estimate([args.path, *args.retentions])
    if not args.retentions:
        raise CommandError("[ERROR] give at least one timePerPoint:timeToStore retention")
    archives = [_retention(text) for text in args.retentions]
    if os.path.exists(args.path) and args.overwrite:
        print(f"Overwriting existing file: {args.path}")
        os.unlink(args.path)
    whisper.create(args.path, archives, xFilesFactor=args.xFilesFactor,
                   aggregationMethod=args.aggregationMethod, sparse=args.sparse,
                   useFallocate=args.fallocate)
    print(f"Created: {args.path} ({os.stat(args.path).st_size:d} bytes)")
    return 0


def _estimate(texts: list[str]) -> int:
    if len(texts) == 1 and texts[0].find(",") > 0:
        texts = texts[0].split(",")
    total_points = 0
    for index, text in enumerate(texts):
        precision, points = _retention(text)
        print(f"Archive {index}: {points} points of {precision}s precision")
        total_points += points
    size = 16 + len(texts) * 12 + total_points * 12
    disk_size = int(math.ceil(size / 4096.0) * 4096)
    print(f"\nEstimated Whisper DB Size: {_byte_format(size)} ({disk_size} bytes on disk with 4k blocks)\n")
    for thousands in (1, 5, 10, 50, 100, 500):
        print(f"Estimated storage requirement for {thousands}k metrics: "
              f"{_byte_format(thousands * 1000 * disk_size)}")
    return 0


def _byte_format(size: float) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024.0:
            return f"{size:.3f}{unit}"
        size /= 1024.0
    return f"{size:.3f}GB"


def _retention(text: str) -> tuple[int, int]:
    try:
        return whisper.parseRetentionDef(text)
    except ValueError as error:
        raise CommandError(f"[ERROR] cannot parse retention={text!r}: {error}") from None


def run_resize(args: argparse.Namespace) -> int:
    if not os.path.exists(args.path):
        raise CommandError(f"[ERROR] File '{args.path}' does not exist!")
    new_archives = [_retention(text) for text in args.retentions]
    now = int(time.time())
    if not os.path.isdir(args.path):
        return _resize_one(args.path, new_archives, args, now)
    if args.newfile:
        raise CommandError("[ERROR] --newfile needs a single file, not a directory")
    failures = 0
    for path in each_with_progress(whisper_files(args.path)):
        failures += _resize_one(str(path), new_archives, args, now) != 0
    return 1 if failures else 0


def _resize_one(path: str, new_archives: list[tuple[int, int]], args: argparse.Namespace,
                now: int) -> int:
    """whisper-resize.py on one file."""
    info = whisper.info(path)
    if info is None:
        raise CommandError(f"[ERROR] cannot read whisper file={path!r}")
    old_archives = sorted((dict(archive) for archive in info["archives"]),
                          key=lambda archive: archive["secondsPerPoint"], reverse=True)
    xff = info["xFilesFactor"] if args.xFilesFactor is None else args.xFilesFactor
    method = args.aggregationMethod or info["aggregationMethod"]
    print("Retrieving all data from the archives")
    for archive in old_archives:
        from_time = now - archive["retention"] + archive["secondsPerPoint"]
        time_info, values = whisper.fetch(path, from_time, now, now=now)
        archive["data"] = (time_info, list(values))
    if args.newfile is None:
        newfile = path + ".tmp"
        if os.path.exists(newfile):
            print(f"Removing previous temporary database file: {newfile}")
            os.unlink(newfile)
    else:
        newfile = args.newfile
    print(f"Creating new whisper database: {newfile}")
    whisper.create(newfile, list(new_archives), xFilesFactor=xff, aggregationMethod=method)
    print(f"Created: {newfile} ({os.stat(newfile).st_size:d} bytes)")
    if args.aggregate:
        _migrate_aggregating(newfile, old_archives, xff, method, now)
    else:
        print("Migrating data without aggregation...")
        for archive in old_archives:
            (start, end, step), values = archive["data"]
            points = [(stamp, value) for stamp, value in zip(range(start, end, step), values,
                                                             strict=False) if value is not None]
            whisper.update_many(newfile, points, now=now)
    if args.newfile is not None:
        return 0
    return _swap_in(path, newfile, args.nobackup)


def _migrate_aggregating(newfile: str, old_archives: list[dict], xff: float, method: str,
                         now: int) -> None:
    """whisper-resize --aggregate: re-aggregate every old point into each new archive."""
    print("Migrating data with aggregation...")
    merged: list[tuple[int, float | None]] = []
    for archive in sorted(old_archives, key=lambda archive: archive["secondsPerPoint"]):
        (start, end, step), values = archive["data"]
        newest_first = list(zip(range(start, end, step), values, strict=False))[::-1]
        if merged:
            # whisper-resize keeps everything when no point is older than what it
            # has (its slice_end stays 0); reproduced as is for identical files.
            oldest = merged[-1][0]
            cut = next((i for i, (stamp, _) in enumerate(newest_first) if stamp < oldest), 0)
            merged += newest_first[cut:]
        else:
            merged += newest_first
    merged.reverse()
    old_stamps = [stamp for stamp, _ in merged]
    old_values = [value for _, value in merged]
    print(f"oldtimestamps: {old_stamps}")
    for archive in whisper.info(newfile)["archives"]:
        step = archive["secondsPerPoint"]
        from_time = now - archive["retention"] + now % step
        until_time = now + now % step + step
        print(f"({from_time},{until_time},{step})")
        slots = range(from_time, until_time, step)
        print(f"timepoints_to_update: {slots}")
        points = []
        for low, high in zip(slots[:-1], slots[1:], strict=True):
            left = bisect.bisect_left(old_stamps, low)
            right = bisect.bisect_left(old_stamps, high, lo=left)
            window = old_values[left:right]
            known = [value for value in window if value is not None]
            if known and len(known) / len(window) >= xff:
                points.append([low, whisper.aggregate(method, known, window)])
        whisper.update_many(newfile, points, now=now)


def _swap_in(path: str, newfile: str, nobackup: bool) -> int:
    backup = path + ".bak"
    print(f"Renaming old database to: {backup}")
    os.rename(path, backup)
    try:
        print(f"Renaming new database to: {path}")
        os.rename(newfile, path)
    except OSError:
        traceback.print_exc()
        print("\nOperation failed, restoring backup")
        os.rename(backup, path)
        return 1
    if nobackup:
        print(f"Unlinking backup: {backup}")
        os.unlink(backup)
    return 0


def run_set_aggregation(args: argparse.Namespace) -> int:
    if args.aggregationMethod not in whisper.aggregationMethods:
        raise CommandError(f"[ERROR] Unrecognized aggregation method: {args.aggregationMethod}")
    xff = None
    if args.xFilesFactor is not None:
        try:
            xff = float(args.xFilesFactor)
        except ValueError:
            raise CommandError(f"[ERROR] Invalid xFilesFactor {args.xFilesFactor}, not a float") from None
    if os.path.isdir(args.path):
        for path in each_with_progress(whisper_files(args.path)):
            _set_aggregation_one(str(path), args.aggregationMethod, xff)
        return 0
    _set_aggregation_one(args.path, args.aggregationMethod, xff)
    return 0


def _set_aggregation_one(path: str, method: str, xff: float | None) -> None:
    try:
        old = whisper.setAggregationMethod(path, method, xff)
    except FileNotFoundError:
        raise CommandError(f"[ERROR] File '{path}' does not exist!") from None
    print(f"Updated aggregation method: {path} ({old} -> {method})")


def run_merge(args: argparse.Namespace) -> int:
    for path in (args.from_path, args.to_path):
        if not os.path.exists(path):
            raise CommandError(f'[ERROR] File "{path}" does not exist!')
    whisper.merge(args.from_path, args.to_path, args.from_time, args.until,
                  now=int(time.time()))
    return 0


def run_fill(args: argparse.Namespace) -> int:
    for path in (args.src, args.dst):
        if not os.path.isfile(path):
            raise CommandError(f'[ERROR] File "{path}" does not exist!')
    if args.lock and getattr(whisper, "CAN_LOCK", False):
        whisper.LOCK = True
    fill_gaps(args.src, args.dst, time.time())
    return 0


def fill_gaps(src: str | Path, dst: str | Path, now: float) -> None:
    """whisper-fill: copy from ``src`` the points missing (None or 0) in ``dst``'s gaps."""
    archives = sorted(whisper.info(dst)["archives"], key=lambda archive: archive["retention"])
    start_from = now
    for archive in archives:
        from_time = now - archive["retention"]
        if from_time >= start_from:
            continue
        (start, end, step), values = whisper.fetch(dst, from_time, start_from, now=int(now))
        gap_start = None
        for value in values:
            if not value and not gap_start:
                gap_start = start
            elif value and gap_start:
                if start - gap_start > archive["secondsPerPoint"]:  # single lost points stay
                    _copy_range(src, dst, gap_start - step, start, now)
                gap_start = None
            elif gap_start and start == end - step:
                _copy_range(src, dst, gap_start - step, start, now)
            start += step
        start_from = from_time


def _copy_range(src, dst, t_start: float, t_stop: float, now: float) -> None:
    """Write src's known points in [t_start, t_stop) to dst, finest archive first."""
    header = whisper.info(src)
    if t_start < int(now) - header["maxRetention"] and t_stop < int(now) - header["maxRetention"]:
        return
    for archive in sorted(header["archives"], key=lambda archive: archive["retention"]):
        oldest = now - archive["retention"]
        if t_stop <= oldest:
            continue
        from_time = oldest if oldest > t_start else t_start
        fetched = whisper.fetch(src, from_time, t_stop, now=int(now))
        if fetched:
            (start, end, step), values = fetched
            points = [(stamp, value) for stamp, value in zip(range(start, end, step), values,
                                                             strict=False) if value is not None]
            points.sort(key=lambda point: point[0], reverse=True)
            whisper.update_many(dst, points, now=int(now))
        t_stop = from_time
        if t_start == t_stop:
            return
