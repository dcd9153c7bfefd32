"""Plaintext parse throughput: native kernel vs its pure twin vs a carbon-like per-line loop.

The workload is 64 KiB chunks (what one TCP read delivers) of collectd-, StatsD-
and netdata-shaped lines over 10,000 distinct names, parsed warm (names already
interned, the steady state of a daemon). The carbon-like baseline does what
carbon 1.1.10's MetricLineReceiver does per line: decode, ``strip().split()``,
two ``float()`` calls, the NaN and ``-1`` checks (not its per-point
``TaggedSeries.parse``). About 1 % of values are ``nan`` (rejects). Each benchmark checks its answer against the baseline
and reports lines/s and the ratio to the baseline measured in the same run.
Run: ``python3 -m pytest benchmarks/test_bench_parse.py``.
"""
from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from carbon.names import MetricIndex, canonical_name
from carbon.parse import native_available, parse_lines, parse_lines_py

NOW = 1_795_422_700.0
CHUNK_BYTES = 65536
METRICS = 10_000
LINES = 200_000


def make_chunks() -> tuple[list[bytes], int]:
    rng = random.Random(42)
    names = []
    for n in range(METRICS):
        kind = n % 4
        if kind == 0:
            names.append(f"collectd.host{n % 97}.cpu-{n % 8}.cpu-idle{n}")
        elif kind == 1:
            names.append(f"stats.timers.app{n % 31}.request{n}.mean_90")
        elif kind == 2:
            names.append(f"netdata.host{n % 13}.system.cpu.dim{n}")
        else:
            names.append(f"stats.tagged.m{n};env=prod;dc=dc{n % 3}")
    lines = []
    for n in range(LINES):
        name = names[n % METRICS]
        shape = n % 100
        if shape == 0:
            value = "nan"  # collectd's first interval of a rate
        elif shape < 40:
            value = f"{rng.randrange(10**9)}"
        elif shape < 70:
            value = f"{rng.random() * 100:.6f}"
        else:
            value = repr(rng.random() * 1000)  # StatsD / carbon-relay: shortest repr
        lines.append(f"{name} {value} {1795422633 + n // METRICS}\r\n".encode())
    chunks, current = [], bytearray()
    for line in lines:
        if len(current) + len(line) > CHUNK_BYTES:
            chunks.append(bytes(current))
            current = bytearray()
        current += line
    chunks.append(bytes(current))
    return chunks, len(lines)


def carbon_like(chunks: list[bytes], now: float) -> list[tuple[str, float, float]]:
    """carbon 1.1.10's per-line work, minus logging and the event dispatch."""
    out = []
    for chunk in chunks:
        for raw in chunk.split(b"\n"):
            line = raw.decode("utf-8")
            try:
                metric, value, timestamp = line.strip().split()
                datapoint = (float(timestamp), float(value))
            except ValueError:
                continue
            if datapoint[1] != datapoint[1]:
                continue
            if int(datapoint[0]) == -1:
                datapoint = (now, datapoint[1])
            out.append((metric, datapoint[0], datapoint[1]))
    return out


def best_seconds(run, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.fixture(scope="module")
def workload():
    chunks, lines = make_chunks()
    baseline = carbon_like(chunks, NOW)
    baseline_seconds = best_seconds(lambda: carbon_like(chunks, NOW))
    return chunks, lines, baseline, baseline_seconds


def parse_all(parse, chunks: list[bytes], index: MetricIndex) -> list:
    return [parse(chunk, index, NOW) for chunk in chunks]


def check_and_report(benchmark, results, index, workload, label: str) -> None:
    chunks, lines, baseline, baseline_seconds = workload
    ids = np.concatenate([r.ids for r in results])
    assert len(ids) == len(baseline)
    assert [index.name(i) for i in ids.tolist()] == [canonical_name(name) for name, _, _ in baseline]
    assert np.array_equal(np.concatenate([r.values for r in results]), [v for _, _, v in baseline])
    assert np.array_equal(np.concatenate([r.timestamps for r in results]), [t for _, t, _ in baseline])
    assert sum(len(r.rejects) for r in results) == lines - len(baseline)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(
        {
            "implementation": label,
            "lines": lines,
            "lines_per_second": round(lines / seconds),
            "carbon_like_lines_per_second": round(lines / baseline_seconds),
            "speedup_vs_carbon_like": round(baseline_seconds / seconds, 2),
        }
    )


def test_parse_native(benchmark, workload) -> None:
    index = MetricIndex(native=True)
    assert native_available(index)
    parse_all(parse_lines, workload[0], index)  # warm: every name interned
    results = benchmark.pedantic(parse_all, args=(parse_lines, workload[0], index), rounds=5)
    check_and_report(benchmark, results, index, workload, "native.carbon_parse")


def test_parse_pure_twin(benchmark, workload) -> None:
    index = MetricIndex(native=False)
    parse_all(parse_lines_py, workload[0], index)
    results = benchmark.pedantic(parse_all, args=(parse_lines_py, workload[0], index), rounds=3)
    check_and_report(benchmark, results, index, workload, "carbon.parse.parse_lines_py")


def test_parse_native_cold(benchmark, workload) -> None:
    """Every name new: the kernel's miss path through MetricIndex.id_for."""
    def fresh():
        index = MetricIndex(native=True)
        return index, parse_all(parse_lines, workload[0], index)

    index, results = benchmark.pedantic(fresh, rounds=3)
    check_and_report(benchmark, results, index, workload, "native.carbon_parse (cold index)")
