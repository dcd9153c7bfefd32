"""Errors of the render API: a 400 naming the problem, never a stack trace.

graphite-web answers bad input with ``400 Invalid parameters (...)`` as HTML
and many other mistakes (a bad interval string, an unknown consolidation
function) with a 500 and a Django traceback page. Here every input error is
a 400 whose body names the parameter and value; a view that knows the client
wants JSON (``format=json``, ``/functions``, ``/metrics/expand``) gets
``{"error": "..."}``, everyone else ``text/plain``. Anything unexpected is
logged with its traceback on the server and answered with a short 500.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from render.attime import TimeSpecError
from render.formats import UnknownFormat
from render.functions import InputError
from render.grammar import GrammarError, TemplateError
from render.graphs import GraphOptionError
from render.limits import LimitError
from render.tagquery import TagQueryError
from storage.finder import FindLimitExceeded
from storage.paths import InvalidMetricName

log = logging.getLogger(__name__)

#: Exceptions that always mean the request itself was wrong.
INPUT_ERRORS: tuple[type[Exception], ...] = (
    GrammarError,
    TemplateError,
    InputError,
    TimeSpecError,
    LimitError,
    FindLimitExceeded,
    InvalidMetricName,
    UnknownFormat,
    GraphOptionError,
    TagQueryError,
)


class BadRequest(ValueError):
    """A request parameter Carbyne cannot use; the message names it."""


def errors_as_json(wanted: bool = True) -> None:
    """Answer errors of the current request as ``{"error": ...}`` JSON (or plain text)."""
    g.errors_as_json = wanted


def error_response(message: str, status: int) -> Response:
    """``message`` as JSON or text, as the current view asked for."""
    if g.get("errors_as_json", False):
        body = json.dumps({"error": message})
        return Response(body, status=status, content_type="application/json")
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _input_error(exc: Exception) -> Response:
    log.info("400 %s %s: %s", request.method, request.path, exc)
    return error_response(str(exc), 400)


def _http_error(exc: HTTPException) -> Response:
    message = f"cannot answer {request.method} {request.path}: {exc.description}"
    response = error_response(message, exc.code or 500)
    if exc.code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("500 %s %s", request.method, request.full_path)
    return error_response(
        f"cannot answer {request.method} {request.path}: internal error (details are in the server log)",
        500,
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers above on ``app``."""
    for error_class in (BadRequest, *INPUT_ERRORS):
        app.register_error_handler(error_class, _input_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
