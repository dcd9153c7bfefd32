"""Aggregation kernels shared by the function groups (graphite's ``aggFuncs``).

Every kernel reduces a float64 matrix along one axis, where NaN plays the
part of graphite's ``None``; a reduction graphite's ``safe*`` helper answers
with ``None`` comes back as NaN. Sums are accumulated in order (``cumsum``)
so results match graphite's left-to-right Python ``sum`` bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from render.functions.params import InputError
from render.series import extreme_index

#: Canonical aggregation names, in graphite's order.
AGG_FUNCS = (
    "average", "avg_zero", "median", "sum", "min", "max", "diff",
    "stddev", "count", "range", "multiply", "last",
)
#: Alternative spellings graphite accepts.
AGG_ALIASES = {"rangeOf": "range", "avg": "average", "total": "sum", "current": "last"}


def agg_function_names() -> list[str]:
    """Every name an ``aggFunc`` parameter accepts without deprecation."""
    return [*AGG_FUNCS, *AGG_ALIASES]


def canonical_agg(name: str) -> str:
    """``name`` resolved to a canonical aggregation, or InputError."""
    if name in AGG_FUNCS:
        return name
    if name in AGG_ALIASES:
        return AGG_ALIASES[name]
    raise InputError(f"cannot aggregate func={name!r}: unsupported aggregation function")


def _ordered_sum(m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Sum along axis 0 adding one slice at a time, like Python's ``sum`` over each column.

    numpy reduces axis 0 of a C-contiguous array slice by slice; any other
    layout, or slices of one element (one series' values as a column: numpy
    then sums the contiguous column pairwise), go through ``cumsum`` (always
    sequential).
    """
    zeroed = np.where(valid, m, 0.0)
    # + 0.0: Python's sum starts from 0, so values of only -0.0 sum to 0.0
    if zeroed.flags.c_contiguous and zeroed[:1].size > 1:
        return np.add.reduce(zeroed, axis=0) + 0.0
    return np.cumsum(zeroed, axis=0)[-1] + 0.0


