"""``/functions`` and ``/functions/<name>``: the function registry as graphite-web describes it.

The body is the registry's own description (one source of truth), serialised
as graphite-web 1.1.10 does: ``json.dumps`` with ``Infinity`` defaults
patched to ``1e9999`` (Grafana parses it with ``JSON.parse``), ``pretty``
indenting and sorting keys. ``grouped=1|true`` nests by group, ``group=``
filters. Only GET is allowed, as in graphite-web. ``jsonp`` is honoured
here too, which graphite-web does not do.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from render.graphs.pie import PIE_MODES
from render.views.errors import error_response, errors_as_json
from render.views.params import Params, request_params

blueprint = Blueprint("functions", __name__)


def functions_json(data: object, params: Params) -> Response:
    pretty = bool(params.get("pretty"))
    text = json.dumps(data, indent=2 if pretty else None, sort_keys=pretty)
    text = text.replace("Infinity,", "1e9999,").replace("Infinity}", "1e9999}")
    jsonp = params.jsonp()
    if jsonp:
        return Response(f"{jsonp}({text})", content_type="text/javascript")
    return Response(text, content_type="application/json")


@blueprint.route("/functions", methods=["GET"])
@blueprint.route("/functions/", methods=["GET"])
def function_list() -> Response:
    errors_as_json()
    params = request_params(request)
    registry = current_app.extensions["carbyne"].registry
    if params.get("type") == "pie":
        return functions_json(pie_functions(), params)
    grouped = (params.get("grouped") or "").lower() in ("1", "true")
    return functions_json(registry.describe_all(group=params.get("group"), grouped=grouped), params)


@blueprint.route("/functions/<path:name>", methods=["GET"])
def function_details(name: str) -> Response:
    errors_as_json()
    params = request_params(request)
    registry = current_app.extensions["carbyne"].registry
    if params.get("type") == "pie":
        if name not in PIE_MODES:
            return error_response(f"cannot describe pie function={name!r}: no such function", 404)
        return functions_json(pie_functions()[name], params)
    if name not in registry:
        return error_response(f"cannot describe function={name!r}: no such function", 404)
    return functions_json(registry.describe(name), params)


def pie_functions() -> dict[str, dict[str, object]]:
    """``graphType=pie``'s ``pieMode`` choices as graphite-web lists them (``/functions?type=pie``)."""
    return {
        mode: {
            "name": mode,
            "function": f"{mode}(series)",
            "description": f"The {mode} of the series' non-missing values (0 when it has none): its slice's size.",
            "module": "render.graphs.pie",
            "group": "Pie",
            "params": [{"name": "series", "type": "series", "required": True}],
        }
        for mode in PIE_MODES
    }
