"""Graphs survive odd data and option mixes, and render the same from many threads."""

import io
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from render.graphs import GraphOptionError, render_graph
from render.series import Series

START = 1_700_000_000

values = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e300, -1e300]),
    ),
    min_size=1,
    max_size=40,
)
series_options = st.fixed_dictionaries(
    {},
    optional={
        "color": st.sampled_from(["red", "ff00ff", "00ff0080"]),
        "lineWidth": st.sampled_from([0, 0.5, 3]),
        "dashed": st.sampled_from([True, 2.5]),
        "stacked": st.just(True),
        "secondYAxis": st.just(True),
        "drawAsInfinite": st.just(True),
        "alpha": st.sampled_from([0.0, 0.3, 1.0]),
        "invisible": st.just(True),
        "areaBetween": st.just(True),
    },
)
graph_params = st.fixed_dictionaries(
    {},
    optional={
        "width": st.sampled_from(["1", "40", "330", "800"]),
        "height": st.sampled_from(["1", "30", "250"]),
        "margin": st.sampled_from(["0", "10"]),
        "lineMode": st.sampled_from(["slope", "staircase", "connected"]),
        "areaMode": st.sampled_from(["none", "first", "all", "stacked"]),
        "areaAlpha": st.sampled_from(["0", "0.5"]),
        "drawNullAsZero": st.sampled_from(["true", "false"]),
        "connectedLimit": st.sampled_from(["0", "2"]),
        "logBase": st.sampled_from(["2", "e", "10"]),
        "yMin": st.sampled_from(["-10", "0", "5"]),
        "yMax": st.sampled_from(["max", "0", "100"]),
        "yLimit": st.sampled_from(["1", "50"]),
        "yStep": st.sampled_from(["0.001", "7"]),
        "yUnitSystem": st.sampled_from(["si", "binary", "sec", "msec", "none"]),
        "title": st.text(max_size=20),
        "vtitle": st.just("v\ntitle"),
        "vtitleRight": st.just("right"),
        "hideLegend": st.sampled_from(["true", "false"]),
        "uniqueLegend": st.just("true"),
        "hideAxes": st.just("true"),
        "hideGrid": st.just("true"),
        "hideXAxis": st.just("true"),
        "hideYAxis": st.just("true"),
        "graphOnly": st.just("true"),
        "yAxisSide": st.sampled_from(["left", "right"]),
        "minorY": st.sampled_from(["0", "3"]),
        "fontSize": st.sampled_from(["1", "30"]),
        "fontBold": st.just("true"),
        "fontItalic": st.just("true"),
        "fontName": st.sampled_from(["Sans", "NoSuchFont"]),
        "xFormat": st.sampled_from(["%H", "", "%%"]),
        "minXStep": st.sampled_from(["0.5", "5"]),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.text(max_size=12),
            values,
            st.sampled_from([1, 60, 3600]),
            st.integers(0, 5),
            series_options,
        ),
        max_size=4,
    ),
    params=graph_params,
    fmt=st.sampled_from(["png", "svg", "pdf"]),
)
def test_any_data_and_options_draw_or_refuse_clearly(data, params, fmt):
    series_list = [
        Series(name, START + shift * step, START + (shift + len(v)) * step, step, v, options=opts)
        for name, v, step, shift, opts in data
    ]
    try:
        body, _ = render_graph(series_list, params, fmt, START, START + 3600, UTC)
    except GraphOptionError as error:
        assert str(error).startswith("cannot draw ")
        return
    assert body[:4] in (b"\x89PNG", b"<?xm", b"%PDF")


def _deploy_graph(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    event = np.full(120, np.nan)
    event[60 + seed] = 1
    series_list = [
        Series(f"s{seed}.{i}", START, START + 7200, 60, rng.random(120).cumsum()) for i in range(5)
    ] + [Series("deploy", START, START + 7200, 60, event, options={"drawAsInfinite": True})]
    body, _ = render_graph(series_list, {"title": f"graph {seed}"}, "png", START, START + 7200, UTC)
    return body


def test_concurrent_renders_match_serial_ones():
    serial = [_deploy_graph(seed) for seed in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(_deploy_graph, [s for s in range(8) for _ in range(3)]))
    for index, body in enumerate(parallel):
        expected = serial[index // 3]
        assert np.array_equal(
            np.asarray(Image.open(io.BytesIO(body))), np.asarray(Image.open(io.BytesIO(expected)))
        )
