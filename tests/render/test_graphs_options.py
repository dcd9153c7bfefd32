"""GraphOptions: graphite's graph parameters parsed, defaulted and refused with a clear error."""

import math

import pytest

from render.graphs.colors import COLOR_ALIASES, DEFAULT_COLOR_LIST, parse_color, to_hex
from render.graphs.options import GraphOptionError, GraphOptions


def rgb(name: str) -> tuple[float, float, float, float]:
    r, g, b = COLOR_ALIASES[name]
    return (r / 255, g / 255, b / 255, 1.0)


def test_defaults_are_graphites():
    o = GraphOptions.from_params({})
    assert (o.width, o.height, o.margin) == (330, 250, 10)
    assert o.background == rgb("white") and o.foreground == rgb("black")
    assert o.major_grid_color == rgb("rose") and o.minor_grid_color == rgb("grey")
    assert o.color_list == tuple(rgb(c) for c in DEFAULT_COLOR_LIST)
    assert (o.line_mode, o.area_mode, o.y_unit_system, o.y_axis_side) == (
        "slope",
        "none",
        "si",
        "left",
    )
    assert o.line_width == 1.2 and o.font_size == 10 and o.y_divisors == (4, 5, 6)
    assert o.hide_legend is None and o.log_base is None and o.connected_limit is None


def test_values_are_parsed_and_typed():
    o = GraphOptions.from_params(
        {
            "width": "800", "height": "600", "bgcolor": "%23000000", "fgcolor": "#ffffff80",
            "colorList": "red,00ff00,%230000ff", "title": "CPU+load", "lineMode": "Staircase",
            "thickness": "3", "areaMode": "stacked", "areaAlpha": "0.5", "hideLegend": "false",
            "yMin": "-5", "yMax": "max", "logBase": "e", "yUnitSystem": "binary",
            "yDivisors": "3,7", "minorY": "2", "drawNullAsZero": "True", "connectedLimit": "4",
            "rightDashed": "true", "leftWidth": "2.5", "xFormat": "%H",
        }
    )  # fmt: skip
    assert (o.width, o.height) == (800, 600)
    assert o.background == (0.0, 0.0, 0.0, 1.0)
    assert o.foreground == (1.0, 1.0, 1.0, 128 / 255)
    assert o.color_list == (rgb("red"), (0.0, 1.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0))
    assert o.title == "CPU load"  # graphite unquote_plus'es titles once more
    assert (o.line_mode, o.line_width, o.area_mode, o.area_alpha) == (
        "staircase",
        3.0,
        "stacked",
        0.5,
    )
    assert o.hide_legend is False and o.draw_null_as_zero is True
    assert (o.y_min, o.y_max, o.log_base) == (-5.0, "max", math.e)
    assert (o.y_unit_system, o.y_divisors, o.minor_y, o.connected_limit) == ("binary", (3, 7), 2, 4)
    assert (o.right_dashed, o.left_width, o.x_format) == (5.0, 2.5, "%H")


def test_modern_names_win_over_deprecated_aliases():
    o = GraphOptions.from_params({"thickness": "4", "lineWidth": "2", "min": "1", "yMin": "3"})
    assert (o.line_width, o.y_min) == (2.0, 3.0)
    assert GraphOptions.from_params({"max": "9"}).y_max == 9.0


def test_empty_and_default_mean_not_given():
    o = GraphOptions.from_params({"width": "", "bgcolor": "default", "areaMode": "DEFAULT"})
    assert o == GraphOptions()


