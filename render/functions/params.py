"""Parameter declarations of render functions: types, validation, ``/functions`` JSON.

The type names are graphite-web's (``graphite/functions/params.py``) because
they are part of the ``/functions`` API Grafana reads. Validation follows
graphite's validators where it has one; where graphite has none (and would
crash later, or silently misbehave because ``ENFORCE_INPUT_VALIDATION`` is
off by default) the value is checked here so a bad argument is an HTTP 400.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from collections.abc import Collection
from typing import Any

from render.attime import parse_time
from render.series import Series


class InputError(ValueError):
    """A bad argument in a target; the HTTP layer answers 400 with the message."""


class ParamType(enum.Enum):
    """graphite-web's parameter types, by their ``/functions`` names."""

    aggFunc = "aggFunc"
    aggOrSeriesFunc = "aggOrSeriesFunc"
    any = "any"
    boolean = "boolean"
    date = "date"
    float = "float"
    integer = "integer"
    interval = "interval"
    intOrInf = "intOrInf"
    intOrInterval = "intOrInterval"
    node = "node"
    nodeOrTag = "nodeOrTag"
    series = "series"
    seriesList = "seriesList"
    seriesLists = "seriesLists"
    string = "string"
    tag = "tag"


_UNIT_SECONDS = (
    ("s", 1),
    ("min", 60),
    ("h", 3600),
    ("d", 86400),
    ("w", 604800),
    ("mon", 30 * 86400),
    ("y", 365 * 86400),
)


def _unit_seconds(unit: str) -> int:
    for prefix, seconds in _UNIT_SECONDS:
        if unit.startswith(prefix):
            return seconds
    raise ValueError(f"invalid offset unit {unit!r}")


