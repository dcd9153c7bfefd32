"""``/render``: evaluate targets over a time window and answer in the requested format.

Parameters are read as graphite-web's ``parseOptions`` reads them (GET and
POST alike, ``target`` repeated or ``target[]``, ``template[name]``, legacy
``pickle``/``rawData``, ``jsonp`` only together with ``format``; no format
means a PNG graph). Deliberate differences: a parameter graphite would
silently misuse (``maxDataPoints=abc``, ``xFilesFactor=2``) or an unknown
``format`` (graphite draws a PNG) is a 400 naming it, as is a ``jsonp`` that
is not a JavaScript callback name; ``graphType=pie`` asked for as data
(graphite fails with a 500) is a 400.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Mapping

from flask import Blueprint, Response, current_app, request

from render.attime import parse_time
from render.formats import IMAGE_FORMATS, OutputOptions, get_format
from render.functions import RequestContext
from render.graphs import (
    GraphOptions,
    PieOptions,
    literal_slice,
    pie_value,
    render_graph,
    render_pie,
)
from render.limits import Limits
from render.series import Series
from render.views.errors import INPUT_ERRORS, BadRequest, errors_as_json
from render.views.params import Params, param_time, request_params, time_zone

log = logging.getLogger(__name__)

blueprint = Blueprint("render", __name__)

JSON_FORMATS = ("json", "dygraph", "rickshaw")
GRAPH_TYPES = ("line", "pie")
DEFAULT_CACHE_TIMEOUT = 60


@dataclasses.dataclass(frozen=True)
class RenderRequest:
    """One ``/render`` request, parsed and checked."""

    targets: tuple[str, ...]
    start: int
    end: int
    now: int
    tz: datetime.tzinfo
    format: str
    output: OutputOptions
    graph_params: Mapping[str, str]
    template: Mapping[str, str]
    x_files_factor: float
    local: bool
    no_cache: bool
    cache_timeout: int
    graph_type: str = "line"

    def context(self) -> RequestContext:
        return RequestContext(
            start=self.start, end=self.end, now=self.now, tz=self.tz,
            x_files_factor=self.x_files_factor,
        )


def time_window(params: Params, tz: datetime.tzinfo, wall_clock: float) -> tuple[int, int, int]:
    """``(start, end, now)`` in epoch seconds from ``from``/``until``/``now`` (defaults -1d, now).

    ``from`` after ``until`` is swapped, as graphite does; equal is an error.
    """
    now = param_time(params, "now", tz, None) if "now" in params else datetime.datetime.fromtimestamp(wall_clock, tz)
    until = param_time(params, "until", tz, now) if "until" in params else now
    start = param_time(params, "from", tz, now) if "from" in params else parse_time("-1d", tz, now)
    first, last = sorted((int(start.timestamp()), int(until.timestamp())))
    if first == last:
        raise BadRequest(
            f"cannot render from={params.get('from')!r} until={params.get('until')!r}: empty time range"
        )
    return first, last, int(now.timestamp())


def _max_data_points(params: Params, limits: Limits) -> int | None:
    value = params.get("maxDataPoints")
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadRequest(f"cannot render maxDataPoints={value!r}: needs a positive integer")
    limits.check_max_data_points(int(value))
    return int(value)


def _x_files_factor(params: Params) -> float:
    value = params.get("xFilesFactor")
    if value is None:
        return 0.0
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not 0.0 <= factor <= 1.0:
        raise BadRequest(f"cannot render xFilesFactor={value!r}: needs a number from 0 to 1")
    return factor


def _format(params: Params) -> str:
    name = None
    if "pickle" in params:
        name = "pickle"
    if "rawData" in params:
        name = "raw"
    if "format" in params:
        name = params.get("format")
    if name is None:
        name = "png"
    errors_as_json(name in JSON_FORMATS)
    return name


def parse_render_request(params: Params, *, default_tz: str, limits: Limits, wall_clock: float) -> RenderRequest:
    """Read and check every parameter of a ``/render`` request."""
    fmt = _format(params)
    graph_type = params.get("graphType", "line")
    if graph_type not in GRAPH_TYPES:
        raise BadRequest(f"cannot render graphType={graph_type!r}: expected one of {', '.join(GRAPH_TYPES)}")
    if graph_type == "pie":
        if fmt not in IMAGE_FORMATS:
            raise BadRequest(f"cannot render graphType='pie' format={fmt!r}: pie charts are drawn as png, svg or pdf")
        PieOptions.from_params(params)  # a bad option fails before any data is read
    graph_params = dict(params.items())
    if fmt in IMAGE_FORMATS:
        GraphOptions.from_params(graph_params)  # a bad option fails before any data is read
    else:
        get_format(fmt)
    targets = params.getlist("target") or params.getlist("target[]")
    template = {key[9:-1]: value for key, value in params.items() if key.startswith("template[")}
    cache_timeout = params.int_value("cacheTimeout", DEFAULT_CACHE_TIMEOUT)
    tz = time_zone(params, default_tz)
    start, end, now = time_window(params, tz, wall_clock)
    output = OutputOptions(
        tz=tz,
        jsonp=params.jsonp() if "format" in params else None,
        pretty=bool(params.get("pretty")),
        max_data_points=_max_data_points(params, limits),
        no_null_points="noNullPoints" in params,
    )
    return RenderRequest(
        targets=tuple(targets),
        start=start,
        end=end,
        now=now,
        tz=tz,
        format=fmt,
        output=output,
        graph_params=graph_params,
        template=template,
        x_files_factor=_x_files_factor(params),
        local=params.get("local") == "1",
        no_cache="noCache" in params or cache_timeout == 0,
        cache_timeout=cache_timeout,
        graph_type=graph_type,
    )


def _cache_headers(response: Response, parsed: RenderRequest) -> None:
    """graphite's headers: cacheable for cacheTimeout seconds, or never with noCache."""
    if parsed.no_cache:
        response.headers["Cache-Control"] = "max-age=0, no-cache, no-store, must-revalidate, private"
        response.expires = datetime.datetime.now(datetime.UTC)
    else:
        response.headers["Cache-Control"] = f"max-age={max(parsed.cache_timeout, 0)}"
        response.expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=max(parsed.cache_timeout, 0)
        )