def _pick(m: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.take_along_axis(m, index[np.newaxis, ...], axis=0)[0]


def _last(m: np.ndarray, valid: np.ndarray) -> np.ndarray:
    n = m.shape[0]
    return _pick(m, n - 1 - np.argmax(valid[::-1], axis=0))


def _first_extreme(m: np.ndarray, func: str) -> np.ndarray:
    """Python's ``min``/``max`` along axis 0 (see ``extreme_index``); NaN for an all-missing column."""
    return _pick(m, extreme_index(m, func))


def _diff(m: np.ndarray) -> np.ndarray:
    acc = np.full(m.shape[1:], np.nan)
    for row in m:
        missing_acc = np.isnan(acc)
        # graphite's safeDiff sums from 0: a first value of -0.0 counts as 0.0
        acc = np.where(missing_acc, row + 0.0, np.where(np.isnan(row), acc, acc - row))
    return acc


def _median(m: np.ndarray, valid: np.ndarray, count: np.ndarray) -> np.ndarray:
    ordered = np.sort(m, axis=0, kind="stable")  # NaN sorts last; -0.0 and 0.0 keep their order
    low = np.maximum((count - 1) // 2, 0)
    high = np.maximum(count // 2, 0)
    a = _pick(ordered, low)
    b = _pick(ordered, high)
    return np.where(count % 2 == 0, (a + b) / 2, b)


def reduce_axis(
    matrix: np.ndarray, func: str, axis: int = 0, present: np.ndarray | None = None
) -> np.ndarray:
    """Apply aggregation ``func`` along ``axis``; missing values are NaN.

    Matches graphite's ``safe*`` helpers given the full row including its
    ``None`` values: ``avg_zero`` counts them as zero, ``multiply`` is
    missing if any value is, ``count`` is 0 (not missing) for an all-missing
    row, everything else ignores missing values. ``present`` (same shape as
    ``matrix``) marks the cells that exist when rows have different lengths;
    the others are padding, not missing values.
    """
    func = canonical_agg(func)
    m = np.moveaxis(np.asarray(matrix, dtype=np.float64), axis, 0)
    out_shape = m.shape[1:]
    n = m.shape[0]
    if n == 0:
        if func in ("count",):
            return np.zeros(out_shape)
        return np.full(out_shape, np.nan)
    exists = None if present is None else np.moveaxis(present, axis, 0)
    valid = ~np.isnan(m)
    count = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if func == "sum":
            result = _ordered_sum(m, valid)
        elif func == "average":
            result = _ordered_sum(m, valid) / count
        elif func == "avg_zero":
            sizes = n if exists is None else exists.sum(axis=0)
            return np.where(sizes > 0, _ordered_sum(m, valid) / sizes, np.nan)
        elif func == "median":
            result = _median(m, valid, count)
        elif func in ("min", "max"):
            result = _first_extreme(m, func)
        elif func == "diff":
            result = _diff(m)
        elif func == "stddev":
            mean = _ordered_sum(m, valid) / count
            squares = _ordered_sum((m - mean) ** 2, valid)
            result = np.sqrt(squares / count)
        elif func == "count":
            return count.astype(np.float64)
        elif func == "range":
            result = _first_extreme(m, "max") - _first_extreme(m, "min")
        elif func == "multiply":
            factors = m if exists is None else np.where(exists, m, 1.0)
            return np.cumprod(factors, axis=0)[-1]
        else:
            result = _last(m, valid)
    return np.where(count > 0, result, np.nan)


#: aggregations whose result graphite computes from its inputs with int arithmetic or picks from them
_INT_KEEPING = frozenset({"sum", "min", "max", "diff", "last", "median"})


def reduced_ints(
    matrix: np.ndarray, ints: np.ndarray | None, func: str, axis: int = 0
) -> np.ndarray | None:
    """Which results of ``reduce_axis(matrix, func, axis)`` graphite holds as Python ints.

    ``ints`` marks the int cells of ``matrix`` (None: all floats). graphite
    counts with ``len()``, so counts are ints; a sum or difference of ints
    only is an int; ``last``, ``min`` and ``max`` are the value they pick
    (Python's ``min``/``max`` pick the first of equal values); averages and
    deviations are never ints.
    """
    func = canonical_agg(func)
    m = np.moveaxis(np.asarray(matrix), axis, 0)
    if func == "count":
        return np.ones(m.shape[1:], dtype=bool)
    if ints is None or func not in _INT_KEEPING or m.shape[0] == 0:
        return None
    cells = np.moveaxis(ints, axis, 0)
    valid = ~np.isnan(m)
    if func in ("sum", "diff"):
        return ~(~cells & valid).any(axis=0)
    if func == "median":
        columns = m.reshape(m.shape[0], -1).T
        flags = cells.reshape(cells.shape[0], -1).T
        return np.array([median_is_int(c, f) for c, f in zip(columns, flags, strict=True)],
                        dtype=bool).reshape(m.shape[1:])
    if func == "last":
        picked = m.shape[0] - 1 - np.argmax(valid[::-1], axis=0)
    else:
        picked = extreme_index(m, func)
    return _pick(cells, picked) & valid.any(axis=0)


def reduce_values(values: np.ndarray, func: str) -> float | None:
    """One series' values reduced with ``func``; None when graphite says None."""
    result = float(reduce_axis(values.reshape(-1, 1), func, axis=0)[0])
    return None if math.isnan(result) else result


def _rank_index(size: int, n: float, interpolate: bool) -> tuple[int, float, int]:
    """graphite's ``_getPercentile`` ranks over ``size`` sorted values: (index picked, fraction, rank)."""
    fractional_rank = (n / 100.0) * (size + 1)
    rank = int(fractional_rank)
    fraction = fractional_rank - rank
    if not interpolate:
        rank += int(math.ceil(fraction))
    index = 0 if rank == 0 else size - 1 if rank - 1 == size else rank - 1
    return index, fraction, rank


def percentile_is_int(
    values: np.ndarray, ints: np.ndarray | None, n: float, interpolate: bool = False
) -> bool:
    """Whether graphite's percentile of ``values`` is a Python int: the value it picks from its
    (stable) sort is one, and no interpolation made a float of it."""
    size = int(np.count_nonzero(~np.isnan(values)))
    if ints is None or size == 0:
        return False
    index, _, rank = _rank_index(size, n, interpolate)
    if interpolate and rank < size:
        return False
    return _sorted_pick_is_int(values, ints, index)


def median_is_int(values: np.ndarray, ints: np.ndarray | None) -> bool:
    """Whether graphite's ``safeMedian`` of ``values`` is an int: an odd count picking an int."""
    size = int(np.count_nonzero(~np.isnan(values)))
    if ints is None or size % 2 == 0:
        return False
    return _sorted_pick_is_int(values, ints, size // 2)


def _sorted_pick_is_int(values: np.ndarray, ints: np.ndarray, index: int) -> bool:
    """Whether the ``index``-th of the non-missing values, sorted as Python's ``sorted`` (stable),
    is an int."""
    valid = ~np.isnan(values)
    order = np.argsort(values[valid], kind="stable")
    return bool(ints[valid][order[index]])


def check_percent(function: str, n: float) -> None:
    """Refuse a percentile ``n`` outside (0, 100] naming ``function``.

    graphite-web checks only some of them: n=0 fails an assert, n > 100 indexes past the
    sorted values (IndexError; removeAbove/BelowPercentile swallow it and return the series
    unfiltered), and a negative n picks the minimum or, further down, wraps around to values
    counted from the top. Answers made of such accidents are refused rather than copied.
    """
    if not 0 < n <= 100:
        raise InputError(f"cannot call {function} n={n!r}: must be above 0 and at most 100")


def percentile(values: Sequence[float] | np.ndarray, n: float, interpolate: bool = False) -> float | None:
    """graphite's ``_getPercentile``: the NIST rank-based percentile of the non-missing values."""
    points = np.sort(np.asarray(values, dtype=np.float64), kind="stable")  # as Python's sorted: -0.0/0.0 in order
    points = points[~np.isnan(points)]
    size = len(points)
    if size == 0:
        return None
    index, fraction, rank = _rank_index(size, n, interpolate)
    result = points[index]
    if interpolate and rank < size:  # graphite indexes past the end (IndexError) for n=100
        result = result + fraction * (points[rank] - result)
    return float(result)


def python_math(function: Callable[..., float], *operands: np.ndarray | float,
                overflow: float = math.nan) -> np.ndarray:
    """``function`` (Python's ``math``) applied elementwise to the broadcast ``operands``.

    graphite computes these per value with Python's ``math``, which rounds correctly where
    numpy's (SIMD) ``exp``/``log``/``sin``/``power`` may differ in the last bit. A missing
    operand gives a missing value, and so does leaving the function's domain; an overflow
    gives ``overflow``.
    """
    arrays = np.broadcast_arrays(*(np.asarray(operand, dtype=np.float64) for operand in operands))
    out = []
    for values in zip(*(array.ravel().tolist() for array in arrays), strict=True):
        if any(value != value for value in values):
            out.append(math.nan)
            continue
        try:
            out.append(function(*values))
        except OverflowError:
            out.append(overflow)
        except (ValueError, ZeroDivisionError):
            out.append(math.nan)
    return np.array(out, dtype=np.float64).reshape(arrays[0].shape)


def safe_power(base: np.ndarray | float, exponent: np.ndarray | float) -> np.ndarray:
    """graphite's ``safePow`` elementwise: missing on a missing operand, a domain error or overflow."""
    return python_math(math.pow, base, exponent)


#: Key of the request-wide xFilesFactor that ``setXFilesFactor`` sets in ``RequestContext.stacks``
#: (a tuple, so no ``stacked()`` stack name can collide with it).
REQUEST_XFF_KEY = ("request", "xFilesFactor")


def request_x_files_factor(ctx: Any) -> float:
    """The request's xFilesFactor, as a ``setXFilesFactor`` call earlier in the request left it.

    graphite's ``setXFilesFactor`` changes the request context for every
    later call; a :class:`RequestContext` is frozen, so the override lives
    in its per-request ``stacks`` dictionary.
    """
    return ctx.stacks.get(REQUEST_XFF_KEY, ctx.x_files_factor)
