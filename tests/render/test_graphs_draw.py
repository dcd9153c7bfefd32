"""Graph images checked by their pixels (PNG), their text elements (SVG) and their bytes (PDF)."""

import io
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from render.graphs import GraphOptionError, GraphOptions, render_graph
from render.graphs.colors import COLOR_ALIASES
from render.graphs.layout import layout_graph
from render.graphs.scene import Fill, Polyline, Segments
from render.series import Series

START = 1_700_000_000 - 1_700_000_000 % 3600
STEP = 60
N = 120
END = START + N * STEP
SVG_NS = "{http://www.w3.org/2000/svg}"


def series(name, values, start=START, step=STEP, **options):
    return Series(
        name, start, start + len(values) * step, step, np.asarray(values, float), options=options
    )


def wave(offset, n=N):
    return offset + 10 * np.sin(np.arange(n) / 8)


def deploy_event(index, n=N):
    values = np.full(n, np.nan)
    values[index] = 1.0
    return series('drawAsInfinite(events("deploy"))', values, drawAsInfinite=True)


def png(series_list, **params):
    body, content_type = render_graph(series_list, params, "png", START, END, UTC)
    assert content_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def svg(series_list, tz=UTC, **params):
    body, content_type = render_graph(series_list, params, "svg", START, END, tz)
    assert content_type == "image/svg+xml"
    return ET.fromstring(body)


def svg_texts(root):
    return [t.text for t in root.iter(f"{SVG_NS}text")]


def mask(pixels, name_or_rgb, tolerance=0):
    """Pixels of exactly this colour (or within ``tolerance`` per channel: antialiased text)."""
    rgb = COLOR_ALIASES[name_or_rgb] if isinstance(name_or_rgb, str) else name_or_rgb
    distance = np.abs(pixels[:, :, :3].astype(int) - np.array(rgb))
    return (distance <= tolerance).all(axis=2)


def dominant(pixels, row, area):
    """The most common colour along one pixel row of the plot (grid lines are few)."""
    colours, counts = np.unique(
        pixels[int(row), int(area.left) + 2 : int(area.right) - 2, :3], axis=0, return_counts=True
    )
    return tuple(int(c) for c in colours[counts.argmax()])


def vertical_line_column(pixels, color, top, bottom):
    """The column where ``color`` covers most of rows top..bottom (None if none covers 80%)."""
    hits = mask(pixels, color)[int(top) : int(bottom)].sum(axis=0)
    column = int(hits.argmax())
    return column if hits[column] >= 0.8 * (int(bottom) - int(top)) else None


# --- the deploy overlay --------------------------------------------------------------


def test_deploy_event_is_a_full_height_vertical_line_at_its_time_graph_only():
    width, height, line_width = 400, 200, 1.2
    event_index = 70
    pixels = png(
        [series("a", wave(50)), series("b", wave(20)), deploy_event(event_index)],
        width=str(width), height=str(height), graphOnly="true",
    )  # fmt: skip
    assert pixels.shape == (height, width, 4)
    # graphOnly: the plot is the whole image; slope mode spans start .. last point.
    time_range = (END - STEP) - START
    graph_width = width - (line_width + 1)
    expected = line_width / 2 + event_index * STEP * graph_width / time_range
    column = vertical_line_column(pixels, "red", 0, height)  # third colour of colorList
    assert column is not None
    assert abs(column + 0.5 - expected) <= 1.0


def test_deploy_event_line_in_a_full_graph_sits_at_the_event_time():
    event_index = 30
    series_list = [
        series("api.latency", wave(50)),
        series("api.errors", wave(20)),
        deploy_event(event_index),
    ]
    params = {"title": "Deploys", "width": "500", "height": "300"}
    scene = layout_graph(series_list, GraphOptions.from_params(params), UTC)
    area = scene.area
    # expected from the plot area alone, the way graphite maps time to x
    time_range = (END - STEP) - START
    expected = area.left + 0.6 + event_index * STEP * (area.width - 2.2) / time_range
    pixels = png(series_list, **params)
    column = vertical_line_column(pixels, "red", area.top + 1, area.bottom - 1)
    assert column is not None
    assert abs(column + 0.5 - expected) <= 1.0
    # and the line spans the plot, not the legend or title
    red = mask(pixels, "red")[:, column]
    assert red[int(area.top) + 2 : int(area.bottom) - 1].all()
    assert not red[: int(area.top) - 2].any()


