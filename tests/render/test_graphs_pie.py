"""``graphType=pie``: slices, colours, labels and legend by pixel and by scene; values against graphite-web's.

graphite-web draws a pie with cairo; the pixels cannot be compared, so the
tests look at what a reader sees (each slice's colour at its angle, the
legend's names, the share labels) and compare the number each series
becomes (``pieMode``) with graphite-web's own ``PieFunction`` on the same
values.
"""

from __future__ import annotations

import io
import math
import random
import xml.etree.ElementTree as ET
from datetime import UTC

import numpy as np
import pytest
from app_support import NOW, make_app, write_metric
from oracle import ensure_graphite, to_graphite
from PIL import Image

from render.graphs import (
    GraphOptionError,
    GraphOptions,
    PieOptions,
    literal_slice,
    pie_value,
    render_pie,
)
from render.graphs.pie import layout_pie
from render.graphs.scene import Fill
from render.series import Series

SVG_NS = "{http://www.w3.org/2000/svg}"
COLORS = ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]


def pixels(slices, **params) -> np.ndarray:
    params = {"width": "400", "height": "400", "hideLegend": "true", "colorList": ",".join(COLORS),
              "bgcolor": "black", **params}
    body, content_type = render_pie(slices, params, PieOptions.from_params(params), "png", UTC)
    assert content_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def color_at_angle(image: np.ndarray, degrees_clockwise_from_noon: float, reach: float = 0.75) -> str:
    """The colour at ``reach`` of the radius in that direction from the image centre."""
    height, width, _ = image.shape
    radius = min(width - 30, height - 20) / 2 * 0.95
    angle = math.radians(degrees_clockwise_from_noon)
    x = width / 2 + 5 + reach * radius * math.sin(angle)
    y = height / 2 + reach * radius * -math.cos(angle)
    red, green, blue = image[round(y), round(x)]
    return f"#{red:02x}{green:02x}{blue:02x}"


def test_slices_go_clockwise_from_noon_sized_by_share_in_color_list_order() -> None:
    image = pixels([("a", 1.0), ("b", 1.0), ("c", 2.0)])  # a: 0-90 deg, b: 90-180, c: 180-360
    assert color_at_angle(image, 45) == COLORS[0]
    assert color_at_angle(image, 135) == COLORS[1]
    assert color_at_angle(image, 200) == COLORS[2]
    assert color_at_angle(image, 340) == COLORS[2]
    assert color_at_angle(image, 45, reach=1.2) == "#000000"  # outside the pie: the background


def test_area_alpha_blends_the_slices_with_the_background() -> None:
    image = pixels([("a", 1.0)], areaAlpha="0.5", bgcolor="white")
    assert color_at_angle(image, 90) in ("#ff7f7f", "#ff8080")


def test_legend_names_every_slice_and_labels_show_shares_above_the_minimum() -> None:
    options = GraphOptions.from_params({"title": "Traffic"})
    slices = [(f"s{i}", v) for i, v in enumerate([50.0, 46.0, 4.0] + [0.0] * 9)]  # 12: more than a line graph lists
    scene = layout_pie(slices, options, PieOptions(), UTC)
    assert [t.text for t in scene.texts("legend")] == [name for name, _ in slices]
    assert [t.text for t in scene.texts("title")] == ["Traffic"]
    assert [t.text for t in scene.texts("value")] == ["%50.00", "%46.00"]  # 4 % is under valueLabelsMin=5
    numbers = layout_pie(slices, options, PieOptions(value_labels="number", labels_min=0), UTC)
    assert [t.text for t in numbers.texts("value")][:3] == ["50", "46", "4"]
    hidden = layout_pie(slices, GraphOptions.from_params({"hideLegend": "true"}), PieOptions(value_labels="none"), UTC)
    assert not hidden.texts("legend") and not hidden.texts("value")
    assert len([i for i in hidden.items if isinstance(i, Fill)]) == len(slices)


def test_rotated_labels_turn_with_their_slice() -> None:
    scene = layout_pie([("a", 1.0), ("b", 3.0)], GraphOptions(), PieOptions(labels="rotated"), UTC)
    a, b = scene.texts("value")
    assert a.rotation == pytest.approx(-(270 + 45))  # the middle of 270..360 degrees (cairo's angle)
    assert b.rotation == pytest.approx(-(135 - 180))  # middle at 135 degrees: turned half round to stay upright


def test_no_slices_or_nothing_to_share_is_no_data() -> None:
    for slices in ([], [("a", 0.0)]):
        assert [t.text for t in layout_pie(slices, GraphOptions(), PieOptions(), UTC).texts()] == ["No Data"]


@pytest.mark.parametrize("params, name", [({"pieMode": "median"}, "pieMode"), ({"pieLabels": "up"}, "pieLabels"),
                                          ({"valueLabels": "all"}, "valueLabels"),
                                          ({"valueLabelsMin": "x"}, "valueLabelsMin"),
                                          ({"valueLabelsColor": "nocolor"}, "valueLabelsColor")])
def test_bad_pie_options_name_the_parameter(params, name) -> None:
    with pytest.raises(GraphOptionError, match=name):
        PieOptions.from_params(params)


def test_literal_targets() -> None:
    assert literal_slice("deploys:12.5") == ("deploys", 12.5)
    assert literal_slice("a.b.c") is None
    with pytest.raises(ValueError, match="name:number"):
        literal_slice("a:b")


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("mode", ["average", "maximum", "minimum"])
def test_pie_values_are_graphites(mode) -> None:
    ensure_graphite()
    from graphite.functions import PieFunction

    rng = random.Random(mode)
    for _ in range(50):
        values = [None if rng.random() < 0.3 else rng.uniform(-100, 100) for _ in range(rng.randint(0, 12))]
        series = Series("x", 0, 60 * len(values), 60, values)
        theirs = PieFunction(mode)({}, to_graphite(series)) or 0
        assert pie_value(series, mode) == pytest.approx(theirs, rel=1e-12, abs=1e-12)


def test_render_endpoint_draws_pies_and_refuses_data_formats(tmp_path) -> None:
    for i, name in enumerate(["web.a", "web.b"]):
        write_metric(tmp_path, name, NOW - 600, 60, [float(i + 1)] * 10)
    client = make_app(tmp_path)
    window = {"from": str(NOW - 600), "until": str(NOW), "now": str(NOW)}
    answer = client.get("/render", query_string={"target": ["web.*", "ops:3"], "graphType": "pie", "format": "svg",
                                                 "pieMode": "maximum", **window})
    assert answer.status_code == 200 and answer.content_type == "image/svg+xml"
    root = ET.fromstring(answer.data)
    assert {"web.a", "web.b", "ops"} <= {t.text for t in root.iter(f"{SVG_NS}text")}
    assert "%50.00" in {t.text for t in root.iter(f"{SVG_NS}text")}  # ops: 3 of 1 + 2 + 3
    png = client.get("/render", query_string={"target": "web.*", "graphType": "pie", **window})
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    data = client.get("/render", query_string={"target": "web.*", "graphType": "pie", "format": "json", **window})
    assert data.status_code == 400 and b"graphType='pie'" in data.data
    bad = client.get("/render", query_string={"target": "web:x", "graphType": "pie", **window})
    assert bad.status_code == 400 and b"name:number" in bad.data
