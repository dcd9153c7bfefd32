"""How much one render request may ask for, checked before any point is read.

graphite-web has no such limits: a glob over a large tree, or a year at 10 s
resolution, simply runs until memory or the worker timeout gives out. Here
the evaluator counts series and points from the plan (file headers only) and
refuses the request with a :class:`LimitError`, which the HTTP layer answers
with a 400 like any other bad parameter.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


class LimitError(ValueError):
    """A request over one of the :class:`Limits`; the message names the limit and the value."""

    def __init__(self, message: str, limit: str, value: int, allowed: int) -> None:
        super().__init__(f"{message}, over the limit {limit}={allowed}")
        self.limit = limit
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class Limits:
    """Per-request ceilings (all positive integers).

    ``max_series_per_request``: series read, summed over every pattern and
    fetch window (a pattern read over two windows counts twice).
    ``max_points_per_request``: values read, summed the same way (8 bytes each).
    ``max_target_length``: characters in one ``target``.
    ``max_data_points``: the largest ``maxDataPoints`` a request may ask for.
    """

    max_series_per_request: int = 100_000
    max_points_per_request: int = 50_000_000
    max_target_length: int = 64 * 1024
    max_data_points: int = 1_000_000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"cannot set {field.name}={value!r}: needs a positive integer")

    def check_target(self, target: str) -> None:
        if len(target) > self.max_target_length:
            shown = target if len(target) <= 60 else target[:60] + "..."
            raise LimitError(f"cannot evaluate target={shown}: {len(target)} characters",
                             "max_target_length", len(target), self.max_target_length)

    def check_max_data_points(self, value: int) -> None:
        if value > self.max_data_points:
            raise LimitError(f"cannot render maxDataPoints={value}: too many",
                             "max_data_points", value, self.max_data_points)

    def check_series(self, count: int, pattern: str) -> None:
        if count > self.max_series_per_request:
            raise LimitError(f"cannot fetch pattern={pattern}: the request reads {count} series",
                             "max_series_per_request", count, self.max_series_per_request)

    def check_points(self, count: int, pattern: str) -> None:
        if count > self.max_points_per_request:
            raise LimitError(f"cannot fetch pattern={pattern}: the request reads {count} points",
                             "max_points_per_request", count, self.max_points_per_request)


__all__ = ["LimitError", "Limits"]