def test_event_outside_zero_and_null_draw_no_vertical_line():
    values = np.full(N, np.nan)
    values[10] = 0.0
    pixels = png(
        [series("a", wave(50)), series("b", wave(20)), series("ev", values, drawAsInfinite=True)],
        graphOnly="true",
    )
    assert vertical_line_column(pixels, "red", 0, 250) is None


def test_infinite_values_do_not_stretch_the_y_axis():
    scene = layout_graph(
        [series("a", np.full(N, 5.0)), deploy_event(3)], GraphOptions.from_params({}), UTC
    )
    top = float(scene.texts("ylabel")[-1].text)
    assert 5 < top < 6  # range fitted to the data around 5, not to the event


# --- legend, title, axes -------------------------------------------------------------------


def test_svg_is_valid_xml_sized_in_pixels_and_shows_each_name_in_the_legend():
    names = ["servers.web1.cpu", "servers.web2.cpu", "deploys"]
    root = svg(
        [series(names[0], wave(50)), series(names[1], wave(20)), deploy_event(5)], title="CPU"
    )
    assert root.tag == f"{SVG_NS}svg"
    assert (root.get("width"), root.get("height")) == ("330px", "250px")
    texts = svg_texts(root)
    assert "CPU" in texts
    for name in names[:2]:
        assert name in texts
    assert 'drawAsInfinite(events("deploy"))' in texts


def test_hide_legend_removes_the_legend_and_gives_the_plot_the_room():
    series_list = [series("alpha.series", wave(50)), series("beta.series", wave(20))]
    assert "alpha.series" not in svg_texts(svg(series_list, hideLegend="true"))
    shown = layout_graph(series_list, GraphOptions.from_params({}), UTC)
    hidden = layout_graph(series_list, GraphOptions.from_params({"hideLegend": "true"}), UTC)
    assert hidden.area.bottom > shown.area.bottom
    assert not hidden.texts("legend") and len(shown.texts("legend")) == 2


def test_legend_hides_itself_above_ten_series_unless_asked_for():
    many = [series(f"s{i}", wave(i)) for i in range(11)]
    assert not layout_graph(many, GraphOptions.from_params({}), UTC).texts("legend")
    forced = layout_graph(many, GraphOptions.from_params({"hideLegend": "false"}), UTC)
    assert [t.text for t in forced.texts("legend")] == [f"s{i}" for i in range(11)]


def test_unique_legend_and_hide_null_from_legend():
    series_list = [
        series("dup", wave(1)),
        series("dup", wave(2)),
        series("empty", np.full(N, np.nan)),
    ]
    scene = layout_graph(
        series_list,
        GraphOptions.from_params({"uniqueLegend": "true", "hideNullFromLegend": "true"}),
        UTC,
    )
    assert [t.text for t in scene.texts("legend")] == ["dup"]


def test_legend_swatches_use_the_series_colours():
    pixels = png([series("one", wave(50)), series("two", wave(20))], width="400")
    scene = layout_graph([series("one", wave(50)), series("two", wave(20))],
                         GraphOptions.from_params({"width": "400"}), UTC)  # fmt: skip
    legend_top = int(scene.area.bottom)
    assert mask(pixels[legend_top:], "blue").sum() >= 50
    assert mask(pixels[legend_top:], "green").sum() >= 50


def test_x_labels_are_in_the_requested_time_zone():
    start = int(datetime(2024, 1, 10, 0, 0, tzinfo=UTC).timestamp())
    data = [series("a", wave(5, 180), start=start)]
    utc = layout_graph(data, GraphOptions.from_params({}), UTC)
    tokyo = layout_graph(data, GraphOptions.from_params({}), ZoneInfo("Asia/Tokyo"))
    assert [t.text for t in utc.texts("xlabel")] == ["00:00", "01:00", "02:00"]
    assert [t.text for t in tokyo.texts("xlabel")] == ["09:00", "10:00", "11:00"]
    custom = layout_graph(data, GraphOptions.from_params({"xFormat": "%Hh%M"}), UTC)
    assert custom.texts("xlabel")[0].text == "00h00"