def interval_seconds(text: str) -> int:
    """Seconds in a graphite time offset such as ``5min``, ``-1d`` or ``1h30min``.

    graphite's ``parseTimeOffset`` rules: an optional sign (default ``+``),
    then number+unit pairs; units are matched by prefix (``s``, ``min``,
    ``h``, ``d``, ``w``, ``mon`` = 30 days, ``y`` = 365 days).
    """
    if not isinstance(text, str):
        raise ValueError(f"not a string: {text!r}")
    if not text:
        return 0
    sign = 1
    rest = text
    if not rest[0].isdigit():
        if rest[0] not in "+-":
            raise ValueError(f"invalid offset {text!r}")
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    total = 0
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise ValueError(f"invalid offset {text!r}: expected a number")
        number = int(rest[:digits])
        rest = rest[digits:]
        letters = 0
        while letters < len(rest) and rest[letters].isalpha():
            letters += 1
        total += number * _unit_seconds(rest[:letters])
        rest = rest[letters:]
    return sign * total


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _boolean(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("not a boolean")
    if _is_number(value):
        if value in (0, 1):
            return bool(value)
        raise ValueError("not a boolean")
    if isinstance(value, bool):
        return value
    raise ValueError("not a boolean")


def _float(value: Any) -> float:
    if _is_number(value) or isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("not a number")


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise ValueError("not an integer")


def _int_or_inf(value: Any) -> int | float:
    try:
        return _integer(value)
    except ValueError:
        pass
    if (_is_number(value) or isinstance(value, str)) and _float(value) == math.inf:
        return math.inf
    raise ValueError("not an integer or infinity")


def _interval(value: Any) -> str:
    try:
        interval_seconds(value)
    except ValueError as exc:
        raise ValueError(f"not an interval ({exc})") from None
    return value


def _int_or_interval(value: Any) -> int | float | str:
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            interval_seconds(value)
            return value
        except ValueError:
            pass
    raise ValueError("not an integer or interval")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("not a string")


def _node_or_tag(value: Any) -> int | str:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError("not a node number or tag name")


def _date(value: Any) -> int | float | str:
    if isinstance(value, str) or _is_number(value):
        return value
    raise ValueError("not a time")


def _series_list(value: Any) -> list[Series]:
    if isinstance(value, (list, tuple)) and all(isinstance(s, Series) for s in value):
        return list(value)
    raise ValueError("not a series list")


def _series_lists(value: Any) -> list[list[Series]]:
    if isinstance(value, (list, tuple)):
        return [_series_list(v) for v in value]
    raise ValueError("not a list of series lists")


_VALIDATORS = {
    ParamType.any: lambda value: value,
    ParamType.boolean: _boolean,
    ParamType.date: _date,
    ParamType.float: _float,
    ParamType.integer: _integer,
    ParamType.interval: _interval,
    ParamType.intOrInf: _int_or_inf,
    ParamType.intOrInterval: _int_or_interval,
    ParamType.node: _integer,
    ParamType.nodeOrTag: _node_or_tag,
    ParamType.series: _series_list,
    ParamType.seriesList: _series_list,
    ParamType.seriesLists: _series_lists,
    ParamType.string: _string,
    ParamType.tag: _string,
}

_SERIES_TYPES = frozenset({ParamType.series, ParamType.seriesList, ParamType.seriesLists})


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared parameter; ``default`` is what an omitted optional parameter gets."""

    name: str
    type: ParamType
    required: bool = False
    default: Any = None
    multiple: bool = False
    options: tuple[Any, ...] = ()
    suggestions: tuple[Any, ...] = ()
    #: False: ``options`` are what ``/functions`` suggests, other values of the type pass too
    #: (smartSummarize's ``alignTo`` takes ``"weeks4"`` besides the listed units).
    enforce_options: bool = True

    @property
    def takes_series(self) -> bool:
        return self.type in _SERIES_TYPES

    def all_options(self, agg_names: Collection[str], aggregator_names: Collection[str]) -> list[Any]:
        """Allowed values as ``/functions`` lists them: sorted by their text."""
        options = set(self.options)
        if self.type in (ParamType.aggFunc, ParamType.aggOrSeriesFunc):
            options.update(agg_names)
        if self.type is ParamType.aggOrSeriesFunc:
            options.update(aggregator_names)
        return sorted(options, key=str)

    def validate(
        self,
        function: str,
        value: Any,
        agg_names: Collection[str],
        aggregator_names: Collection[str],
    ) -> Any:
        """The typed value for ``value``, or InputError naming function, parameter and value."""
        try:
            if self.type in (ParamType.aggFunc, ParamType.aggOrSeriesFunc):
                return self._validate_agg(value, agg_names, aggregator_names)
            if not self.enforce_options and value in self.options:
                return value
            if self.enforce_options and self.options and value not in self.options:
                shown = ", ".join(map(str, self.options[:8]))
                more = f", ... ({len(self.options)} values)" if len(self.options) > 8 else ""
                raise ValueError(f"not one of {shown}{more}")
            return _VALIDATORS[self.type](value)
        except ValueError as exc:
            raise InputError(f"cannot call {function} {self.name}={value!r}: {exc}") from None

    def _validate_agg(
        self, value: Any, agg_names: Collection[str], aggregator_names: Collection[str]
    ) -> str:
        if isinstance(value, str):
            if value in agg_names or (value.endswith("Series") and value[:-6] in agg_names):
                return value
            if self.type is ParamType.aggOrSeriesFunc and value in aggregator_names:
                return value
        raise ValueError("not an aggregation function")

    def to_json(self, agg_names: Collection[str], aggregator_names: Collection[str]) -> dict[str, Any]:
        """This parameter in graphite-web's ``/functions`` shape."""
        result: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.required:
            result["required"] = True
        if self.default is not None:
            result["default"] = self.default
        if self.multiple:
            result["multiple"] = True
        options = self.all_options(agg_names, aggregator_names)
        if options:
            result["options"] = options
        if self.suggestions:
            result["suggestions"] = list(self.suggestions)
        return result


def date_seconds(function: str, param: str, value: int | float | str, tz: Any, now: int) -> int:
    """Epoch seconds of a ``date`` argument (graphite's ``parseATTime`` with the request's zone and now).

    Numbers are epoch seconds (graphite-web 1.1.10 crashes on them; only
    digit strings work there); relative times count from the request's
    ``now`` where graphite-web uses the wall clock.
    """
    if _is_number(value):
        return int(value)
    try:
        moment = parse_time(str(value), tz, datetime.datetime.fromtimestamp(now, tz))
    except ValueError as exc:
        raise InputError(f"cannot call {function} {param}={value!r}: {exc}") from None
    return int(moment.timestamp())
