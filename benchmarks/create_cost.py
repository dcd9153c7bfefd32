"""CPU per new metric file: the bare system calls vs the daemon's writer path.

``python3 -m benchmarks.create_cost --root /var/tmp/cost`` creates 10,000 files of the
ingest benchmark's schema (10s:6h,1m:7d, 60 points each) twice: once with only the system
calls a new Whisper file needs (mkdir, O_EXCL open, header pwrite, fallocate, two pwrites
for the first points), once through ``storage.paths.locate_metric`` and
``WhisperStore.create`` / ``write`` as the writer does, and prints user and system CPU
microseconds per file for each. The bare loop is the floor any implementation pays on this
machine; the difference is the writer's own cost. The files are removed at the end
(``--keep`` leaves them): removing 3 GB makes ext4 slow at new inodes for minutes, so
back-to-back runs measure that; wait a few minutes between runs.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

from storage.paths import locate_metric
from storage.whisper import file
from storage.whisper.batch import WhisperStore

ARCHIVES = [(10, 2160), (60, 10080)]
POINTS = 60


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def bare(root: str, names: list[str]) -> None:
    header = file.plan_create(list(ARCHIVES), 0.5, "average")
    first_points = bytes(POINTS * 12)
    lower_points = bytes(POINTS // 6 * 12)
    lower_offset = header.archives[1].offset
    for name in names:
        path = os.path.join(root, *name.split(".")) + ".wsp"
        try:
            os.mkdir(os.path.dirname(path))
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        os.pwrite(fd, header.packed, 0)
        os.posix_fallocate(fd, header.size, header.data_end - header.size)
        os.pwrite(fd, first_points, header.size)
        os.pwrite(fd, lower_points, lower_offset)
        os.close(fd)


def writer_path(root: str, names: list[str]) -> None:
    now = int(time.time())
    timestamps = np.arange(now - 3600, now - 3600 + POINTS * 10, 10, dtype=np.float64)
    values = np.arange(POINTS, dtype=np.float64) + 0.5
    known: set[str] = set()
    with WhisperStore() as store:
        for name in names:
            path, _ = locate_metric(root, name, known)
            store.create(path, ARCHIVES, 0.5, "average")
            store.write(path, timestamps, values, now=now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=tempfile.gettempdir())
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    names = [f"bench.host{i // 100:03d}.cpu{i % 100:02d}.value" for i in range(args.metrics)]
    os.makedirs(args.root, exist_ok=True)
    folders = []
    try:
        for label, run in (("bare system calls", bare), ("writer path", writer_path)):
            folders.append(tempfile.mkdtemp(dir=args.root))
            user, system = _cpu()
            run(folders[-1], names)
            user_after, system_after = _cpu()
            per = 1e6 / len(names)
            print(f"{label}: user {(user_after - user) * per:.0f} µs, system "
                  f"{(system_after - system) * per:.0f} µs per new file")
    finally:
        if not args.keep:  # at the end: a removal slows the next creates (see above)
            for folder in folders:
                shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
