"""carbon-cache 1.1.10 vs ``carbyne serve``: 10,000 metrics × 60 points on one TCP connection.

Cold = files absent, warm = files present (the next 60 points). Reports lines
accepted per second, points persisted per second (until every point reads back
from disk) and daemon CPU-seconds per million points, each as a ratio against
carbon-cache run on the same workload in the same benchmark.
Run: ``python3 -m pytest benchmarks/test_bench_carbon.py -s`` (``CARBYNE_BENCH_DIR=/some/dir``
puts the daemons' files under that folder instead of pytest's temporary one).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .ingest_workload import (
    mark_top_directory,
    metric_names,
    pickle_frames,
    plaintext_payload,
    push,
    start_carbon_cache,
    start_carbyne,
)

METRICS = 10_000
POINTS = 60


def run_both_phases(start_daemon, root, protocol: str, names, start: int):
    daemon = start_daemon(root)
    try:
        results = {}
        for phase, t0 in (("cold", start), ("warm", start + POINTS * 10)):
            if protocol == "plaintext":
                payload, port = plaintext_payload(names, t0, POINTS), daemon.line_port
            else:
                payload, port = pickle_frames(names, t0, POINTS), daemon.pickle_port
            results[phase] = push(daemon, payload, port, names, t0, POINTS)
        return results
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """One fresh folder for every run here, deleted when all are done.

    ext4 without a journal (this VM's) skips, on every inode it allocates, the free inodes
    of the group that were freed in the last minute (up to six while their table block is
    dirty), one lookup each: creating 10,000 metrics next to files deleted shortly before
    (pytest's rotation of old temporary folders, other suites' clean-ups, a previous run)
    gets several times slower for whichever daemon runs then. So the folder's parent is
    marked as a top directory (chattr +T, best effort): ext4 then puts the folder in a
    group of its own choosing rather than next to the other temporary folders, and the files
    are deleted at one known moment, at the end, not by a rotation during some later run.
    Table blocks that new inodes dirty again keep nearby deletes "recent" for minutes, so
    back-to-back runs should set ``CARBYNE_BENCH_KEEP=1`` (keep the files; delete them after
    the last run). ``CARBYNE_BENCH_DIR`` picks the parent (default: pytest's temporary
    folder)."""
    chosen = os.environ.get("CARBYNE_BENCH_DIR")
    parent = Path(chosen) if chosen else tmp_path_factory.getbasetemp()
    parent.mkdir(parents=True, exist_ok=True)
    mark_top_directory(parent)
    root = Path(tempfile.mkdtemp(prefix="ingest-", dir=parent))
    yield root
    if not os.environ.get("CARBYNE_BENCH_KEEP"):
        shutil.rmtree(root, ignore_errors=True)
        os.sync()


@pytest.mark.parametrize("protocol", ["plaintext", "pickle"])
def test_ingest_end_to_end_against_carbon_cache(benchmark, data_root, protocol):
    names = metric_names(METRICS)
    start = (int(time.time()) // 3600) * 3600 - 3 * 3600
    carbon = run_both_phases(start_carbon_cache, data_root / protocol / "carbon", protocol, names, start)
    ours = benchmark.pedantic(run_both_phases, args=(start_carbyne, data_root / protocol / "carbyne", protocol,
                                                     names, start), rounds=1, iterations=1)
    rows = []
    for phase in ("cold", "warm"):
        c, o = carbon[phase], ours[phase]
        info = {
            f"{phase}_lines_per_s": round(o.lines_per_second),
            f"{phase}_points_persisted_per_s": round(o.points_per_second),
            f"{phase}_cpu_s_per_million": round(o.cpu_seconds_per_million, 2),
            f"{phase}_carbon_lines_per_s": round(c.lines_per_second),
            f"{phase}_carbon_points_persisted_per_s": round(c.points_per_second),
            f"{phase}_carbon_cpu_s_per_million": round(c.cpu_seconds_per_million, 2),
            f"{phase}_accept_ratio": round(o.lines_per_second / c.lines_per_second, 1),
            f"{phase}_persist_ratio": round(o.points_per_second / c.points_per_second, 1),
            f"{phase}_cpu_ratio": round(c.cpu_seconds_per_million / o.cpu_seconds_per_million, 1),
        }
        benchmark.extra_info.update(info)
        rows.append(f"| {protocol} {phase} | {o.lines_per_second:,.0f} ({info[f'{phase}_accept_ratio']}×) "
                    f"| {o.points_per_second:,.0f} ({info[f'{phase}_persist_ratio']}×) "
                    f"| {o.cpu_seconds_per_million:.2f} vs {c.cpu_seconds_per_million:.2f} "
                    f"({info[f'{phase}_cpu_ratio']}× less) |")
    print("\n| workload | lines/s accepted (vs carbon) | points/s on disk (vs carbon) | CPU-s per M points |")
    print("\n".join(rows))
