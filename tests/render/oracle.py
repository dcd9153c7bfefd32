"""graphite-web 1.1.10 as a differential oracle for render functions (tests only).

Both engines read the same in-memory data, ``{path: (start, step, [values])}``,
fetched with whisper's alignment rule. graphite-web evaluates targets with its
own evaluator (its data fetch is swapped for one reading that dict); Carbyne's
side is :func:`evaluate`, a small evaluator over ``render.ast`` nodes that
plans the widened windows functions ask for, the way the real evaluator does.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import importlib.metadata
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from render import ast
from render.functions import RequestContext, default_registry
from render.series import Series

Data = Mapping[str, tuple[int, int, Sequence[float | None]]]

GRAPHITE_WEBAPP = str(importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp"))


def ensure_graphite() -> None:
    """Make graphite-web importable and Django configured (idempotent).

    When tests/render/conftest.py's ``graphite_web`` fixture already set
    Django up, this leaves that configuration alone.
    """
    if GRAPHITE_WEBAPP not in sys.path:
        sys.path.append(GRAPHITE_WEBAPP)
    from django.conf import settings

    if settings.configured:
        return
    if "GRAPHITE_STORAGE_DIR" not in os.environ:
        storage = tempfile.mkdtemp(prefix="carbyne-oracle-")
        os.makedirs(os.path.join(storage, "log", "webapp"))
        os.environ["GRAPHITE_STORAGE_DIR"] = storage
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
    import django

    with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
        django.setup()


# --- data shared by both engines -------------------------------------------------


def fetch_window(
    start: int, step: int, values: Sequence[float | None], from_time: int, until_time: int
) -> tuple[int, int, list[float | None]]:
    """whisper's fetch alignment over in-memory points: (from, until, values)."""
    first = int(from_time - from_time % step) + step
    until = int(until_time - until_time % step) + step
    if first == until:
        until += step
    out = []
    for t in range(first, until, step):
        i = (t - start) // step
        out.append(values[i] if 0 <= i < len(values) and (t - start) % step == 0 else None)
    return first, until, out


