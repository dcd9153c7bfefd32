"""Special: series that come from nowhere, and per-series render settings (graphite's "Special" group)."""

from __future__ import annotations

from render.functions.params import Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.series import CONSOLIDATION_FUNCTIONS, Series


def constant_line(ctx: RequestContext, value: float) -> Series:
    """Three points at ``value``: at the request's start, middle and end.

    Named ``str(value)`` with path expression ``constantLine(<value>)``.
    """
    step = int((ctx.end - ctx.start) / 2.0)
    return Series(
        str(value),
        ctx.start,
        ctx.end,
        step,
        [value, value, value],
        path_expression=f"constantLine({value})",
        x_files_factor=ctx.x_files_factor,
    )


@series_function("constantLine", group="Special", params=[Param("value", ParamType.float, required=True)])
def constant_line_function(ctx: RequestContext, value: float) -> list[Series]:
    """A horizontal line at ``value`` across the whole requested time range."""
    return [constant_line(ctx, value)]


@series_function(
    "consolidateBy",
    group="Special",
    params=[
        Param("seriesList", ParamType.seriesList, required=True),
        Param(
            "consolidationFunc",
            ParamType.string,
            required=True,
            options=CONSOLIDATION_FUNCTIONS,
        ),
    ],
)
def consolidate_by(ctx: RequestContext, series_list: list[Series], consolidation_func: str) -> list[Series]:
    """Choose how points are merged when a series must be consolidated.

    That happens to fit ``maxDataPoints`` or the graph's width, and when
    series of different steps are combined. The default is ``average``; one
    of sum, average (avg), avg_zero, min, max, first, last.
    """
    result = []
    for series in series_list:
        name = f'consolidateBy({series.name},"{consolidation_func}")'
        result.append(
            series.copy(
                name=name,
                path_expression=name,
                consolidation_func=consolidation_func,
                tags={**series.tags, "consolidateBy": consolidation_func},
            )
        )
    return result
