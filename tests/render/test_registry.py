"""The registry, the Python signatures, graphite-web's /functions and the core list agree."""

from __future__ import annotations

import inspect
import re

import pytest
from oracle import graphite_functions, graphite_params_json, graphite_signature

from render.functions import InputError, Param, ParamType, RequestContext, default_registry
from render.functions.registry import Registry, series_function
from render.series import Series

#: The functions Carbyne must have (issue 4's core list), aliases included.
CORE_FUNCTIONS = {
    "sumSeries", "sum", "averageSeries", "avg", "minSeries", "maxSeries", "diffSeries",
    "multiplySeries", "divideSeries", "divideSeriesLists", "asPercent", "pct", "aggregate",
    "group", "countSeries", "percentileOfSeries", "stddevSeries", "rangeOfSeries", "scale",
    "scaleToSeconds", "offset", "absolute", "invert", "pow", "squareRoot", "derivative",
    "nonNegativeDerivative", "perSecond", "integral", "delay", "timeShift", "movingAverage",
    "movingSum", "movingMin", "movingMax", "movingMedian", "movingWindow",
    "exponentialMovingAverage", "summarize", "hitcount", "keepLastValue", "transformNull",
    "consolidateBy", "alias", "aliasByNode", "aliasByMetric", "aliasSub", "legendValue",
    "highestCurrent", "highestMax", "highestAverage", "lowestCurrent", "lowestAverage",
    "currentAbove", "currentBelow", "averageAbove", "maximumAbove", "limit", "exclude", "grep",
    "sortByName", "sortByMaxima", "sortByTotal", "groupByNode", "groupByNodes", "constantLine",
    "threshold", "removeBelowValue", "removeAboveValue", "nPercentile", "color", "lineWidth",
    "dashed", "stacked", "drawAsInfinite", "secondYAxis",
}

#: Where graphite's "function" field disagrees with its own params (so ours follows the params).
SIGNATURE_DIFFERENCES = {
    # Python parameter alignDST, declared param alignDst (so alignDst=... crashes graphite).
    "timeShift": "timeShift(seriesList, timeShift, resetEnd=True, alignDST=False)",
    # Python *valueTypes, declared param valuesTypes.
    "legendValue": "legendValue(seriesList, *valueTypes)",
    # Python (seriesLists, stackName='__DEFAULT__'), declared params (seriesList, stack).
    "stacked": "stacked(seriesLists, stackName='__DEFAULT__')",
    # Python *positions, declared param position.
    "aggregateWithWildcards": "aggregateWithWildcards(seriesList, func, *positions)",
    # Python n=1, declared param n required.
    "highest": "highest(seriesList, n=1, func='average')",
    "lowest": "lowest(seriesList, n=1, func='average')",
    # Python *seriesLists, declared param seriesList.
    "powSeries": "powSeries(*seriesLists)",
    # Python precision=None, declared param default 0.
    "round": "round(seriesList, precision=None)",
}

#: Carbyne's additions to graphite's language (a clear superset: documented, never renamed).
CARBYNE_EXTRAS = {"eventsOverlay"}

REGISTRY = default_registry()
NAMES = REGISTRY.names()
GRAPHITE_NAMES = [name for name in NAMES if name not in CARBYNE_EXTRAS]


def test_every_core_function_is_registered() -> None:
    assert sorted(CORE_FUNCTIONS - set(NAMES)) == []


@pytest.mark.usefixtures("graphite_web")
def test_every_graphite_function_is_registered_and_extras_are_not_graphites() -> None:
    graphite = set(graphite_functions())
    assert sorted(graphite - set(NAMES)) == []
    assert sorted(CARBYNE_EXTRAS & graphite) == []


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("name", GRAPHITE_NAMES)
def test_function_matches_graphite_metadata(name: str) -> None:
    graphite = graphite_functions()
    assert name in graphite, f"{name} is not a graphite-web 1.1.10 function"
    info = REGISTRY.describe(name)
    assert info["group"] == graphite[name].group
    expected_params = graphite_params_json(name)
    ours = info["params"]
    for mine, theirs in zip(ours, expected_params, strict=True):
        if mine["type"] == "aggOrSeriesFunc":
            # graphite also lists aggregator functions Carbyne does not have
            assert set(mine.pop("options")) <= set(theirs.pop("options"))
        assert mine == theirs
    expected_signature = SIGNATURE_DIFFERENCES.get(name, graphite_signature(name))
    if name in SIGNATURE_DIFFERENCES:
        assert graphite_signature(name) == expected_signature
        assert info["function"] != expected_signature
    else:
        assert info["function"] == expected_signature
    assert info["description"].strip(), f"{name} has no docstring"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@pytest.mark.parametrize("name", NAMES)