def _expand_braces(node: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", node)
    if not match:
        return [node]
    head, tail = node[: match.start()], node[match.end():]
    return [x for part in match.group(1).split(",") for x in _expand_braces(head + part + tail)]


def matching_paths(data: Data, pattern: str) -> list[str]:
    """Paths in ``data`` matching a graphite glob (``*``, ``?``, ``[..]``, ``{a,b}`` per node)."""
    nodes = [_expand_braces(n) for n in pattern.split(".")]
    found = []
    for path in sorted(data):
        parts = path.split(".")
        if len(parts) == len(nodes) and all(
            any(fnmatch.fnmatchcase(p, alt) for alt in alts) for p, alts in zip(parts, nodes, strict=True)
        ):
            found.append(path)
    return found


def fetch_series(data: Data, pattern: str, ctx: RequestContext) -> list[Series]:
    """Carbyne's side of a fetch: series named by path, ``path_expression`` = the pattern."""
    result = []
    for path in matching_paths(data, pattern):
        start, step, values = data[path]
        first, until, window = fetch_window(start, step, values, ctx.start, ctx.end)
        result.append(
            Series(path, first, until, step, window, path_expression=pattern, x_files_factor=ctx.x_files_factor)
        )
    return result


# --- Carbyne's side ---------------------------------------------------------------


def _scalar(node: ast.Arg) -> Any:
    if isinstance(node, ast.NoneLit):
        return None
    return node.value


def evaluate(node: ast.Arg, ctx: RequestContext, data: Data) -> Any:
    """Evaluate one AST node the way Carbyne's evaluator plans it: widened and shifted windows,
    then call."""
    if isinstance(node, ast.PathExpr):
        return fetch_series(data, node.text, ctx)
    if not isinstance(node, ast.Call):
        return _scalar(node)
    registry = default_registry()
    function = registry.get(node.name)
    kwargs = {key: evaluate(value, ctx, data) for key, value in node.kwargs}
    args = [evaluate(arg, ctx, data) for arg in node.args]
    widened = None
    if function.window is not None and args and isinstance(args[0], list) and (args[0] or function.widens_empty):
        step = max((s.step for s in args[0]), default=60)  # the real evaluator's guess when there are none
        before, after = registry.window(node.name, args, kwargs, ctx, step)
        widened = evaluate(node.args[0], ctx.with_window(ctx.start - before, ctx.end + after), data)
    shifted = None
    if function.shifts is not None and args and isinstance(args[0], list) and args[0]:
        shifted = [evaluate(node.args[0], ctx.with_window(ctx.start + offset, ctx.end + offset), data)
                   for offset in registry.shift_offsets(node.name, args, kwargs, ctx)]
    return registry.call(node.name, ctx, args, kwargs, widened=widened, shifted=shifted)


def parse_target(target: str) -> ast.Expr:
    from render.grammar import parse

    return parse(target)


def carbyne_evaluate(
    target: str | list[str], start: int, end: int, data: Data, now: int | None = None,
    x_files_factor: float = 0.0,
) -> list[Series]:
    """Targets evaluated by Carbyne over ``data``, in one request (one context)."""
    ctx = RequestContext(start=start, end=end, now=end if now is None else now, x_files_factor=x_files_factor)
    targets = [target] if isinstance(target, str) else target
    return [s for t in targets for s in evaluate(parse_target(t), ctx, data)]


# --- graphite-web's side ---------------------------------------------------------


def graphite_context(ctx: RequestContext) -> dict[str, Any]:
    """A graphite requestContext for ``ctx`` (as render/views.py builds it)."""
    ensure_graphite()
    import pytz
    from graphite.util import epoch_to_dt

    return {
        "startTime": epoch_to_dt(ctx.start),
        "endTime": epoch_to_dt(ctx.end),
        "now": epoch_to_dt(ctx.now),
        "localOnly": False,
        "template": {},
        "tzinfo": pytz.utc,
        "forwardHeaders": {},
        "sourceIdHeaders": {},
        "data": [],
        "prefetched": {},
        "xFilesFactor": ctx.x_files_factor,
        "maxDataPoints": None,
        "targets": [],
        "maxStep": None,
    }


@contextlib.contextmanager
def graphite_reading(data: Data) -> Iterator[None]:
    """While active, graphite-web's evaluator fetches from ``data`` instead of its store."""
    ensure_graphite()
    from graphite.render import evaluator
    from graphite.util import timebounds

    def prefetch(request_context: dict[str, Any], path_expressions: list[str]) -> None:
        bounds = timebounds(request_context)
        start, end, _ = bounds
        fetched = request_context.setdefault("prefetched", {}).setdefault(bounds, {})
        for pattern in path_expressions:
            results = []
            for path in matching_paths(data, pattern):
                p_start, step, values = data[path]
                first, until, window = fetch_window(p_start, step, values, start, end)
                window = [None if v is None else float(v) for v in window]  # whisper reads doubles
                results.append((path, ((first, until, step), window)))
            fetched[pattern] = results

    original = evaluator.prefetchData
    evaluator.prefetchData = prefetch
    try:
        yield
    finally:
        evaluator.prefetchData = original


def graphite_evaluate(
    target: str | list[str], start: int, end: int, data: Data, now: int | None = None,
    x_files_factor: float = 0.0,
) -> list[Any]:
    """Targets evaluated by graphite-web 1.1.10 over ``data``, in one request."""
    ctx = RequestContext(start=start, end=end, now=end if now is None else now, x_files_factor=x_files_factor)
    request_context = graphite_context(ctx)
    request_context["targets"] = [target] if isinstance(target, str) else target
    from graphite.render.evaluator import evaluateTarget

    with graphite_reading(data):
        return evaluateTarget(request_context, target)


def to_graphite(series: Series) -> Any:
    """A graphite ``TimeSeries`` equal to ``series`` (a fresh object graphite may mutate)."""
    ensure_graphite()
    from graphite.render.datalib import TimeSeries

    result = TimeSeries(
        series.name,
        series.start,
        series.end,
        series.step,
        series.output_list(),
        consolidate=series.consolidation_func,
        tags=dict(series.tags),
        xFilesFactor=series.x_files_factor,
        pathExpression=series.path_expression,
    )
    result.options = {k: v for k, v in series.options.items() if k != "color"}
    if "color" in series.options:
        result.color = series.options["color"]
    return result


def _graphite_args(value: Any) -> Any:
    if isinstance(value, Series):
        return to_graphite(value)
    if isinstance(value, list):
        return [_graphite_args(v) for v in value]
    return copy.deepcopy(value)


def graphite_call(name: str, ctx: RequestContext, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None) -> Any:
    """graphite-web's function ``name`` over copies of Carbyne inputs (validated as graphite does)."""
    ensure_graphite()
    from graphite.errors import InputParameterError, NormalizeEmptyResultError
    from graphite.functions import SeriesFunction
    from graphite.functions.params import validateParams

    function = SeriesFunction(name)
    g_args = [_graphite_args(a) for a in args]
    g_kwargs = {k: _graphite_args(v) for k, v in (kwargs or {}).items()}
    with contextlib.suppress(InputParameterError):  # graphite only warns (ENFORCE_INPUT_VALIDATION)
        g_args, g_kwargs = validateParams(name, function.params, g_args, g_kwargs)
    try:
        return function(graphite_context(ctx), *g_args, **g_kwargs)
    except NormalizeEmptyResultError:  # graphite's evaluator turns this into []
        return []


def carbyne_call(
    name: str,
    ctx: RequestContext,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None = None,
    widened: Sequence[Series] | None = None,
) -> list[Series]:
    return default_registry().call(name, ctx, list(args), dict(kwargs or {}), widened=widened)


# --- comparing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One result series reduced to what the two engines must agree on."""

    name: str
    start: int
    end: int
    step: int
    values: tuple[float | None, ...]
    tags: tuple[tuple[str, str], ...]
    path_expression: str
    consolidation_func: str
    x_files_factor: float
    options: tuple[tuple[str, Any], ...]
    #: where the value is a Python int (the output formats write ``1``, not ``1.0``)
    int_positions: tuple[int, ...] = ()

    def text(self) -> str:
        return f"{self.name!r} {self.start} {self.end} {self.step} {list(self.values)} {dict(self.tags)}"


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def observe_carbyne(series: Series) -> Observed:
    return Observed(
        series.name,
        series.start,
        series.end,
        series.step,
        tuple(_clean(v) for v in series.values.tolist()),
        tuple(series.tags.items()),
        series.path_expression,
        series.consolidation_func,
        float(series.x_files_factor),
        tuple(sorted(series.options.items())),
        _int_positions(series.output_list()),
    )


def _int_positions(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(i for i, v in enumerate(values) if isinstance(v, int) and not isinstance(v, bool))


def observe_graphite(series: Any) -> Observed:
    options = dict(series.options)
    if hasattr(series, "color"):
        options["color"] = series.color
    return Observed(
        series.name,
        series.start,
        series.end,
        series.step * series.valuesPerPoint,
        tuple(_clean(v) for v in series),
        tuple((k, str(v)) for k, v in series.tags.items()),
        series.pathExpression,
        series.consolidationFunc,
        float(series.xFilesFactor if series.xFilesFactor is not None else 0.0),
        tuple(sorted(options.items())),
        _int_positions(list(series)),
    )


def _values_close(a: Sequence[float | None], b: Sequence[float | None]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            if x is not y:
                return False
        elif not (x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)):
            return False
    return True


def differences(ours: Sequence[Observed], theirs: Sequence[Observed]) -> list[str]:
    """Human-readable differences between two observed results (empty when they agree)."""
    if len(ours) != len(theirs):
        return [
            f"{len(ours)} series vs graphite's {len(theirs)}:\n  ours:     "
            + "\n            ".join(o.text() for o in ours)
            + "\n  graphite: "
            + "\n            ".join(t.text() for t in theirs)
        ]
    problems = []
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        for field in ("name", "start", "end", "step", "tags", "path_expression",
                      "consolidation_func", "x_files_factor", "options", "int_positions"):
            if getattr(o, field) != getattr(t, field):
                problems.append(f"#{i} {field}: ours {getattr(o, field)!r} graphite {getattr(t, field)!r}")
        if not _values_close(o.values, t.values):
            problems.append(f"#{i} values: ours {list(o.values)} graphite {list(t.values)}")
    return problems


def bit_differences(ours: Sequence[Observed], theirs: Sequence[Observed]) -> list[str]:
    """Values :func:`differences` lets pass as close but that are not the same float (the
    output formats would print them differently); for results already found equal."""
    problems = []
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        for j, (x, y) in enumerate(zip(o.values, t.values, strict=True)):
            if x is not None and y is not None and repr(x) != repr(y):
                problems.append(f"#{i} bits: ours {x!r} graphite {y!r} at {j}")
                break
    return problems


def assert_same(ours: Sequence[Series], theirs: Sequence[Any]) -> None:
    problems = differences([observe_carbyne(s) for s in ours], [observe_graphite(s) for s in theirs])
    assert not problems, "\n".join(problems)


def compare_target(
    target: str | list[str], start: int, end: int, data: Data, now: int | None = None,
    x_files_factor: float = 0.0,
) -> list[Series]:
    """Evaluate ``target`` in both engines, assert equal results, return ours."""
    ours = carbyne_evaluate(target, start, end, data, now, x_files_factor)
    assert_same(ours, graphite_evaluate(target, start, end, data, now, x_files_factor))
    return ours


def compare_call(
    name: str, ctx: RequestContext, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None
) -> list[Series]:
    """Run ``name`` in both engines over the same inputs, assert equal results, return ours.

    Also checks Carbyne left its inputs untouched.
    """
    before = [observe_carbyne(s) for a in args if isinstance(a, list) for s in a if isinstance(s, Series)]
    ours = carbyne_call(name, ctx, args, kwargs)
    after = [observe_carbyne(s) for a in args if isinstance(a, list) for s in a if isinstance(s, Series)]
    assert before == after, f"{name} changed its inputs"
    assert_same(ours, graphite_call(name, ctx, args, kwargs))
    return ours


# --- graphite's /functions metadata ---------------------------------------------------


def graphite_functions() -> dict[str, Any]:
    """graphite-web's SeriesFunctions table (name -> function object)."""
    ensure_graphite()
    from graphite.functions import SeriesFunctions

    return SeriesFunctions()


def graphite_signature(name: str) -> str:
    """graphite's ``/functions`` "function" field, computed as Python <= 3.10 did."""
    import inspect

    spec = inspect.getfullargspec(graphite_functions()[name])
    args = spec.args[1:]
    defaults = spec.defaults or ()
    parts = []
    for i, arg in enumerate(args):
        j = i - (len(args) - len(defaults))
        parts.append(arg if j < 0 else f"{arg}={defaults[j]!r}")
    if spec.varargs:
        parts.append("*" + spec.varargs)
    return f"{name}({', '.join(parts)})"


def graphite_params_json(name: str) -> list[dict[str, Any]]:
    return [p.toJSON() for p in graphite_functions()[name].params]


# --- generated inputs -------------------------------------------------------------------


def series_lists(
    max_series: int = 4, steps: Sequence[int] = (60, 120, 180), max_points: int = 12, min_series: int = 0
) -> Any:
    """A hypothesis strategy for series lists with gaps, mixed steps and shared path expressions."""
    from hypothesis import strategies as st

    value = st.one_of(
        st.none(),
        st.integers(-5, 20).map(float),
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32).map(float),
    )

    @st.composite
    def one(draw: Any, index: int) -> Series:
        step = draw(st.sampled_from(steps))
        start = draw(st.integers(0, 5)) * step
        values = draw(st.lists(value, min_size=0, max_size=max_points))
        node = draw(st.sampled_from(["b", "x", "y", "z"]))
        leaf = draw(st.sampled_from(["c", "d"]))
        name = f"a.{node}{index}.{leaf}"
        pattern = draw(st.sampled_from([name, "a.*.c", f"a.{node}*.*"]))
        return Series(name, start, start + step * len(values), step, values, path_expression=pattern)

    return st.integers(min_series, max_series).flatmap(
        lambda n: st.tuples(*[one(i) for i in range(n)]).map(list)
    )


def stored_data(max_points: int = 40) -> Any:
    """A hypothesis strategy for in-memory stores: a.b.c and a.x.c at step 60, a.y.d at 120."""
    from hypothesis import strategies as st

    value = st.one_of(st.none(), st.integers(-20, 100).map(float), st.floats(-1e3, 1e3, width=32).map(float))
    points = st.lists(value, min_size=0, max_size=max_points)
    return st.fixed_dictionaries(
        {"a.b.c": points.map(lambda v: (0, 60, v)),
         "a.x.c": points.map(lambda v: (0, 60, v)),
         "a.y.d": points.map(lambda v: (0, 120, v))}
    )