def test_hide_axes_and_graph_only_leave_only_lines():
    data = [series("a", wave(5)), series("b", wave(9))]
    for params in ({"hideAxes": "true", "hideLegend": "true"}, {"graphOnly": "true", "title": "t"}):
        scene = layout_graph(data, GraphOptions.from_params(params), UTC)
        assert not scene.texts()
        assert {type(i) for i in scene.items} == {Polyline}
    only = layout_graph(data, GraphOptions.from_params({"graphOnly": "true"}), UTC)
    assert (only.area.left, only.area.top, only.area.right, only.area.bottom) == (0, 0, 330, 250)


def test_hide_y_axis_and_hide_x_axis_drop_their_labels():
    data = [series("a", wave(5))]
    no_y = layout_graph(data, GraphOptions.from_params({"hideYAxis": "true"}), UTC)
    no_x = layout_graph(data, GraphOptions.from_params({"hideXAxis": "true"}), UTC)
    assert not no_y.texts("ylabel") and no_y.texts("xlabel")
    assert not no_x.texts("xlabel") and no_x.texts("ylabel")


def test_vertical_titles_and_second_y_axis():
    data = [series("left.s", wave(50)), series("right.s", wave(5000), secondYAxis=True)]
    scene = layout_graph(
        data, GraphOptions.from_params({"vtitle": "ms", "vtitleRight": "req/s"}), UTC
    )
    assert [t.text for t in scene.texts("vtitle")] == ["ms", "req/s"]
    labels = scene.texts("ylabel")
    left = [t for t in labels if t.x < scene.area.left]
    right = [t for t in labels if t.x > scene.area.right]
    assert left and right
    assert max(float(t.text.split()[0]) for t in left) <= 100
    assert min(float(t.text.split()[0]) for t in right) >= 4000


def test_y_axis_side_right_puts_labels_right():
    scene = layout_graph(
        [series("a", wave(50))], GraphOptions.from_params({"yAxisSide": "right"}), UTC
    )
    assert all(t.x >= scene.area.right for t in scene.texts("ylabel"))


# --- colours and background -----------------------------------------------------------------


def test_lines_follow_color_list_and_series_colours_win():
    flat = [
        series("a", np.full(N, 10.0)),
        series("b", np.full(N, 20.0)),
        series("c", np.full(N, 30.0)),
    ]
    pixels = png(flat, colorList="ff0000,00ff00,0000ff", yMin="0", yMax="40", lineWidth="2")
    for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert mask(pixels, rgb).sum() > 150
    flat[1] = series("b", np.full(N, 20.0), color="ff8000")
    pixels = png(flat, colorList="ff0000,00ff00,0000ff", yMin="0", yMax="40", lineWidth="2")
    assert mask(pixels, (255, 128, 0)).sum() > 150
    assert mask(pixels, (0, 255, 0)).sum() > 150  # c takes the next colour of the list
    assert mask(pixels, (0, 0, 255)).sum() == 0


def test_line_rows_match_their_values():
    pixels = png([series("a", np.full(N, 10.0))], yMin="0", yMax="40", lineWidth="2",
                 colorList="ff0000", hideLegend="true")  # fmt: skip
    scene = layout_graph([series("a", np.full(N, 10.0))],
                         GraphOptions.from_params({"yMin": "0", "yMax": "40", "hideLegend": "true",
                                                   "lineWidth": "2"}), UTC)  # fmt: skip
    area = scene.area
    expected_row = area.bottom - (10 / 40) * area.height
    rows = np.flatnonzero(mask(pixels, (255, 0, 0)).sum(axis=1) > 0.8 * area.width)
    assert len(rows) and abs(rows.mean() + 0.5 - expected_row) <= 1.0


def test_bgcolor_fills_the_background_and_fgcolor_colours_text():
    pixels = png([series("a", wave(5))], bgcolor="000000", fgcolor="ffffff", title="T")
    assert tuple(pixels[0, 0]) == (0, 0, 0, 255) and tuple(pixels[-1, -1]) == (0, 0, 0, 255)
    assert mask(pixels, "white", tolerance=40).sum() > 20
    translucent = png([series("a", wave(5))], bgcolor="ff000000")
    assert translucent[0, 0, 3] == 0


