"""Axis maths against graphite-web 1.1.10's glyph.py: same y range, label values, label
texts and time-grid choice for the same data."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from render.graphs import axes


@pytest.fixture(scope="module")
def glyph(graphite_web):
    from graphite.render import glyph

    return glyph


def graphite_linear(
    glyph, low, high, system="si", axis_min=None, axis_max=None, axis_limit=None, step=None
):
    tics = glyph._LinearAxisTics(low, high, unitSystem=system)
    tics.applySettings(axisMin=axis_min, axisMax=axis_max, axisLimit=axis_limit)
    if step is None:
        tics.chooseStep(divisors=[4, 5, 6], binary=system == "binary")
    else:
        tics.setStep(step)
    tics.chooseLimits()
    values = tics.getLabelValues()
    return tics.bottom, tics.top, values, [tics.makeLabel(v) for v in values]


def ours(axis):
    return axis.bottom, axis.top, list(axis.label_values), list(axis.labels)


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@example(a=0.0, b=2.2250738585e-313, system="si")  # a subnormal span graphite still handles
@example(a=0.0, b=5e-324, system="si")  # a step that underflows to 0: graphite fails
@example(a=1e12, b=999999999998.875, system="si")  # far from 0: its last label is kept by a hair
@given(a=finite, b=finite, system=st.sampled_from(["si", "binary", "sec", "msec", "none"]))
def test_linear_axis_matches_graphite(glyph, a, b, system):
    low, high = sorted((a, b))
    try:
        expected = graphite_linear(glyph, low, high, system)
    except ValueError:  # graphite: "math domain error" on a range too narrow for a float step (0..5e-324)
        axis = axes.linear_axis(low, high, unit_system=system)
        assert axis.bottom <= low and axis.top >= high and len(axis.label_values) >= 2
        return
    assert ours(axes.linear_axis(low, high, unit_system=system)) == expected


@pytest.mark.parametrize("low, high", [(0.0, 5e-324), (-5e-324, 0.0), (1e-310, 1e-310 + 5e-324)])
def test_ranges_too_narrow_for_a_float_step_still_get_an_axis(low, high) -> None:
    axis = axes.linear_axis(low, high)
    assert axis.bottom <= low and axis.top >= high and len(axis.label_values) >= 2


@pytest.mark.parametrize(
    ("low", "high", "kw"),
    [
        (0, 100, {"axis_min": 40, "axis_max": 60}),
        (0, 100, {"axis_max": "max"}),
        (3, 97, {"axis_limit": 90}),
        (3, 97, {"axis_limit": 1000}),
        (5, 5, {}),
        (0, 0, {}),
        (-7, -7, {}),
        (10, 20, {"axis_min": 30}),
        (10, 20, {"axis_max": 5}),
        (0, 1234, {"step": 250}),
    ],
)
def test_linear_axis_settings_match_graphite(glyph, low, high, kw):
    expected = graphite_linear(glyph, low, high, **{"step": None, **kw})
    assert ours(axes.linear_axis(low, high, **kw)) == expected


def test_both_limits_fixed_the_wrong_way_round_is_refused():
    with pytest.raises(axes.AxisError, match="min must be less than the max"):
        axes.linear_axis(0, 10, axis_min=5, axis_max=3)


@pytest.mark.parametrize(
    ("low", "high", "base"), [(1, 5000, 10), (0.3, 7, 2), (2, 2, 10), (10, 1e9, 10)]
)
def test_log_axis_matches_graphite(glyph, low, high, base):
    tics = glyph._LogAxisTics(low, high, unitSystem="si", base=base)
    tics.applySettings()
    tics.chooseStep()
    tics.chooseLimits()
    values = tics.getLabelValues()
    ours_axis = axes.log_axis(low, high, base)
    assert (ours_axis.bottom, ours_axis.top) == (tics.bottom, tics.top)
    assert list(ours_axis.label_values) == values
    assert list(ours_axis.labels) == [tics.makeLabel(v) for v in values]


def test_log_axis_refuses_values_at_or_below_zero():
    with pytest.raises(axes.AxisError, match="greater than zero"):
        axes.log_axis(0, 10, 10)


@pytest.mark.parametrize(
    "time_range", [300, 3600, 6 * 3600, 86400, 7 * 86400, 90 * 86400, 800 * 86400]
)
@pytest.mark.parametrize("graph_width", [100, 290, 1000])
def test_time_scale_matches_graphite(glyph, time_range, graph_width):
    seconds_per_pixel = time_range / graph_width
    fitting = [
        c for c in glyph.xAxisConfigs
        if c["seconds"] <= seconds_per_pixel and c.get("maxInterval", time_range + 1) >= time_range
    ]  # fmt: skip
    expected = fitting[-1] if fitting else glyph.xAxisConfigs[-1]
    scale = axes.time_scale(time_range, graph_width)
    assert (scale.seconds_per_pixel, scale.label_unit, scale.label_step, scale.label_format) == (
        expected["seconds"], expected["labelUnit"], expected["labelStep"], expected["format"],
    )  # fmt: skip
    assert (scale.minor_unit, scale.minor_step, scale.major_unit, scale.major_step) == (
        expected["minorGridUnit"], expected["minorGridStep"],
        expected["majorGridUnit"], expected["majorGridStep"],
    )  # fmt: skip


def test_tick_times_are_wall_clock_in_the_zone():
    start = int(datetime(2024, 3, 1, 0, 7, tzinfo=UTC).timestamp())
    paris = ZoneInfo("Europe/Paris")
    ticks = axes.tick_times(start, start + 3 * 3600, paris, axes.HOUR, 1)
    assert [t.strftime("%H:%M") for t in ticks] == ["02:00", "03:00", "04:00"]
    assert all(t.tzinfo is paris for t in ticks)


def test_tick_times_cross_a_dst_change_on_local_hours():
    start = int(datetime(2024, 3, 31, 0, 0, tzinfo=UTC).timestamp())  # 01:00 CET, DST at 02:00
    ticks = axes.tick_times(start, start + 3 * 3600, ZoneInfo("Europe/Paris"), axes.HOUR, 1)
    assert [t.strftime("%H:%M %Z") for t in ticks] == ["01:00 CET", "03:00 CEST", "04:00 CEST"]


def test_unit_prefixes():
    assert axes.scale_to_unit(1_500_000, None, "si") == (1.5, "M")
    assert axes.scale_to_unit(2048, None, "binary") == (2.0, "Ki")
    assert axes.scale_to_unit(7200, None, "sec") == (2.0, "H")
    assert axes.scale_to_unit(1500, 100, "si") == (1500.0, "")
