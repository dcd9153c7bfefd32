"""graphite-web 1.1.10's ``/tags`` HTTP API as a Flask blueprint over a :class:`TagIndex`.

Routes, methods and success bodies are graphite-web's (``graphite/tags/views.py``):

========================== ========= ==============================================
``/tags``, ``/tags/``      GET       ``[{"id", "tag"}]``; ``filter`` (regex), ``limit``
``/tags/<tag>``            GET       ``{"id", "tag", "values": [{"id", "value", "count"}]}``
                                     or ``null``; ``filter``, ``limit``
``/tags/tagSeries``        POST      canonical path (a JSON string); ``path``
``/tags/tagMultiSeries``   POST      canonical paths; ``path`` repeated (or ``path[]``)
``/tags/delSeries``        POST      ``true``; ``path`` repeated (or ``path[]``)
``/tags/findSeries``       GET, POST sorted paths; ``expr`` repeated (or ``expr[]``)
``/tags/autoComplete/tags`` GET, POST tag names; ``expr``*, ``tagPrefix``, ``limit`` (100)
``/tags/autoComplete/values`` GET, POST values; ``tag``, ``expr``*, ``valuePrefix``, ``limit``
========================== ========= ==============================================

Parameters come from the query string and, for POST, the form body, as
graphite merges them (a single value: the last one). ``pretty`` (any
non-empty value) indents by 2 and sorts keys. ``local``, ``from`` and
``until`` (Grafana, cluster frontends) are accepted and ignored.

Differences, all on error paths or additions: every refused request is a
``400 {"error": "cannot ..."}`` (graphite answers a bad regex, a malformed
path or a negative ``limit`` with a 500 or an odd result); another method is
a ``405`` with such a body and an ``Allow`` header (graphite: empty body);
``jsonp=<callback>`` wraps any answer as ``text/javascript`` (graphite's
tag views ignore it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.routing import BaseConverter

from render.views.params import Params, request_params
from storage.tagindex import AUTOCOMPLETE_LIMIT, TagIndex

_JSONP_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\Z")
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_READ = ("GET", "HEAD")
_READ_OR_POST = ("GET", "HEAD", "POST")
_POST = ("POST",)

Handler = Callable[[Params], Any]


class TagNameConverter(BaseConverter):
    """``/tags/<tag>`` as graphite's ``^/(.+)$``: any text, slashes (leading or doubled) included."""

    regex = ".+"
    part_isolating = False


class RequestError(ValueError):
    """A request the tag API refuses; the message is the ``error`` of the 400 answer."""


def _limit(params: Params) -> int | None:
    """``limit`` as graphite reads it: missing or empty means none; otherwise a whole number >= 0."""
    text = params.get("limit")
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        raise RequestError(f"cannot use limit={text!r}: not an integer") from None
    if limit < 0:
        raise RequestError(f"cannot use limit={text!r}: must not be negative")
    return limit


def _repeated(params: Params, key: str) -> list[str]:
    """``key`` repeated, or else PHP/jQuery's ``key[]`` repeated (graphite accepts both)."""
    return params.getlist(key) or params.getlist(f"{key}[]")


def _body(payload: Any, params: Params, status: int = 200) -> Response:
    pretty = bool(params.get("pretty"))
    text = json.dumps(payload, indent=2 if pretty else None, sort_keys=pretty)
    callback = params.get("jsonp")
    if callback:
        return Response(f"{callback}({text})", status=status, content_type="text/javascript")
    return Response(text, status=status, content_type="application/json")


def _error(message: str, params: Params, status: int) -> Response:
    return _body({"error": message}, params, status)


def _respond(methods: Collection[str], handler: Handler) -> Response:
    """Run ``handler`` on the request's parameters; refused input becomes a 400."""
    params = Params([])
    try:
        params = request_params(request)
        callback = params.get("jsonp")
        if callback and not _JSONP_CALLBACK.match(callback):
            params = Params([])
            raise RequestError(f"cannot use jsonp={callback[:60]!r}: not a JavaScript identifier")
        if request.method not in methods:
            response = _error(
                f"cannot answer {request.method} {request.path}: use {' or '.join(m for m in methods if m != 'HEAD')}",
                params, 405,
            )
            response.headers["Allow"] = ", ".join(methods)
            return response
        return _body(handler(params), params)
    except ValueError as exc:  # RequestError, TagQueryError, render.views.errors.BadRequest
        return _error(str(exc), params, 400)


def tags_blueprint(index: TagIndex, autocomplete_limit: int = AUTOCOMPLETE_LIMIT) -> Blueprint:
    """graphite's ``/tags`` routes over ``index``; ``autocomplete_limit`` is ``TAGDB_AUTOCOMPLETE_LIMIT``."""
    blueprint = Blueprint("tags", __name__)
    blueprint.record_once(lambda state: state.app.url_map.converters.setdefault("tagname", TagNameConverter))

    def route(rule: str, methods: Collection[str], handler: Handler, **options: Any) -> None:
        def view(**kwargs: str) -> Response:
            return _respond(methods, lambda params: handler(params, **kwargs))

        view.__name__ = handler.__name__ + ("_slash" if rule.endswith("/") else "")
        blueprint.add_url_rule(rule, view_func=view, methods=_ALL_METHODS, **options)

    def tag_list(params: Params) -> Any:
        return index.list_tags(params.get("filter"), _limit(params))

    def tag_details(params: Params, tag: str) -> Any:
        return index.get_tag(tag, params.get("filter"), _limit(params))

    def tag_series(params: Params) -> Any:
        path = params.get("path")
        if not path:
            raise RequestError("cannot tag series path='': no path given")
        return index.tag_series(path)

    def tag_multi_series(params: Params) -> Any:
        paths = _repeated(params, "path")
        if not paths:
            raise RequestError("cannot tag series path='': no path given")
        return index.tag_multi_series(paths)

    def del_series(params: Params) -> Any:
        paths = _repeated(params, "path")
        if not paths:
            raise RequestError("cannot delete series path='': no path given")
        index.del_series(paths)
        return True

    def find_series(params: Params) -> Any:
        expressions = _repeated(params, "expr")
        if not expressions:
            raise RequestError("cannot find series expr='': no tag expressions given")
        return index.find_series(expressions)

    def auto_complete_tags(params: Params) -> Any:
        limit = _limit(params)
        return index.auto_complete_tags(
            _repeated(params, "expr"),
            params.get("tagPrefix"),
            autocomplete_limit if limit is None else limit,
        )

    def auto_complete_values(params: Params) -> Any:
        limit = _limit(params)
        tag = params.get("tag")
        if not tag:
            raise RequestError("cannot complete values tag='': no tag given")
        return index.auto_complete_values(
            _repeated(params, "expr"),
            tag,
            params.get("valuePrefix"),
            autocomplete_limit if limit is None else limit,
        )

    route("/tags", _READ, tag_list, strict_slashes=False)
    route("/tags/", _READ, tag_list)
    route("/tags/tagSeries", _POST, tag_series)
    route("/tags/tagMultiSeries", _POST, tag_multi_series)
    route("/tags/delSeries", _POST, del_series)
    route("/tags/findSeries", _READ_OR_POST, find_series)
    route("/tags/autoComplete/tags", _READ_OR_POST, auto_complete_tags)
    route("/tags/autoComplete/values", _READ_OR_POST, auto_complete_values)
    # merge_slashes=False: a tag may start with or hold "//" (graphite looks "/tags//x" up as "/x")
    route("/tags/<tagname:tag>", _READ, tag_details, merge_slashes=False)
    return blueprint


__all__ = ["RequestError", "tags_blueprint"]
