"""graphite-web 1.1.10's ``/events`` HTTP API as a Flask blueprint.

What real deploy tools and Grafana see is graphite-web's:

* ``POST /events/`` and ``POST /events``: a JSON object ``{what, tags, when,
  data}`` read from the raw body whatever the Content-Type (``curl -d`` sends
  JSON labelled form-urlencoded). ``tags`` is a list (joined with spaces) or
  a string kept as given; ``when`` defaults to now, ``data`` to ``""``.
  Success is graphite's ``200``, empty body, ``text/html; charset=utf-8``;
  Carbyne adds a ``Location: /events/<id>/`` header.
* ``GET /events/get_data?from=&until=&tags=&set=&jsonp=``: the JSON list
  Grafana's annotations read (``from`` defaults to epoch 0, ``until`` to now,
  both in graphite's time grammar; ``tags`` split on single spaces).

Where graphite-web answers HTML or crashes, Carbyne answers JSON:

* ``GET /events/`` lists events like ``get_data`` (graphite renders a page).
* ``GET /events/<id>/`` (slash optional) is graphite's JSON detail
  ``{id, when: ISO-8601, what, data, tags}`` whatever the Accept header;
  an unknown id is graphite's ``404 {"error": "Event matching query does not exist"}``.
* ``DELETE /events/<id>/`` (graphite has none) answers ``204``, or that 404.
* A body that is not a JSON object, a ``what`` that is missing or not text,
  list tags that are not all strings, or a ``when`` that is not epoch
  seconds is a 400 ``{"error": "cannot ..."}`` (graphite answers 500); a bad
  ``tags`` type gets graphite's exact 400 body. Errors are
  ``application/json`` (graphite labels that one ``text/html``).
* ``when`` may also be a numeric string; non-text ``data`` is stored as JSON
  (graphite stores Python's ``str()`` of it); a null ``data`` is ``""``.
* A ``jsonp`` callback must be a JavaScript identifier path.

Write protection: with a ``token``, ``POST`` and ``DELETE`` need
``Authorization: Bearer <token>`` or HTTP Basic auth whose password is the
token (any user name; what capistrano-graphite sends for a
``https://user:token@host/events/`` URL); otherwise 401. Reads stay open.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from render.attime import TimeSpecError, parse_time
from render.events.store import SET_OPERATIONS, EventStore

#: Largest POST body accepted (graphite events are a few hundred bytes).
MAX_BODY_BYTES = 1 << 20

#: graphite-web's answer to a ``tags`` value of another type, byte for byte.
TAGS_TYPE_ERROR = '"tags" must be an array or space-separated string'
NOT_FOUND_ERROR = "Event matching query does not exist"

_JSONP_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
_NUMERIC = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
# datetime's range, which graphite's epoch_to_dt also needs
_FIRST_EPOCH = -62135596800
_LAST_EPOCH = 253402300799


class RequestError(ValueError):
    """A request Carbyne refuses; the message is the ``error`` of the 400 answer."""


def _json_response(payload: Any, status: int = 200, pretty: bool = False) -> Response:
    text = json.dumps(payload, indent=2 if pretty else None, sort_keys=pretty)
    return Response(text, status=status, content_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json_response({"error": message}, status)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _what(event: dict[str, Any]) -> str:
    what = event.get("what")
    if isinstance(what, str):
        return what
    if isinstance(what, int | float) and not isinstance(what, bool):
        return str(what)
    reason = '"what" is required' if what is None else '"what" must be a string'
    raise RequestError(f"cannot post event what={_short(what)}: {reason}")


def _tags(event: dict[str, Any]) -> str | None:
    """The stored tag string, or None for graphite's tags-type error."""
    tags = event.get("tags")
    if tags is None:
        return ""
    if isinstance(tags, str):
        return tags
    if isinstance(tags, list):
        bad = [t for t in tags if not isinstance(t, str)]
        if bad:
            raise RequestError(f"cannot post event tags={_short(tags)}: every tag must be a string")
        return " ".join(tags)
    return None


def _when(event: dict[str, Any]) -> float | None:
    if "when" not in event:
        return None
    when = event["when"]
    seconds: float | None = None
    if isinstance(when, int | float) and not isinstance(when, bool):
        seconds = float(when)
    elif isinstance(when, str) and _NUMERIC.match(when):
        seconds = float(when)
    if seconds is None or not math.isfinite(seconds):
        raise RequestError(f"cannot post event when={_short(when)}: must be epoch seconds")
    if not _FIRST_EPOCH <= seconds <= _LAST_EPOCH:
        raise RequestError(f"cannot post event when={_short(when)}: outside years 1-9999")
    return seconds


