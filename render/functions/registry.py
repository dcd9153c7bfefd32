"""The one registry of render functions: declaration, binding, planning, ``/functions``.

A group module declares each function once::

    @series_function("movingAverage", group="Calculate", params=[...], window=...)
    def moving_average(ctx, series_list, window_size, x_files_factor=None): ...

That declaration binds and validates every call (positional and keyword
arguments, defaults, a 400-worthy :class:`InputError` naming function,
parameter and value), tells an evaluator which extra time window the first
series argument must be fetched over (``window``), and is what ``/functions``
serves. The docstring is the description.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from render.functions.aggregation import agg_function_names
from render.functions.params import InputError, Param, ParamType
from render.series import Series

GROUP_MODULES = (
    "render.functions.combine",
    "render.functions.transform",
    "render.functions.calculate",
    "render.functions.filter",
    "render.functions.sort",
    "render.functions.alias",
    "render.functions.graph",
    "render.functions.special",
)

#: Names an ``aggFunc`` parameter accepts (graphite's ``aggFuncs`` and aliases).
AGG_NAMES = tuple(agg_function_names())


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """What a function may know about the request besides its arguments.

    ``start``/``end``/``now`` are epoch seconds of the window the caller asked
    this call to cover (an evaluator hands a function with a ``window`` hook
    its first series argument fetched over the widened window, but the
    context still holds the caller's window). ``stacks`` is the one
    per-request accumulator graphite shares between ``stacked()`` calls of
    different targets.
    """

    start: int
    end: int
    now: int
    tz: datetime.tzinfo = datetime.UTC
    x_files_factor: float = 0.0
    stacks: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)
    events: dict[Any, list[Any]] = dataclasses.field(default_factory=dict, compare=False)

    def with_window(self, start: int, end: int) -> RequestContext:
        """The same request over another window (stacks and planned events stay shared)."""
        return dataclasses.replace(self, start=start, end=end, stacks=self.stacks, events=self.events)


#: ``window(arguments, ctx, step) -> (extra_before, extra_after)`` in seconds:
#: fetch the first series argument over ``[ctx.start - before, ctx.end + after]``.
WindowHook = Callable[[Mapping[str, Any], RequestContext, int], tuple[int, int]]

#: ``shifts(arguments, ctx) -> offsets``: seconds by which the caller's window is moved for
#: each re-evaluation of the first series argument, as graphite's ``timeStack`` evaluates it
#: once per shifted window; the body takes ``shifted=[series over each moved window]``.
ShiftsHook = Callable[[Mapping[str, Any], RequestContext], Sequence[int]]

#: ``generates(arguments, ctx) -> targets``: the targets (graphite target
#: strings) a call needs evaluated over ``ctx``'s window, computed from its
#: evaluated arguments (``applyByNode``'s filled-in templates, ...). The
#: evaluator plans, reads and evaluates them and passes the body
#: ``generated={target: series}``.
GenerateHook = Callable[[Mapping[str, Any], RequestContext], Sequence[str]]


@dataclasses.dataclass(frozen=True)
class SeriesFunction:
    """A render function with its declaration; calling it calls the body directly."""

    name: str
    body: Callable[..., list[Series]]
    group: str
    params: tuple[Param, ...]
    aliases: tuple[str, ...] = ()
    aggregator: bool = False
    window: WindowHook | None = None
    widens_empty: bool = False
    shifts: ShiftsHook | None = None
    generates: GenerateHook | None = None
    events_param: str | None = None
    source_pattern: bool = False

    def __call__(self, ctx: RequestContext, *args: Any) -> list[Series]:
        return self.body(ctx, *args)

    @property
    def description(self) -> str:
        return inspect.getdoc(self.body) or ""

    @property
    def module(self) -> str:
        return self.body.__module__

    def signature(self, name: str | None = None) -> str:
        """Like graphite's ``function`` field: ``movingAverage(seriesList, windowSize, xFilesFactor=None)``."""
        parts = []
        for param in self.params:
            if param.multiple:
                parts.append(f"*{param.name}")
            elif param.required:
                parts.append(param.name)
            else:
                parts.append(f"{param.name}={param.default!r}")
        return f"{name or self.name}({', '.join(parts)})"


def series_function(
    name: str,
    *,
    group: str,
    params: Sequence[Param],
    aliases: Sequence[str] = (),
    aggregator: bool = False,
    window: WindowHook | None = None,
    widens_empty: bool = False,
    shifts: ShiftsHook | None = None,
    generates: GenerateHook | None = None,
    events_param: str | None = None,
    source_pattern: bool = False,
) -> Callable[[Callable[..., list[Series]]], SeriesFunction]:
    """Declare a render function (see the module docstring).

    ``widens_empty``: the first series argument is evaluated over the widened
    window even when it yields no series over the caller's, because the body
    works on the widened series alone (graphite's ``holtWintersForecast``,
    ``smartSummarize`` with ``alignTo``... re-evaluate it unconditionally,
    and a filter inside may keep series over one window and not the other).
    Without it an empty first argument reads nothing more, as graphite's
    ``movingWindow`` returns early. The window hook is then asked with the
    step 60: such hooks must not depend on the step.
    ``shifts``: the first series argument is evaluated again over the caller's
    window moved by each offset (see :data:`ShiftsHook`); the body takes them as
    keyword-only ``shifted``.
    ``generates``: the call needs other targets evaluated (see
    :data:`GenerateHook`); the body takes them as keyword-only ``generated``.
    ``events_param``: the parameter holding event tags; the evaluator plans an
    ``EventsQuery`` for each call and fills ``ctx.events`` before evaluating.
    ``source_pattern``: the call's source text is a pattern the data source
    resolves (``seriesByTag``); the evaluator fetches it like a path and never
    calls the body.
    """

    def declare(body: Callable[..., list[Series]]) -> SeriesFunction:
        return SeriesFunction(
            name=name,
            body=body,
            group=group,
            params=tuple(params),
            aliases=tuple(aliases),
            aggregator=aggregator,
            window=window,
            widens_empty=widens_empty,
            shifts=shifts,
            generates=generates,
            events_param=events_param,
            source_pattern=source_pattern,
        )

    return declare


@dataclasses.dataclass(frozen=True)
class BoundCall:
    """A validated call: ``arguments`` by parameter name, ``values`` ready for the body."""

    function: SeriesFunction
    name: str
    arguments: Mapping[str, Any]
    values: tuple[Any, ...]


_MISSING = object()


def _series_label(bound: BoundCall) -> str:
    """``seriesList=a.b.c`` (``+2 more``): the call's first series argument, for error messages."""
    for param in bound.function.params:
        value = bound.arguments.get(param.name)
        if param.takes_series and isinstance(value, list):
            series = [s for s in value if isinstance(s, Series)]
            if series:
                more = f" (+{len(series) - 1} more)" if len(series) > 1 else ""
                return f"{param.name}={series[0].name}{more}"
    return "values"


class Registry:
    """Every render function by name (aliases included); immutable once built."""

    def __init__(self, functions: Iterable[SeriesFunction]):
        table: dict[str, SeriesFunction] = {}
        for function in functions:
            for name in (function.name, *function.aliases):
                if name in table:
                    raise ValueError(f"cannot register function={name!r}: registered twice")
                table[name] = function
        self._functions = MappingProxyType(table)
        self._aggregators = frozenset(n for n, f in table.items() if f.aggregator)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def names(self) -> list[str]:
        return sorted(self._functions)

    @property
    def aggregator_names(self) -> frozenset[str]:
        """Functions a ``aggOrSeriesFunc`` parameter (groupByNode's callback) may name."""
        return self._aggregators

    def get(self, name: str) -> SeriesFunction:
        try:
            return self._functions[name]
        except KeyError:
            raise InputError(f"cannot call function={name!r}: unknown function") from None

    def bind(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None = None,
        *,
        check_series: bool = True,
    ) -> BoundCall:
        """Validate ``args``/``kwargs`` against the declaration of ``name``.

        ``check_series=False`` skips validating series arguments, for planning
        before anything is fetched.
        """
        function = self.get(name)
        params = function.params
        kwargs = kwargs or {}
        given: dict[str, Any] = {}

        def check(param: Param, value: Any) -> Any:
            if value is None:
                return None
            if param.takes_series and not check_series:
                return value
            return param.validate(name, value, AGG_NAMES, self._aggregators)

        if len(args) > len(params) and not (params and params[-1].multiple):
            raise InputError(
                f"cannot call {name} arguments={len(args)}: takes at most {len(params)}"
            )
        for index, value in enumerate(args):
            param = params[min(index, len(params) - 1)]
            if param.multiple:
                given.setdefault(param.name, []).append(check(param, value))
            else:
                given[param.name] = check(param, value)
        by_name = {p.name: p for p in params}
        for key, value in kwargs.items():
            param = by_name.get(key)
            if param is None:
                raise InputError(f"cannot call {name} {key}={value!r}: unexpected keyword argument")
            if key in given:
                raise InputError(f"cannot call {name} {key}={value!r}: given twice")
            given[key] = [check(param, value)] if param.multiple else check(param, value)

        arguments: dict[str, Any] = {}
        values: list[Any] = []
        for param in params:
            value = given.get(param.name, _MISSING)
            required = param.required and (check_series or not param.takes_series)
            if param.multiple:
                items = [v for v in (value if value is not _MISSING else []) if v is not None]
                if required and not items:
                    raise InputError(f"cannot call {name} {param.name}=(): required")
                arguments[param.name] = tuple(items)
                values.extend(items)
                continue
            if value is _MISSING or value is None:
                if required:
                    raise InputError(f"cannot call {name} {param.name}=None: required")
                value = param.default
            arguments[param.name] = value
            values.append(value)
        return BoundCall(function, name, MappingProxyType(arguments), tuple(values))

    def call(
        self,
        name: str,
        ctx: RequestContext,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None = None,
        widened: Sequence[Series] | None = None,
        generated: Mapping[str, Sequence[Series]] | None = None,
        shifted: Sequence[Sequence[Series]] | None = None,
    ) -> list[Series]:
        """Bind, validate and run ``name`` over already evaluated arguments.

        ``widened`` is the first series argument evaluated over the window
        :meth:`window` asked for (only for functions with a window hook).
        The function falls back to the request-window series without it.
        ``generated`` maps each target :meth:`generated_targets` named to its
        series (only for functions with a ``generates`` hook, and required).
        ``shifted`` holds the first series argument over each window
        :meth:`shift_offsets` named (only for functions with a shifts hook; the
        function falls back to the request-window series without it).
        """
        bound = self.bind(name, args, kwargs)
        function = bound.function
        if function.window is None and widened is not None:
            raise ValueError(f"cannot call {name} widened=...: it declares no window")
        if function.shifts is None and shifted is not None:
            raise ValueError(f"cannot call {name} shifted=...: it declares no shifts")
        if function.generates is None and generated is not None:
            raise ValueError(f"cannot call {name} generated=...: it generates no targets")
        if function.generates is not None and generated is None:
            raise ValueError(f"cannot call {name} generated=None: its targets were not evaluated")
        extra: dict[str, Any] = {}
        if function.window is not None:
            extra["widened"] = None if widened is None else list(widened)
        if function.shifts is not None:
            extra["shifted"] = None if shifted is None else [list(series) for series in shifted]
        if generated is not None:
            extra["generated"] = {target: list(series) for target, series in generated.items()}
        try:
            return function.body(ctx, *bound.values, **extra)
        except OverflowError as exc:
            # Where Python's float arithmetic overflows (``x ** 2`` of values near 1e300 in stdev's
            # running squares, ``int(inf)`` in cactiStyle's legend) graphite-web fails the whole
            # request with the same OverflowError (HTTP 500): there is no answer to match, so the
            # call is refused with a 400 naming it rather than left to crash.
            detail = exc.args[-1] if exc.args else "overflow"  # (34, 'Numerical result out of range')
            raise InputError(f"cannot call {name} {_series_label(bound)}: a value overflows a float ({detail})") from None

    def generated_targets(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None, ctx: RequestContext
    ) -> list[str]:
        """The targets a call of ``name`` over these evaluated arguments needs evaluated (see GenerateHook)."""
        bound = self.bind(name, args, kwargs)
        if bound.function.generates is None:
            return []
        return list(bound.function.generates(bound.arguments, ctx))

    def event_tags(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None) -> tuple[str, ...] | None:
        """The event tags a call of ``name`` reads (None: it reads no events); series arguments unchecked."""
        bound = self.bind(name, args, kwargs, check_series=False)
        if bound.function.events_param is None:
            return None
        return tuple(bound.arguments[bound.function.events_param])

    def shift_offsets(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None,
                      ctx: RequestContext) -> list[int]:
        """The offsets (seconds) of the windows a call's first series argument is evaluated
        over again (see ShiftsHook); empty when the function declares none."""
        bound = self.bind(name, args, kwargs, check_series=False)
        if bound.function.shifts is None:
            return []
        return [int(offset) for offset in bound.function.shifts(bound.arguments, ctx)]

    def window(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        ctx: RequestContext,
        step: int,
    ) -> tuple[int, int] | None:
        """Extra seconds (before, after) the first series argument of this call must cover.

        The evaluator evaluates that argument over ``ctx``'s window as for any
        call, then, when it yields series, over ``[ctx.start - before,
        ctx.end + after]`` too, and passes the latter as ``widened`` to
        :meth:`call`. ``step`` is the largest step among the series of the
        first evaluation. None when the function needs no other window.
        """
        bound = self.bind(name, args, kwargs, check_series=False)
        if bound.function.window is None:
            return None
        return bound.function.window(bound.arguments, ctx, step)

    def describe(self, name: str) -> dict[str, Any]:
        """One function in graphite-web's ``/functions/<name>`` shape."""
        function = self.get(name)
        return {
            "name": name,
            "function": function.signature(name),
            "description": function.description,
            "module": function.module,
            "group": function.group,
            "params": [p.to_json(AGG_NAMES, self._aggregators) for p in function.params],
        }

    def describe_all(self, group: str | None = None, grouped: bool = False) -> dict[str, Any]:
        """All functions as ``/functions`` serves them (optionally one group, or nested by group)."""
        result: dict[str, Any] = {}
        for name in self.names():
            info = self.describe(name)
            if group is not None and info["group"] != group:
                continue
            if grouped:
                result.setdefault(info["group"], {})[name] = info
            else:
                result[name] = info
        return result


def functions_in(module: Any) -> list[SeriesFunction]:
    """The functions a group module declares, in source order."""
    return [
        v
        for v in vars(module).values()
        if isinstance(v, SeriesFunction) and v.module == module.__name__
    ]


@functools.cache
def default_registry() -> Registry:
    """The registry of every group module (built once, on first use)."""
    functions: list[SeriesFunction] = []
    for module_name in GROUP_MODULES:
        functions.extend(functions_in(importlib.import_module(module_name)))
    return Registry(functions)


__all__ = [
    "AGG_NAMES",
    "BoundCall",
    "GenerateHook",
    "InputError",
    "Param",
    "ParamType",
    "Registry",
    "RequestContext",
    "SeriesFunction",
    "WindowHook",
    "default_registry",
    "series_function",
]