def test_python_signature_matches_params(name: str) -> None:
    function = REGISTRY.get(name)
    parameters = list(inspect.signature(function.body).parameters.values())
    assert parameters[0].name == "ctx"
    if function.window is not None:
        widened = parameters.pop()
        assert (widened.name, widened.kind, widened.default) == ("widened", inspect.Parameter.KEYWORD_ONLY, None)
    if function.shifts is not None:
        shifted = parameters.pop()
        assert (shifted.name, shifted.kind, shifted.default) == ("shifted", inspect.Parameter.KEYWORD_ONLY, None)
    if function.generates is not None:
        generated = parameters.pop()
        assert (generated.name, generated.kind) == ("generated", inspect.Parameter.KEYWORD_ONLY)
    assert len(parameters) - 1 == len(function.params)
    for parameter, param in zip(parameters[1:], function.params, strict=True):
        assert parameter.name == _snake(param.name)
        if param.multiple:
            assert parameter.kind is inspect.Parameter.VAR_POSITIONAL
        elif param.required:
            assert parameter.default is inspect.Parameter.empty
        else:
            assert parameter.default == param.default or (
                parameter.default is None and param.default is None
            ), f"{name}: {param.name} default {parameter.default!r} vs {param.default!r}"


def test_aliases_share_the_declaration() -> None:
    assert REGISTRY.get("sum") is REGISTRY.get("sumSeries")
    assert REGISTRY.get("avg") is REGISTRY.get("averageSeries")
    assert REGISTRY.get("pct") is REGISTRY.get("asPercent")
    assert REGISTRY.describe("sum")["function"] == "sum(*seriesLists)"


def test_describe_all_filters_and_groups() -> None:
    combine = REGISTRY.describe_all(group="Combine")
    assert "sumSeries" in combine and all(v["group"] == "Combine" for v in combine.values())
    grouped = REGISTRY.describe_all(grouped=True)
    assert grouped["Combine"] == combine
    assert sum(len(v) for v in grouped.values()) == len(REGISTRY)


CTX = RequestContext(start=0, end=300, now=300)
A = Series("a.b.c", 60, 360, 60, [1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "message"),
    [
        ("groupByNode", [[A], 1.5], {}, "cannot call groupByNode nodeNum=1.5: not a node number or tag name"),
        ("groupByNode", [[A], 1, "nope"], {}, "cannot call groupByNode callback='nope': not an aggregation function"),
        ("groupByNode", [[A]], {}, "cannot call groupByNode nodeNum=None: required"),
        ("groupByNode", [[A], 1, "sum", 4], {}, "cannot call groupByNode arguments=4: takes at most 3"),
        ("groupByNode", [[A], 1], {"bogus": 1}, "cannot call groupByNode bogus=1: unexpected keyword argument"),
        ("groupByNode", [[A], 1], {"nodeNum": 2}, "cannot call groupByNode nodeNum=2: given twice"),
        ("sumSeries", ["a.b"], {}, "cannot call sumSeries seriesLists='a.b': not a series list"),
        ("sumSeries", [], {}, "cannot call sumSeries seriesLists=(): required"),
        ("consolidateBy", [[A], "median"], {}, "cannot call consolidateBy consolidationFunc='median': not one of"),
        ("percentileOfSeries", [[A], "x"], {}, "cannot call percentileOfSeries n='x': not a number"),
        ("percentileOfSeries", [[A], 50, 2], {}, "cannot call percentileOfSeries interpolate=2: not a boolean"),
        ("nosuchFunction", [], {}, "cannot call function='nosuchFunction': unknown function"),
    ],
)
def test_bad_arguments_name_function_parameter_and_value(
    name: str, args: list, kwargs: dict, message: str
) -> None:
    with pytest.raises(InputError) as error:
        REGISTRY.call(name, CTX, args, kwargs)
    assert str(error.value).startswith(message)


def test_binding_accepts_keywords_defaults_and_repeats() -> None:
    bound = REGISTRY.bind("groupByNode", [[A]], {"nodeNum": 1})
    assert bound.arguments["callback"] == "average"
    assert bound.values[1:] == (1, "average")
    bound = REGISTRY.bind("groupByNodes", [[A], "sum", 0, "dc", -1])
    assert bound.arguments["nodes"] == (0, "dc", -1)
    assert bound.values[2:] == (0, "dc", -1)
    bound = REGISTRY.bind("percentileOfSeries", [[A], "50", "true"])
    assert bound.values[1:] == (50.0, True)
    assert REGISTRY.bind("aggregate", [[A], "sumSeries"]).values[1] == "sumSeries"


def test_window_planning_skips_series_validation() -> None:
    assert REGISTRY.window("sumSeries", [None], {}, CTX, 60) is None


def test_registering_a_name_twice_fails() -> None:
    one = series_function("f", group="Special", params=[Param("x", ParamType.float)])(lambda ctx, x=None: [])
    two = series_function("g", group="Special", params=[], aliases=("f",))(lambda ctx: [])
    with pytest.raises(ValueError, match="registered twice"):
        Registry([one, two])
