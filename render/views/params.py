"""Request parameters the way graphite-web reads them.

graphite-web copies the query string and then *appends* the form body
(Django's ``QueryDict.update``): a repeated key such as ``target`` collects
values from both, and a single-valued read returns the last value, so a
body value wins over the same key in the URL. A POST body that is not
declared as a form (no or another Content-Type) but reads like one
(``query=a.*``) is parsed as a form too, which curl-style and hand-built
clients rely on.
"""

from __future__ import annotations

import datetime
import logging
import re
import zoneinfo
from collections.abc import Iterator
from urllib.parse import parse_qsl

from flask import Request

from render.attime import TimeSpecError, parse_time
from render.views.errors import BadRequest

log = logging.getLogger(__name__)

# A JavaScript callback path such as ``cb`` or ``jQuery123.done``; anything else
# would let a link inject script into a page that loads the answer.
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_BODY_BYTES = 8 << 20


class Params:
    """Merged query-string and body parameters (last value wins for single reads)."""

    def __init__(self, pairs: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._values.get(key)
        return values[-1] if values else default

    def getlist(self, key: str) -> list[str]:
        return list(self._values.get(key, ()))

    def keys(self) -> list[str]:
        return list(self._values)

    def items(self) -> Iterator[tuple[str, str]]:
        """``(key, last value)`` per key, as iterating a QueryDict's items does."""
        for key, values in self._values.items():
            yield key, values[-1]

    def int_value(self, key: str, default: int) -> int:
        """graphite's ``int(...)`` of a parameter, as a 400 naming it when it is not an integer."""
        value = self.get(key)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"cannot parse {key}={value!r}: not an integer") from None

    def jsonp(self) -> str | None:
        """The ``jsonp`` callback name (None when absent), or a 400 if it is not one.

        An empty value is returned as is: /render wraps with it, as graphite does.
        """
        callback = self.get("jsonp")
        if not callback:
            return callback
        if len(callback) > 200 or not _CALLBACK.match(callback):
            raise BadRequest(f"cannot wrap jsonp={callback[:80]!r}: not a JavaScript callback name")
        return callback

    def flag(self, key: str) -> bool:
        """A 0/1 parameter such as ``local`` or ``wildcards`` (anything else non-zero is on)."""
        return self.int_value(key, 0) != 0


def request_params(request: Request) -> Params:
    """The query string, then the body's parameters, of a Flask request."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        if request.mimetype in _FORM_TYPES:
            pairs.extend(request.form.items(multi=True))
        elif request.mimetype != "application/json":
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise BadRequest(f"cannot read body length={request.content_length}: too large")
            body = request.get_data(cache=True)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("cannot read body: not UTF-8 text") from None
            if "=" in text:
                pairs.extend(parse_qsl(text.strip(), keep_blank_values=True))
    return Params(pairs)


def time_zone(params: Params, default: str) -> datetime.tzinfo:
    """``tz`` if it names a zone, else the server's; graphite ignores unknown zones too."""
    name = params.get("tz")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            log.info("unknown tz=%r ignored", name)
    return zoneinfo.ZoneInfo(default)


def param_time(
    params: Params, key: str, tz: datetime.tzinfo, now: datetime.datetime | None
) -> datetime.datetime:
    """The time spec in parameter ``key`` (graphite's attime grammar), or a 400 naming it."""
    spec = params.get(key) or ""
    try:
        return parse_time(spec, tz, now)
    except TimeSpecError as exc:
        raise BadRequest(f"cannot parse {key}={spec!r}: {exc.reason}") from None