def _data(event: dict[str, Any]) -> str:
    data = event.get("data")
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    if isinstance(data, int | float) and not isinstance(data, bool):
        return str(data)
    return json.dumps(data)


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise RequestError(f"cannot parse event body={_short(body[:40])}: not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise RequestError(f"cannot post event body={_short(event)}: must be a JSON object")
    return event


def _token_matches(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        offered = credentials
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        offered = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8"))


def _unauthorized() -> Response:
    response = _error("cannot change events: a valid token is required", 401)
    response.headers.add("WWW-Authenticate", 'Bearer realm="carbyne events"')
    response.headers.add("WWW-Authenticate", 'Basic realm="carbyne events"')
    return response


def events_blueprint(
    store: EventStore,
    token: str | None = None,
    tz: datetime.tzinfo = datetime.UTC,
    clock: Callable[[], float] = time.time,
) -> Blueprint:
    """The ``/events`` routes over ``store``.

    ``token`` (None = open) protects POST and DELETE; ``tz`` is the zone of
    absolute ``from``/``until`` times (graphite's ``TIME_ZONE``); ``clock``
    gives "now" for relative times, ``until``'s default and ``when``'s.
    """
    blueprint = Blueprint("events", __name__)

    def requires_token() -> Response | None:
        if token is None or _token_matches(token):
            return None
        return _unauthorized()

    def post_event() -> Response:
        denied = requires_token()
        if denied is not None:
            return denied
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(f"cannot post event body={request.content_length} bytes: over {MAX_BODY_BYTES}", 413)
        body = request.stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _error(f"cannot post event body=chunked: over {MAX_BODY_BYTES} bytes", 413)
        try:
            event = _parse_body(body)
            what = _what(event)
            tags = _tags(event)
            if tags is None:
                return _error(TAGS_TYPE_ERROR, 400)
            when = _when(event)
            data = _data(event)
        except RequestError as exc:
            return _error(str(exc), 400)
        stored = store.add(what, tags, when=clock() if when is None else when, data=data)
        response = Response(b"", status=200, content_type="text/html; charset=utf-8")
        response.headers["Location"] = f"/events/{stored.id}/"
        return response

    def time_param(name: str, default: float) -> float:
        spec = request.args.get(name)
        if spec is None:
            return default
        now = datetime.datetime.fromtimestamp(clock(), tz)
        try:
            return parse_time(spec, tz, now).timestamp()
        except TimeSpecError as exc:
            raise RequestError(f"cannot parse {name}={spec}: {exc.reason}") from None

    def event_list() -> Response:
        try:
            start = time_param("from", 0.0)
            end = time_param("until", clock())
        except RequestError as exc:
            return _error(str(exc), 400)
        tags_param = request.args.get("tags")
        tags = None if tags_param is None else tags_param.split(" ")
        operation = request.args.get("set")
        found = store.find(start, end, tags, operation if operation in SET_OPERATIONS else None)
        text = json.dumps([e.as_dict() for e in found])
        callback = request.form.get("jsonp", request.args.get("jsonp"))
        if callback is None:
            return Response(text, content_type="application/json")
        if not _JSONP_CALLBACK.match(callback):
            return _error(f"cannot answer jsonp={_short(callback)}: not a JavaScript identifier", 400)
        return Response(f"{callback}({text})", content_type="text/javascript")

    @blueprint.route("/events/", methods=["GET", "POST"], strict_slashes=False)
    def events_root() -> Response:
        return post_event() if request.method == "POST" else event_list()

    @blueprint.route("/events/get_data", methods=["GET", "POST"])
    @blueprint.route("/events/get_dat", methods=["GET", "POST"])  # graphite's url regex: get_data?
    def get_data() -> Response:
        return event_list()

    @blueprint.route("/events/<int:event_id>/", methods=["GET", "DELETE"], strict_slashes=False)
    def event_detail(event_id: int) -> Response:
        if request.method == "DELETE":
            denied = requires_token()
            if denied is not None:
                return denied
            if not store.delete(event_id):
                return _error(NOT_FOUND_ERROR, 404)
            return Response(status=204)
        event = store.get(event_id)
        if event is None:
            return _error(NOT_FOUND_ERROR, 404)
        pretty = bool(request.args.get("pretty"))
        return _json_response(event.as_detail(), pretty=pretty)

    return blueprint
