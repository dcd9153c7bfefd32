"""``/metrics/find``, ``/metrics/expand`` and ``/metrics/index.json`` (graphite's metrics views).

Answers keep graphite-web's shapes and quirks: matches sorted by node name,
JSON escaped to ASCII only when the client's ``Accept`` is exactly
``application/json`` (otherwise UTF-8 and ``;charset=utf-8``), ``Pragma`` and
``Cache-Control: no-cache`` on find and expand. ``from``/``until``/``now``/``tz``
are checked but, as with graphite's single local finder, do not filter.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from flask import Blueprint, Response, current_app, request

from render.formats.msgpack import nodes_msgpack
from render.formats.nodes import (
    Interval,
    NodeInfo,
    completer_json,
    completer_query,
    node_list,
    nodes_json,
    tree_json,
)
from render.formats.pickle import nodes_pickle
from render.views.errors import BadRequest, errors_as_json
from render.views.params import Params, param_time, request_params, time_zone
from storage import whisper
from storage.finder import find
from storage.paths import WHISPER_SUFFIX

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

JSON_FIND_FORMATS = ("treejson", "completer", "json", "nodelist")
FIND_FORMATS = (*JSON_FIND_FORMATS, "pickle", "msgpack")
NEEDS_INTERVALS = ("json", "pickle", "msgpack")


def json_response(data: object, params: Params, status: int = 200) -> Response:
    """graphite's ``json_response_for``: ASCII only for ``Accept: application/json``, optional jsonp."""
    ascii_only = request.headers.get("Accept", "application/json") == "application/json"
    text = json.dumps(data, ensure_ascii=ascii_only, indent=2 if params.get("pretty") else None)
    content_type = "application/json"
    jsonp = params.jsonp()
    if jsonp:
        text = f"{jsonp}({text})"
        content_type = "text/javascript"
    if not ascii_only:
        content_type += ";charset=utf-8"
    return Response(text.encode(), status=status, content_type=content_type)


def _no_cache(response: Response) -> Response:
    response.headers["Pragma"] = "no-cache"
    response.headers["Cache-Control"] = "no-cache"
    return response


def leaf_intervals(fs_path: Path, now: float) -> tuple[Interval, ...]:
    """graphite's whisper reader: from ``now - maxRetention`` to the file's mtime.

    An unreadable file has no intervals rather than failing the whole find.
    """
    try:
        retention = whisper.info(str(fs_path))["maxRetention"]
        mtime = os.stat(fs_path).st_mtime
    except (OSError, whisper.WhisperException, TypeError) as exc:
        log.warning("cannot read intervals of file=%s: %s", fs_path, exc)
        return ()
    start = now - retention
    return (Interval(start, max(mtime, start)),)


def find_nodes(query: str, leaves_only: bool, with_intervals: bool) -> list[NodeInfo]:
    """The nodes ``query`` matches, sorted by node name (then path) as graphite sorts them."""
    services = current_app.extensions["carbyne"]
    now = time.time()
    nodes = []
    for node in find(services.config.data_dir, query, limit=services.config.max_find_nodes):
        if leaves_only and not node.is_leaf:
            continue
        intervals = leaf_intervals(node.fs_path, now) if node.is_leaf and with_intervals else ()
        nodes.append(NodeInfo(node.path, node.is_leaf, intervals))
    nodes.sort(key=lambda n: (n.name, n.path, n.is_leaf))
    return nodes


def _check_times(params: Params) -> None:
    tz = time_zone(params, current_app.extensions["carbyne"].config.time_zone)
    now = param_time(params, "now", tz, None) if "now" in params else None
    for key in ("from", "until"):
        if key in params and params.get(key) != "-1":
            param_time(params, key, tz, now)


@blueprint.route("/metrics/find", methods=["GET", "POST"])
@blueprint.route("/metrics/find/", methods=["GET", "POST"])
@blueprint.route("/metrics", methods=["GET", "POST"])
@blueprint.route("/metrics/", methods=["GET", "POST"])
def find_view() -> Response:
    params = request_params(request)
    fmt = params.get("format", "treejson") or ""
    errors_as_json(fmt in JSON_FIND_FORMATS)
    if fmt not in FIND_FORMATS:
        raise BadRequest(f"cannot find format={fmt!r}: expected one of {', '.join(FIND_FORMATS)}")
    leaves_only = params.flag("leavesOnly")
    params.flag("local")  # checked only: one local store, so local=1 finds the same nodes
    wildcards = params.flag("wildcards")
    position = params.int_value("position", -1)
    automatic_variants = params.flag("automatic_variants")
    _check_times(params)
    query = params.get("query")
    if query is None:
        raise BadRequest("cannot find query=None: missing required parameter 'query'")
    if query == "":
        raise BadRequest("cannot find query='': required parameter 'query' is empty")
    pattern = completer_query(query, automatic_variants) if fmt == "completer" else query
    nodes = find_nodes(pattern, leaves_only, fmt in NEEDS_INTERVALS)

    if fmt == "treejson":
        response = json_response(tree_json(nodes, query, wildcards), params)
    elif fmt == "completer":
        response = json_response(completer_json(nodes, wildcards), params)
    elif fmt == "nodelist":
        try:
            response = json_response(node_list(nodes, position), params)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    elif fmt == "json":
        response = json_response(nodes_json(nodes), params)
    else:
        rendered = nodes_pickle(nodes) if fmt == "pickle" else nodes_msgpack(nodes)
        response = Response(rendered.body, content_type=rendered.content_type)
    return _no_cache(response)


@blueprint.route("/metrics/expand", methods=["GET", "POST"])
@blueprint.route("/metrics/expand/", methods=["GET", "POST"])
def expand_view() -> Response:
    errors_as_json()
    params = request_params(request)
    params.flag("local")  # checked only, as in find_view
    group_by_expr = params.flag("groupByExpr")
    leaves_only = params.flag("leavesOnly")
    _check_times(params)
    results: dict[str, set[str]] = {}
    for query in params.getlist("query"):
        results[query] = {n.path for n in find_nodes(query, leaves_only, False)}
    if group_by_expr:
        answer: object = {query: sorted(paths) for query, paths in results.items()}
    else:
        answer = sorted(set().union(*results.values()))
    return _no_cache(json_response({"results": answer}, params))


def leaf_index(data_dir: Path) -> list[str]:
    """Every whisper file under ``data_dir`` as a metric name, sorted (graphite's ``get_index``).

    Like graphite-web, tagged series appear under their hashed file names.
    """
    names = set()
    for root, _dirs, files in os.walk(data_dir):
        relative = os.path.relpath(root, data_dir)
        prefix = "" if relative == "." else relative
        for base in files:
            if base.endswith(WHISPER_SUFFIX):
                names.add(_metric_of(os.path.join(prefix, base)))
    return sorted(names)


def _metric_of(relative_path: str) -> str:
    return relative_path.replace(WHISPER_SUFFIX, "").replace(os.sep, ".").lstrip(".")


@blueprint.route("/metrics/index.json", methods=["GET", "POST"])
def index_view() -> Response:
    errors_as_json()
    params = request_params(request)
    params.flag("local")  # checked only, as in find_view
    return json_response(leaf_index(current_app.extensions["carbyne"].config.data_dir), params)