def test_non_graph_parameters_are_ignored():
    assert (
        GraphOptions.from_params({"target": "a.b", "from": "-1h", "format": "png"})
        == GraphOptions()
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": "-1"}, "cannot draw width=-1: must be between 1 and 8192"),
        ({"width": "0"}, "cannot draw width=0: must be between 1 and 8192"),
        ({"height": "9000"}, "cannot draw height=9000: must be between 1 and 8192"),
        (
            {"width": "8000", "height": "8000"},
            "cannot draw width=8000: 8000x8000 is over 16000000 pixels",
        ),
        ({"width": "12.5"}, "cannot draw width=12.5: not a whole number"),
        ({"width": "wide"}, "cannot draw width=wide: not a number"),
        ({"margin": "-3"}, "cannot draw margin=-3: must be between 0 and 8192"),
        ({"margin": "200"}, "cannot draw margin=200: leaves no room to draw in 330x250"),
        ({"bgcolor": "chartreuse"}, "cannot draw bgcolor=chartreuse: not a graphite colour name"),
        ({"fgcolor": "#12345"}, "cannot draw fgcolor=#12345: not a graphite colour name"),
        ({"colorList": "red,nope"}, "cannot draw colorList=red,nope: 'nope' is not a graphite"),
        ({"colorList": ",,"}, "cannot draw colorList=,,: lists no colours"),
        (
            {"lineMode": "curvy"},
            "cannot draw lineMode=curvy: must be one of slope, staircase, connected",
        ),
        (
            {"areaMode": "some"},
            "cannot draw areaMode=some: must be one of none, first, all, stacked",
        ),
        (
            {"yUnitSystem": "imperial"},
            "cannot draw yUnitSystem=imperial: must be one of si, binary",
        ),
        ({"yAxisSide": "top"}, "cannot draw yAxisSide=top: must be one of left, right"),
        ({"graphType": "bar"}, "cannot draw graphType=bar: must be one of line, pie"),
        ({"hideLegend": "maybe"}, "cannot draw hideLegend=maybe: not true or false"),
        ({"logBase": "1"}, "cannot draw logBase=1: a logarithmic base must be e or greater than 1"),
        ({"logBase": "-2"}, "cannot draw logBase=-2: a logarithmic base"),
        ({"yMin": "nan"}, "cannot draw yMin=nan: not a finite number"),
        ({"yMax": "inf"}, "cannot draw yMax=inf: not a finite number"),
        ({"yStep": "0"}, "cannot draw yStep=0: must be between"),
        ({"areaAlpha": "1.5"}, "cannot draw areaAlpha=1.5: must be between 0 and 1"),
        ({"lineWidth": "1000"}, "cannot draw lineWidth=1000: must be between 0 and 100"),
        ({"fontSize": "0"}, "cannot draw fontSize=0: must be between 1 and 200"),
        ({"yDivisors": "4,0"}, "cannot draw yDivisors=4,0: '0': must be between 1 and 100"),
        ({"minorY": "-1"}, "cannot draw minorY=-1: must be between 0 and 100"),
        ({"title": "x" * 2000}, "cannot draw title=xxxx"),
    ],
)
def test_bad_values_name_the_parameter(params, message):
    with pytest.raises(GraphOptionError) as caught:
        GraphOptions.from_params(params)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)
    assert caught.value.param == next(iter(params))


def test_legend_auto_hides_above_ten_series_unless_asked():
    auto = GraphOptions.from_params({})
    assert not auto.legend_hidden(10) and auto.legend_hidden(11)
    assert not GraphOptions.from_params({"hideLegend": "false"}).legend_hidden(50)
    assert GraphOptions.from_params({"hideLegend": "true"}).legend_hidden(1)
    assert GraphOptions.from_params({"graphOnly": "true"}).legend_hidden(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blue", (100, 100, 255, 255)),
        ("DarkGreen", (0, 255, 0, 255)),
        ("#ff8000", (255, 128, 0, 255)),
        ("%23ff8000", (255, 128, 0, 255)),
        ("ff800040", (255, 128, 0, 64)),
    ],
)
def test_parse_color(text, expected):
    assert tuple(round(c * 255) for c in parse_color(text)) == expected


def test_to_hex_round_trips():
    assert to_hex(parse_color("pink")) == "#ff6464"
    assert to_hex(parse_color("11223344")) == "#11223344"