@blueprint.route("/render", methods=["GET", "POST"])
@blueprint.route("/render/", methods=["GET", "POST"])
def render_view() -> Response:
    services = current_app.extensions["carbyne"]
    params = request_params(request)
    parsed = parse_render_request(
        params, default_tz=services.config.time_zone, limits=services.config.limits, wall_clock=time.time()
    )
    if parsed.graph_type == "pie":
        body, content_type = _pie(services.evaluator, parsed)
        response = Response(body, content_type=content_type)
        _cache_headers(response, parsed)
        return response
    series = _evaluate(services.evaluator, list(parsed.targets), parsed)
    if parsed.format in IMAGE_FORMATS:
        body, content_type = _image(series, parsed)
    else:
        rendered = get_format(parsed.format).render(series, parsed.output)
        body, content_type = rendered.body, rendered.content_type
    response = Response(body, content_type=content_type)
    _cache_headers(response, parsed)
    return response


def _evaluate(evaluator, targets: list[str], parsed: RenderRequest) -> list[Series]:
    try:
        return evaluator.evaluate(targets, parsed.context(), template=parsed.template)
    except INPUT_ERRORS:
        raise
    except ValueError as exc:
        log.warning("400 for targets=%r", targets, exc_info=True)
        raise BadRequest(f"cannot evaluate target={', '.join(targets)}: {exc}") from None


def _pie(evaluator, parsed: RenderRequest) -> tuple[bytes, str]:
    """graphite's pie: targets in order, ``name:value`` ones as they are, others one slice per series."""
    pie = PieOptions.from_params(parsed.graph_params)
    slices: list[tuple[str, float]] = []
    for target in parsed.targets:
        try:
            literal = literal_slice(target)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if literal is not None:
            slices.append(literal)
        else:
            slices.extend((s.name, pie_value(s, pie.mode)) for s in _evaluate(evaluator, [target], parsed))
    body, content_type = render_pie(slices, parsed.graph_params, pie, parsed.format, parsed.tz)
    return _jsonp_svg(body, content_type, parsed)


def _image(series: list[Series], parsed: RenderRequest) -> tuple[bytes, str]:
    """A graph; an SVG asked for with jsonp comes back as ``callback("<svg...>")`` like graphite's."""
    body, content_type = render_graph(
        series, parsed.graph_params, parsed.format, parsed.start, parsed.end, parsed.tz
    )
    return _jsonp_svg(body, content_type, parsed)


def _jsonp_svg(body: bytes, content_type: str, parsed: RenderRequest) -> tuple[bytes, str]:
    if parsed.format == "svg" and parsed.output.jsonp is not None:
        return f"{parsed.output.jsonp}({json.dumps(body.decode())})".encode(), "text/javascript"
    return body, content_type
