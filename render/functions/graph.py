"""Graph: how series are drawn (graphite's "Graph" group); values are unchanged except by ``stacked``."""

from __future__ import annotations

import numpy as np

from render.functions.aggregation import REQUEST_XFF_KEY
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.functions.special import consolidate_by, constant_line
from render.series import Series

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
DEFAULT_STACK = "__DEFAULT__"


@series_function("color", group="Graph", params=[SERIES_LIST, Param("theColor", ParamType.string, required=True)])
def color(ctx: RequestContext, series_list: list[Series], the_color: str) -> list[Series]:
    """Draw the series in ``theColor`` (a name like ``red`` or hex like ``ff0000``)."""
    return [s.with_options(color=the_color) for s in series_list]


@series_function("lineWidth", group="Graph", params=[SERIES_LIST, Param("width", ParamType.float, required=True)])
def line_width(ctx: RequestContext, series_list: list[Series], width: float) -> list[Series]:
    """Draw the series with lines ``width`` pixels wide."""
    return [s.with_options(lineWidth=width) for s in series_list]


@series_function("dashed", group="Graph", params=[SERIES_LIST, Param("dashLength", ParamType.integer, default=5)])
def dashed(ctx: RequestContext, series_list: list[Series], dash_length: int = 5) -> list[Series]:
    """Draw the series as dashed lines with segments ``dashLength`` long."""
    return [
        s.copy(name=f"dashed({s.name}, {dash_length:g})", tags={**s.tags, "dashed": dash_length},
               options={**s.options, "dashed": dash_length})
        for s in series_list
    ]


#: ``RequestContext.stacks`` key prefix of each stack's "total is still an int" marks
STACK_INTS = "stacked ints"


@series_function("stacked", group="Graph", params=[SERIES_LIST, Param("stack", ParamType.string)])
def stacked(ctx: RequestContext, series_list: list[Series], stack: str | None = None) -> list[Series]:
    """Stack these series on top of each other (and on earlier ``stacked`` series of the same request).

    Each value becomes the running total at its point; ``stack`` names
    separate stacks (then the names are left as they are).
    """
    stack_name = stack or DEFAULT_STACK
    totals = np.asarray(ctx.stacks.get(stack_name, np.zeros(0)), dtype=np.float64)
    # graphite's totals start as the int 0 and stay ints while only ints are added
    ints_key = (STACK_INTS, stack_name)
    total_ints = np.asarray(ctx.stacks.get(ints_key, np.zeros(0, dtype=bool)))
    result = []
    for s in series_list:
        if len(totals) < len(s):
            totals = np.concatenate((totals, np.zeros(len(s) - len(totals))))
            total_ints = np.concatenate((total_ints, np.ones(len(s) - len(total_ints), dtype=bool)))
        valid = ~np.isnan(s.values)
        totals = totals.copy()
        totals[: len(s)][valid] += s.values[valid]
        values = np.where(valid, totals[: len(s)], np.nan)
        added_floats = np.zeros(len(totals), dtype=bool)
        added_floats[: len(s)] = valid & (True if s.int_points is None else ~s.int_points)
        total_ints = total_ints & ~added_floats
        ints = total_ints[: len(s)] & valid
        if stack_name == DEFAULT_STACK:
            name, tags = f"stacked({s.name})", {**s.tags, "stacked": stack_name}
        else:
            name, tags = s.name, s.tags
        result.append(
            s.copy(name=name, path_expression=name, values=values, tags=tags,
                   options={**s.options, "stacked": True}, int_points=ints if ints.any() else None)
        )
    ctx.stacks[stack_name] = totals
    ctx.stacks[ints_key] = total_ints
    return result


@series_function("drawAsInfinite", group="Graph", params=[SERIES_LIST])
def draw_as_infinite(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Draw a full-height vertical line where the value is above 0 (nothing where missing or below).

    Handy for on/off events such as deploys or exit codes.
    """
    return [
        s.copy(name=f"drawAsInfinite({s.name})", tags={**s.tags, "drawAsInfinite": 1},
               options={**s.options, "drawAsInfinite": True})
        for s in series_list
    ]


@series_function("secondYAxis", group="Graph", params=[SERIES_LIST])
def second_y_axis(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Draw the series against a second Y axis on the right."""
    return [
        s.copy(name=f"secondYAxis({s.name})", tags={**s.tags, "secondYAxis": 1},
               options={**s.options, "secondYAxis": True})
        for s in series_list
    ]


@series_function(
    "threshold",
    group="Graph",
    params=[Param("value", ParamType.float, required=True), Param("label", ParamType.string),
            Param("color", ParamType.string)],
)
def threshold(ctx: RequestContext, value: float, label: str | None = None, color: str | None = None) -> list[Series]:
    """A horizontal line at ``value``, optionally named ``label`` and drawn in ``color``."""
    line = constant_line(ctx, value, "threshold")
    if label:
        line = line.copy(name=label)
    if color:
        line = line.with_options(color=color)
    return [line]


@series_function("alpha", group="Graph", params=[SERIES_LIST, Param("alpha", ParamType.float, required=True)])
def alpha(ctx: RequestContext, series_list: list[Series], alpha: float) -> list[Series]:
    """Draw the series with opacity ``alpha`` (0 transparent .. 1 opaque)."""
    return [s.with_options(alpha=alpha) for s in series_list]


@series_function("areaBetween", group="Graph", params=[SERIES_LIST])
def area_between(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Fill the area between exactly two series (in either order); use with ``areaMode=stacked``.

    ``areaBetween(service.latency.{min,max})``; build the pair with
    ``group()`` when it comes from two expressions. Both are named
    ``areaBetween(<path expression of the second>)``.
    """
    if len(series_list) != 2:
        raise InputError(f"cannot call areaBetween seriesList={len(series_list)} series: must be exactly 2 series")
    lower, upper = series_list
    name = f"areaBetween({upper.path_expression})"
    tags = {**upper.tags, "areaBetween": 1}
    return [
        lower.copy(name=name, tags=tags, options={**lower.options, "stacked": True, "invisible": True}),
        upper.copy(name=name, tags=tags, options={**upper.options, "stacked": True}),
    ]


@series_function("cumulative", group="Special", params=[SERIES_LIST])
def cumulative(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``consolidateBy(seriesList, "sum")``: merged points add up instead of averaging."""
    return consolidate_by(ctx, series_list, "sum")


@series_function(
    "setXFilesFactor",
    group="Special",
    params=[SERIES_LIST, Param("xFilesFactor", ParamType.float, required=True)],
    aliases=("xFilesFactor",),
)
def set_x_files_factor(ctx: RequestContext, series_list: list[Series], x_files_factor: float) -> list[Series]:
    """The share of points that must have a value for a merged point to have one (0 .. 1).

    It applies where these series are consolidated (``maxDataPoints``,
    combining series of different steps, ``summarize``) and, as in
    graphite-web, becomes the request's default for every function evaluated
    after this call (aggregations such as ``sumSeries``). Short form:
    ``xFilesFactor``.
    """
    ctx.stacks[REQUEST_XFF_KEY] = x_files_factor
    return [s.copy(x_files_factor=x_files_factor, tags={**s.tags, "xFilesFactor": x_files_factor})
            for s in series_list]