def test_grid_colours_are_configurable_and_hide_grid_drops_the_grid():
    params = {"majorGridLineColor": "00ffff", "minorGridLineColor": "ff00ff"}
    body, _ = render_graph([series("a", wave(5))], params, "svg", START, END, UTC)
    assert b"stroke: #00ffff" in body and b"stroke: #ff00ff" in body
    plain, _ = render_graph([series("a", wave(5))], {}, "svg", START, END, UTC)
    assert b"stroke: #00ffff" not in plain and b"stroke: #c896c8" in plain  # graphite's rose
    hidden = layout_graph(
        [series("a", wave(5))], GraphOptions.from_params({"hideGrid": "true"}), UTC
    )
    assert hidden.texts("ylabel")  # labels stay, grid goes
    assert not [i for i in hidden.items if isinstance(i, Segments)]


# --- y range -----------------------------------------------------------------------------


def test_y_min_y_max_clamp_the_axis_and_clip_the_lines():
    data = [series("a", np.linspace(0, 100, N))]
    root = svg(data, yMin="40", yMax="60")
    texts = [t.strip() for t in svg_texts(root)]
    assert "40.0" in texts and "60.0" in texts and "100.0" not in texts and "0" not in texts
    params = {"yMin": "40", "yMax": "60", "colorList": "ff0000", "hideLegend": "true"}
    scene = layout_graph(data, GraphOptions.from_params(params), UTC)
    pixels = png(data, **params)
    red_rows = np.flatnonzero(mask(pixels, (255, 0, 0)).any(axis=1))
    assert (
        red_rows.min() >= int(scene.area.top) - 1 and red_rows.max() <= int(scene.area.bottom) + 1
    )


def test_log_base_labels_powers():
    data = [series("a", np.geomspace(1, 5000, N))]
    labels = [
        t.text.strip()
        for t in layout_graph(data, GraphOptions.from_params({"logBase": "10"}), UTC).texts(
            "ylabel"
        )
    ]
    assert labels == ["1.0", "10.0", "100.0", "1.0 k", "10.0 k"]
    scene = layout_graph(data, GraphOptions.from_params({"logBase": "10"}), UTC)
    line = next(i for i in scene.items if isinstance(i, Polyline))
    # equal ratios are equal distances on a log axis
    ys = line.ys[~np.isnan(line.ys)]
    assert np.allclose(np.diff(ys), np.diff(ys)[0], rtol=1e-6)


def test_log_base_with_values_at_zero_is_refused():
    with pytest.raises(
        GraphOptionError, match="logBase=10.0: a logarithmic scale needs values greater than zero"
    ):
        render_graph(
            [series("a", np.arange(N, dtype=float))], {"logBase": "10"}, "png", START, END, UTC
        )


def test_y_unit_system_shapes_labels():
    data = [series("a", np.linspace(0, 3 * 1024**3, N))]
    binary = [
        t.text
        for t in layout_graph(data, GraphOptions.from_params({"yUnitSystem": "binary"}), UTC).texts(
            "ylabel"
        )
    ]
    si = [t.text for t in layout_graph(data, GraphOptions.from_params({}), UTC).texts("ylabel")]
    none = [
        t.text
        for t in layout_graph(data, GraphOptions.from_params({"yUnitSystem": "none"}), UTC).texts(
            "ylabel"
        )
    ]
    assert any(" Mi" in t for t in binary) and any(" G" in t for t in si)
    assert not any(c.isalpha() for t in none for c in t)


# --- areas -------------------------------------------------------------------------------


def test_area_mode_stacked_fills_each_band_with_its_colour():
    data = [series("low", np.full(N, 10.0)), series("high", np.full(N, 20.0))]
    params = {
        "areaMode": "stacked",
        "colorList": "ff0000,0000ff",
        "hideLegend": "true",
        "yMin": "0",
    }
    scene = layout_graph(data, GraphOptions.from_params(params), UTC)
    pixels = png(data, **params)
    area = scene.area
    top_value = float(scene.texts("ylabel")[-1].text)
    row = lambda v: int(area.bottom - v / top_value * area.height)  # noqa: E731
    assert dominant(pixels, row(3.7), area) == (255, 0, 0)  # 0..10: first series
    assert dominant(pixels, row(21.3), area) == (0, 0, 255)  # 10..30: second, stacked on it
    assert dominant(pixels, row(30) - 3, area) == (255, 255, 255)  # above the stack
    assert top_value >= 30


