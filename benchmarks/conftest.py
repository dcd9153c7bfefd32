"""Shared benchmark helpers: time a reference implementation in the same run and print the
ratios as one table at the end of the session.

A benchmark asks for the `ratio_table` fixture, times the reference with
`ratio_table.time_median(...)` and calls `ratio_table.add(...)` with it; the ratio is
against its own pytest-benchmark median, and the row also lands in `benchmark.extra_info`
so saved JSON results carry it.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

_ROWS_KEY = pytest.StashKey[list]()


@dataclass
class RatioTable:
    """Rows of (workload, implementation, our median, reference median) for the summary."""

    rows: list[tuple[str, str, float, float]] = field(default_factory=list)

    def add(self, benchmark, workload: str, implementation: str, reference_seconds: float) -> float:
        """Record our benchmark's median against the reference's; returns the ratio."""
        ours = benchmark.stats.stats.median
        ratio = reference_seconds / ours
        benchmark.extra_info.update({
            "workload": workload,
            "implementation": implementation,
            "reference_median_s": reference_seconds,
            "ratio": round(ratio, 2),
        })
        self.rows.append((workload, implementation, ours, reference_seconds))
        return ratio

    @staticmethod
    def time_median(function: Callable[[], object], rounds: int,
                    setup: Callable[[], object] | None = None) -> float:
        """Median wall time of `rounds` calls of `function` (each after an untimed `setup`)."""
        durations = []
        for _ in range(rounds):
            if setup is not None:
                setup()
            started = time.perf_counter()
            function()
            durations.append(time.perf_counter() - started)
        return statistics.median(durations)


@pytest.fixture(scope="session")
def ratio_table(request) -> RatioTable:
    table = RatioTable()
    request.config.stash[_ROWS_KEY] = table.rows
    return table


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    rows = config.stash.get(_ROWS_KEY, [])
    if not rows:
        return
    terminalreporter.write_sep("-", "speed against the reference (median of rounds)")
    terminalreporter.write_line("| workload | carbyne | carbyne | reference | ratio |")
    terminalreporter.write_line("|---|---|---:|---:|---:|")
    for workload, implementation, ours, reference in rows:
        terminalreporter.write_line(
            f"| {workload} | {implementation} | {_seconds(ours)} | {_seconds(reference)} | "
            f"{reference / ours:.1f}x |"
        )


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} us"
