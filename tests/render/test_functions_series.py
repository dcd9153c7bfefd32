"""render.series: the Series type, consolidation and maxDataPoints, against graphite-web 1.1.10."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import series_lists, to_graphite

from render.series import (
    CONSOLIDATION_FUNCTIONS,
    Series,
    consolidate,
    consolidate_to_max_datapoints,
    normalize,
    tags_from_name,
)

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(ours: list[float | None], theirs: list[float | None]) -> bool:
    return len(ours) == len(theirs) and all(
        (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12))
        for a, b in zip(ours, theirs, strict=True)
    )


@pytest.mark.usefixtures("graphite_web")
@EXAMPLES
@given(series_lists(min_series=1, max_series=1, max_points=30), st.integers(1, 7),
       st.sampled_from(CONSOLIDATION_FUNCTIONS), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_consolidate_matches_graphite(series: list[Series], per_point: int, func: str, xff: float) -> None:
    source = series[0].copy(consolidation_func=func, x_files_factor=xff)
    theirs = to_graphite(source)
    theirs.consolidate(per_point)
    ours = consolidate(source, per_point)
    assert _same(ours.to_list(), list(theirs))
    assert (ours.start, ours.end, ours.step) == (source.start, source.end, source.step * max(per_point, 1))


@pytest.mark.usefixtures("graphite_web")
@EXAMPLES
@given(series_lists(min_series=1, max_series=4, max_points=40), st.integers(1, 25),
       st.sampled_from(["average", "max", "sum", "last"]))
def test_max_datapoints_matches_graphite_json(series: list[Series], max_points: int, func: str) -> None:
    from graphite.render.views import renderViewJson

    series = [s.copy(consolidation_func=func) for s in series]
    try:
        response = renderViewJson({"maxDataPoints": max_points}, [to_graphite(s) for s in series])
    except (IndexError, ValueError):
        # graphite deletes past the end of a short series, or steps by 0 over an empty one;
        # Carbyne answers with what is left
        for result in consolidate_to_max_datapoints(series, max_points):
            assert result.step > 0
        return
    expected = json.loads(response.content)
    if not any(len(s) for s in series):
        assert expected == []  # graphite's JSON view drops everything when no series has values
        return
    ours = consolidate_to_max_datapoints(series, max_points)
    for mine, theirs in zip(ours, expected, strict=True):
        stamps = range(int(mine.start), int(mine.end) + 1, int(mine.step))
        points = list(zip(mine.to_list(), stamps, strict=False))
        assert [p[1] for p in points] == [p[1] for p in theirs["datapoints"]]
        assert _same([p[0] for p in points], [p[0] for p in theirs["datapoints"]])


def test_max_datapoints_example_from_the_reference() -> None:
    """graphite-features.md §1.4.2: values 2..11 at t=60..600, maxDataPoints=3."""
    series = Series("a", 60, 660, 60, [float(v) for v in range(2, 12)])
    [merged] = consolidate_to_max_datapoints([series], 3)
    assert list(zip(merged.to_list(), range(merged.start, merged.end + 1, merged.step), strict=False)) == [
        (5.5, 240), (9.5, 480)]
    [peak] = consolidate_to_max_datapoints([series.copy(consolidation_func="max")], 3)
    assert peak.to_list() == [7.0, 11.0]
    [one] = consolidate_to_max_datapoints([series], 1)
    assert (one.start, one.to_list()) == (60, [6.5])


NAMES = [
    "a.b.c",
    "disk.used;dc=dc2;server=web02",
    "disk.used;server=web02;dc=dc2",
    "~hidden.metric;a=b",
    "metric{env=\"prod\",dc=\"x\"}",
    "sumSeries(a.*.c)",
    "asPercent(a.b,MISSING)",
    "a.b;bad",
    "a.b;=x",
    "a.b;x=",
    "a.b;x=~y",
    "a.b;x!=y",
    "5.0",
    "foo bar (avg: 1)",
]


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("name", NAMES)
def test_tags_from_name_match_graphite(name: str) -> None:
    from graphite.render.datalib import TimeSeries

    expected = TimeSeries(name, 0, 60, 60, [1.0]).tags
    assert list(tags_from_name(name).items()) == list(expected.items())


def test_series_is_immutable() -> None:
    series = Series("a.b.c", 0, 180, 60, [1, None, 3], tags={"name": "a.b.c", "n": 5})
    with pytest.raises(ValueError):
        series.values[0] = 2.0
    with pytest.raises(TypeError):
        series.tags["x"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        series.name = "b"  # type: ignore[misc]
    assert series.tags["n"] == "5"
    renamed = series.copy(name="b")
    assert (renamed.name, series.name, renamed.path_expression) == ("b", "a.b.c", "a.b.c")
    assert series.with_options(color="red").options == {"color": "red"} and series.options == {}


def test_values_are_copied_from_writable_arrays() -> None:
    source = np.array([1.0, 2.0])
    series = Series("a", 0, 120, 60, source)
    source[0] = 9.0
    assert series.to_list() == [1.0, 2.0]


def test_normalize_uses_the_lcm_step() -> None:
    a = Series("a", 0, 360, 60, [1, 2, 3, 4, 5, 6])
    b = Series("b", 0, 360, 90, [1, 2, 3, 4])
    (ca, cb), start, end, step = normalize([a, b])
    assert (start, end, step) == (0, 360, 180)
    assert (ca.to_list(), cb.to_list()) == ([2.0, 5.0], [1.5, 3.5])
    with pytest.raises(ValueError):
        normalize([])


def test_unknown_consolidation_function() -> None:
    with pytest.raises(ValueError, match="cannot consolidate consolidationFunc='median'"):
        consolidate(Series("a", 0, 120, 60, [1, 2], consolidation_func="median"), 2)


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("func", ["sum", "average", "avg_zero"])
def test_large_buckets_sum_in_graphite_order(func: str) -> None:
    values = [10.0 ** (k % 17 - 8) * (k + 1) / 7 for k in range(200)]
    source = Series("a", 0, 200 * 60, 60, values, consolidation_func=func)
    theirs = to_graphite(source)
    theirs.consolidate(40)
    assert consolidate(source, 40).to_list() == list(theirs)