def test_area_alpha_blends_the_fill_and_keeps_a_solid_line():
    data = [series("a", np.full(N, 10.0))]
    params = {"areaMode": "all", "areaAlpha": "0.5", "colorList": "0000ff", "hideLegend": "true",
              "yMin": "0", "yMax": "20"}  # fmt: skip
    scene = layout_graph(data, GraphOptions.from_params(params), UTC)
    pixels = png(data, **params)
    inside = dominant(pixels, scene.area.bottom - 0.185 * scene.area.height, scene.area)
    assert abs(inside[0] - 127) <= 2 and inside[2] == 255  # half blue over white
    assert mask(pixels, (0, 0, 255)).sum() > 100  # the stroke on top


def test_area_between_fills_only_the_band():
    lower = series("areaBetween(x)", np.full(N, 10.0), stacked=True, invisible=True)
    upper = series("areaBetween(x)", np.full(N, 30.0), stacked=True)
    params = {"colorList": "ff0000,0000ff", "hideLegend": "true", "yMin": "0", "yMax": "40"}
    scene = layout_graph([lower, upper], GraphOptions.from_params(params), UTC)
    pixels = png([lower, upper], **params)
    area = scene.area
    row = lambda v: int(area.bottom - v / 40 * area.height)  # noqa: E731
    assert dominant(pixels, row(21.3), area) == (0, 0, 255)
    assert dominant(pixels, row(3.7), area) == (255, 255, 255)
    assert not mask(pixels, (255, 0, 0)).any()  # the lower series stays invisible


def test_stacked_option_series_are_drawn_first():
    data = [series("line", wave(5)), series("area", np.full(N, 3.0), stacked=True)]
    scene = layout_graph(data, GraphOptions.from_params({}), UTC)
    drawn = [i for i in scene.items if isinstance(i, Fill | Polyline)]
    assert isinstance(drawn[0], Fill) and drawn[0].label == "area"


# --- nulls and line modes ------------------------------------------------------------------


def polyline(data, **params):
    scene = layout_graph(data, GraphOptions.from_params(params), UTC)
    return next(i for i in scene.items if isinstance(i, Polyline))


def gaps(line):
    return int(np.isnan(line.ys).sum())


def test_nulls_are_gaps_or_zero_with_draw_null_as_zero():
    values = wave(50)
    values[40:45] = np.nan
    assert gaps(polyline([series("a", values)])) == 1
    zeroed = polyline([series("a", values)], drawNullAsZero="true")
    assert gaps(zeroed) == 0 and np.nanmax(zeroed.ys) > np.nanmax(
        polyline([series("a", values)]).ys
    )


def test_connected_mode_bridges_gaps_up_to_connected_limit():
    values = wave(50)
    values[40:45] = np.nan
    values[80:82] = np.nan
    assert gaps(polyline([series("a", values)], lineMode="connected")) == 0
    assert gaps(polyline([series("a", values)], lineMode="connected", connectedLimit="3")) == 1
    assert gaps(polyline([series("a", values)], lineMode="connected", connectedLimit="1")) == 2


def test_staircase_holds_each_value_for_a_step():
    line = polyline([series("a", [1.0, 2.0, 3.0], step=600)], lineMode="staircase")
    assert len(line.xs) == 6
    assert line.ys[0] == line.ys[1] and line.ys[2] == line.ys[3]
    assert line.xs[1] == pytest.approx(line.xs[2])


def test_per_series_line_width_dash_and_alpha():
    data = [series("a", wave(5), lineWidth=4, dashed=3, alpha=0.5)]
    line = polyline(data)
    assert (line.width, line.dash, line.color[3]) == (4.0, 3.0, 0.5)


def test_bad_series_colour_is_refused():
    with pytest.raises(GraphOptionError, match="cannot draw color=nocolour"):
        render_graph([series("a", wave(5), color="nocolour")], {}, "png", START, END, UTC)


def test_many_points_are_consolidated_to_the_pixels():
    line = polyline([series("a", np.arange(20_000, dtype=float), step=1)])
    assert len(line.xs) < 330


# --- formats and edges -------------------------------------------------------------------


def test_pdf_is_a_pdf_document():
    body, content_type = render_graph(
        [series("a", wave(5)), deploy_event(4)], {}, "pdf", START, END, UTC
    )
    assert content_type == "application/x-pdf"
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")


@pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not installed"
)
def test_pdf_renders_with_pdftoppm(tmp_path):
    body, _ = render_graph([series("a", wave(5))], {"bgcolor": "000000"}, "pdf", START, END, UTC)
    (tmp_path / "g.pdf").write_bytes(body)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "72", tmp_path / "g.pdf", tmp_path / "out"], check=True
    )
    page = next(tmp_path.glob("out*.png"))
    pixels = np.asarray(Image.open(page).convert("RGB"))
    assert tuple(pixels[2, 2]) == (0, 0, 0)


def test_no_series_draws_no_data_in_red():
    pixels = png([])
    assert pixels.shape == (250, 330, 4)
    assert mask(pixels, "red", tolerance=40).sum() > 20
    assert "No Data" in svg_texts(svg([]))


def test_unknown_format_and_empty_window_are_refused():
    with pytest.raises(GraphOptionError, match="cannot draw format=gif"):
        render_graph([], {}, "gif", START, END, UTC)
    with pytest.raises(GraphOptionError, match="cannot draw until="):
        render_graph([], {}, "png", END, START, UTC)


def test_text_is_not_mathtext_and_odd_names_survive():
    name = "cost.$a$.{b,c}_50%"
    assert name in svg_texts(svg([series(name, wave(5))]))


def test_width_and_height_set_the_image_size():
    assert png([series("a", wave(5))], width="640", height="100").shape == (100, 640, 4)


def test_example_graph_for_the_readme(tmp_path):
    """The README's deploy-overlay picture: two series and an aliased drawAsInfinite(events(...)).

    ``CARBYNE_WRITE_EXAMPLE_GRAPH=1 python3 -m pytest tests/render/test_graphs_draw.py -k example``
    rewrites docs/example-graph.png; otherwise the image goes to a temporary folder.
    """
    start = int(datetime(2024, 5, 14, 9, 0, tzinfo=UTC).timestamp())
    n = 180
    t = np.arange(n)
    latency = 120 + 15 * np.sin(t / 9) + np.where(t >= 110, 45 * (1 - np.exp(-(t - 110) / 6)), 0)
    errors = 40 + 6 * np.cos(t / 7) + np.where(t >= 110, 25, 0)
    deploy = np.full(n, np.nan)
    deploy[110] = 1
    data = [
        series("api.latency_p95", latency, start=start),
        series("api.errors_per_min", errors, start=start),
        series("deploy", deploy, start=start, drawAsInfinite=True),
    ]
    params = {
        "title": "api after the 10:50 deploy",
        "width": "640",
        "height": "300",
        "vtitle": "ms / count",
    }
    body, _ = render_graph(data, params, "png", start, start + n * 60, UTC)
    target = tmp_path / "example-graph.png"
    if os.environ.get("CARBYNE_WRITE_EXAMPLE_GRAPH") == "1":
        target = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "example-graph.png")
        os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as handle:
        handle.write(body)
    pixels = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
    assert pixels.shape == (300, 640, 4)
    scene = layout_graph(data, GraphOptions.from_params(params), UTC)
    column = vertical_line_column(pixels, "red", scene.area.top + 1, scene.area.bottom - 1)
    assert column is not None and abs(column + 0.5 - scene.x_for(start + 110 * 60)) <= 1.0


def test_legend_columns_stay_inside_the_image():
    names = ["api.latency_p95", "api.errors_per_min", 'drawAsInfinite(events("deploy"))']
    data = [series(name, wave(i)) for i, name in enumerate(names)]
    scene = layout_graph(data, GraphOptions.from_params({"width": "640", "vtitle": "ms"}), UTC)
    legend = scene.texts("legend")
    assert [t.text for t in legend] == names
    assert all(t.x + t.width <= 640 for t in legend)


def test_svg_ends_with_graphites_metadata_script():
    import json

    values = wave(50)
    values[3] = np.nan
    root = svg([series("a.b", values), series("filled", wave(5), stacked=True)])
    script = root.find(f"{SVG_NS}script").text.strip()
    assert script.startswith("metadata = ")
    metadata = json.loads(script[len("metadata = ") :])
    assert metadata["x"] == {"start": START, "end": END - STEP}
    assert [s["name"] for s in metadata["series"]] == ["a.b"]  # graphite leaves stacked ones out
    drawn = metadata["series"][0]
    assert drawn["color"] == "#6464ff" and drawn["step"] == STEP and drawn["valuesPerPoint"] == 1
    assert drawn["data"][3] is None and drawn["data"][0] == pytest.approx(values[0])
    assert metadata["y"]["labels"] and set(metadata["area"]) == {"xmin", "xmax", "ymin", "ymax"}
