"""Evaluate render targets: plan every fetch window, read each window once, then call functions.

graphite-web evaluates a target top-down and lets functions such as
``movingAverage`` or ``timeShift`` re-evaluate their first argument over
another time range, fetching again from inside the function. Here functions
never fetch. The evaluator

1. parses every target (``render.grammar``; pipes are already nested calls,
   ``template(...)`` is expanded with the request's ``template[...]`` values);
2. plans: walks the trees once, asking each function with a ``window`` hook
   in the registry how much earlier/later its first series argument must
   start/end, nesting windows inside windows (``movingAverage(timeShift(x,
   "1d"), 5)`` reads ``x`` one day earlier *and* five steps earlier), and
   finds the files of every ``(pattern, window)`` with their headers, so
   steps, series counts and point counts are known before reading; the
   :class:`~render.limits.Limits` are checked here;
3. reads: one ``DataSource.fetch`` per distinct window, all its patterns;
4. evaluates bottom-up with ``Registry.call``.

A windowed function gets its first argument twice, as graphite-web's
re-evaluation gave it: over the caller's window (as ``args[0]``) and, when
that yields series or the function is declared ``widens_empty``, over the
widened window (``widened=``). The hook is told
the largest step of the first (graphite's ``max(s.step for s in
seriesList)``). For a path the step comes from the file headers. For a
function call it is only knowable by evaluating the call, so when the hook's
answer depends on the step (checked by asking it twice) the argument is
evaluated over the caller's window first: one more planning round, whose
reads are again one call per window not yet read. Each windowed call's
first argument is evaluated once per window and reused. When that first
argument is a path and every file it matches answers both windows from the
same archive (same step, decided from the headers at plan time), its series
over the caller's window are cut from the widened read instead of read
again: whisper would return exactly those values. When the archives differ
both windows are read, as graphite-web does.

A call with a ``shifts`` hook (``timeStack``) gets its first argument
evaluated again over the caller's window moved by each offset the hook
names, as graphite-web re-evaluates it per shift (``shifted=``); each moved
window is planned and read like any other.

Three kinds of calls read something besides paths, each declared in the
registry rather than known here by name:

* **Source patterns** (``seriesByTag``, ``source_pattern=True``): planned and
  read exactly like a path whose text is the call's source text
  (``render.tagquery.path_expression``); the data source resolves it through
  its tag index, and the series' ``pathExpression`` is that text, as in
  graphite-web.
* **Events** (``events``, ``eventsOverlay``, ``events_param=``): planning
  records one ``EventsQuery`` per distinct (tags, window) -- a call inside
  ``timeShift`` asks for its own, shifted window -- and reading runs each
  once against the :class:`~render.events.store.EventStore`, filling
  ``ctx.events`` (the caller's context: it is the request's). The function
  looks its events up there. Without a store every query finds no events, so
  ``events()`` is a series of nulls, which is what graphite-web answers with
  an empty event table.
* **Generated targets** (``applyByNode``, ``useSeriesAbove``, ``aliasQuery``,
  ``generates=``): what they read depends on series values and names, known
  only after evaluating their arguments. When evaluation reaches such a call,
  its hook turns the evaluated arguments into target strings; the evaluator
  parses them (request templates applied), then runs the same plan / read /
  evaluate steps on them over the call's window -- one more read per window,
  limits counted together with everything read before -- and calls the body
  with ``generated={target: series}``. Generated targets may generate again,
  up to :data:`MAX_GENERATION_DEPTH` levels. The function never fetches and
  never sees the data source.

Output follows graphite-web: targets in request order, each target's series
in the order its function returns them, a pattern's series sorted by name;
the same path in two targets (or twice in one) yields its series each time;
empty targets are skipped. One deliberate difference: graphite-web 1.1.10 re-evaluates a *piped*
argument without the calls before the pipe (``x|aliasByNode(1)|
movingAverage(2)`` loses the alias); here a pipe is always the same as
nesting.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from render import ast
from render.datasource import Leaf, fetch_interval
from render.events.series import EventsQuery, events_query
from render.events.store import EventStore
from render.functions.params import InputError
from render.functions.registry import Registry, RequestContext, SeriesFunction, default_registry
from render.grammar import GrammarError, TemplateError, apply_template, parse
from render.limits import LimitError, Limits
from render.series import Series
from render.tagquery import TagQueryError, path_expression
from storage.finder import FindLimitExceeded

Window = tuple[int, int]

#: Planning rounds before giving up (each round resolves one level of
#: windowed calls whose first argument is itself a call).
MAX_PLANNING_ROUNDS = 16

#: How deep generated targets may generate targets again (``applyByNode``
#: whose template calls ``applyByNode``...).
MAX_GENERATION_DEPTH = 8


class Source(Protocol):
    """What the evaluator reads through (``render.datasource.DataSource``)."""

    def leaves(self, pattern: str, limit: int | None = None) -> list[Leaf]: ...

    def fetch(
        self,
        patterns: Iterable[str],
        start: int,
        end: int,
        now: int,
        *,
        x_files_factor: float = 0.0,
        leaves: Mapping[str, Sequence[Leaf]] | None = None,
    ) -> dict[str, list[Series]]: ...


def _scalar(node: ast.Arg) -> Any:
    if isinstance(node, ast.NoneLit):
        return None
    return node.value


def _is_expression(node: ast.Arg) -> bool:
    return isinstance(node, ast.PathExpr | ast.Call)


def _placeholders(node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
    """A call's literal arguments, with ``[]`` standing for every not yet evaluated series argument."""
    args = [[] if _is_expression(a) else _scalar(a) for a in node.args]
    kwargs = {k: [] if _is_expression(v) else _scalar(v) for k, v in node.kwargs}
    return args, kwargs


class _Request:
    """One ``evaluate`` call: its plan, what has been read, and the evaluation."""

    def __init__(self, evaluator: Evaluator, ctx: RequestContext,
                 template: Mapping[str, str] | None = None) -> None:
        self.source = evaluator.source
        self.registry = evaluator.registry
        self.limits = evaluator.limits
        self.events = evaluator.events
        self.ctx = ctx
        self.template = template
        self.event_queries: set[EventsQuery] = set()
        self.generation_depth = 0
        self.leaves: dict[str, list[Leaf]] = {}
        self.path_steps: dict[tuple[str, Window], int | None] = {}
        # window -> pattern -> matched files, everything the plan reads so far
        self.needs: dict[Window, dict[str, list[Leaf]]] = {}
        self.fetched: dict[Window, dict[str, list[Series]]] = {}
        # (call node, caller's window) -> window its first argument is read over
        # again (None: not again)
        self.widened: dict[tuple[ast.Call, Window], Window | None] = {}
        # (call node, caller's window) -> its first argument, evaluated over that window
        self.first_arguments: dict[tuple[ast.Call, Window], Any] = {}
        # (call node, caller's window) -> step of its first argument, learnt by evaluating it
        self.probed: dict[tuple[ast.Call, Window], int | None] = {}
        self.pending: set[tuple[ast.Call, Window]] = set()
        # (id of a header, window) -> fetch_interval: files of one schema share one Header
        self.intervals: dict[tuple[int, Window], Any] = {}
        # (pattern, window) -> the wider window whose read it is cut from (same archive in every file)
        self.slices: dict[tuple[str, Window], Window] = {}

    # --- planning -------------------------------------------------------------------

    def plan(self, trees: Sequence[ast.Expr], window: Window | None = None) -> None:
        """Record what ``trees`` read over ``window`` (default: the request's), probing steps as needed."""
        if window is None:
            window = (self.ctx.start, self.ctx.end)
        for _ in range(MAX_PLANNING_ROUNDS):
            self.pending = set()
            for tree in trees:
                self._plan(tree, window, record=True)
            self._check_limits()
            if not self.pending:
                return
            self.read()
            for call, call_window in self.pending:
                series = self._first_argument(call, call_window)
                steps = [s.step for s in series] if isinstance(series, list) else []
                self.probed[(call, call_window)] = max(steps, default=None)
        raise InputError(
            f"cannot plan targets={len(trees)}: windowed functions nested over "
            f"{MAX_PLANNING_ROUNDS} levels deep"
        )

    def _leaves(self, pattern: str) -> list[Leaf]:
        found = self.leaves.get(pattern)
        if found is None:
            try:
                found = self.source.leaves(pattern, self.limits.max_series_per_request)
            except FindLimitExceeded:
                raise LimitError(
                    f"cannot fetch pattern={pattern}: it matches more than "
                    f"{self.limits.max_series_per_request} series",
                    "max_series_per_request",
                    self.limits.max_series_per_request + 1,
                    self.limits.max_series_per_request,
                ) from None
            except TagQueryError as exc:
                raise InputError(str(exc)) from None
            self.leaves[pattern] = found
        return found

    def _path_step(self, pattern: str, window: Window) -> int | None:
        """Largest step among the pattern's series over ``window`` (None: no series)."""
        key = (pattern, window)
        if key not in self.path_steps:
            steps = []
            for leaf in self._leaves(pattern):
                info = self._interval(leaf, window)
                if info is not None:
                    steps.append(info[0][2])
            self.path_steps[key] = max(steps, default=None)
        return self.path_steps[key]

    def _interval(self, leaf: Leaf, window: Window) -> Any:
        """``fetch_interval`` of the leaf's header over ``window``, computed once per header object."""
        key = (id(leaf.header), window)  # the leaves keep their headers alive for the request
        if key not in self.intervals:
            self.intervals[key] = fetch_interval(leaf.header, window[0], window[1], self.ctx.now)
        return self.intervals[key]

    def _plan(self, node: ast.Arg, window: Window, record: bool) -> int | None:
        """Record what ``node`` reads over ``window``; return the step its series will have.

        With ``record=False`` nothing is recorded and the step of a call is
        estimated as the largest step of its series arguments.
        """
        if isinstance(node, ast.PathExpr):
            return self._plan_pattern(node.text, window, record)
        if not isinstance(node, ast.Call):
            return None
        function = self._function(node)
        if function.source_pattern:
            return self._plan_pattern(path_expression(node), window, record)
        if function.events_param is not None and record:
            self._plan_events(node, window)
        windowed = function.window is not None and bool(node.args) and _is_expression(node.args[0])
        steps = []
        for index, arg in enumerate(node.args):
            waiting = len(self.pending)
            step = self._plan(arg, window, record)
            if index == 0 and windowed:
                widened = self._widen(node, window, record, step, len(self.pending) == waiting)
                if widened is not None:
                    step = self._plan(arg, widened, record)
                    if record and isinstance(arg, ast.PathExpr) and self._sliceable(arg.text, window, widened):
                        self.slices[(arg.text, window)] = widened
            steps.append(step)
        for _, arg in node.kwargs:
            steps.append(self._plan(arg, window, record))
        if function.shifts is not None and node.args and _is_expression(node.args[0]):
            for moved in self._shifted_windows(node, window):
                self._plan(node.args[0], moved, record)
        return max((s for s in steps if s is not None), default=None)

    def _shifted_windows(self, node: ast.Call, window: Window) -> list[Window]:
        """The windows a call with a shifts hook evaluates its first argument over again."""
        args, kwargs = _placeholders(node)
        offsets = self.registry.shift_offsets(node.name, args, kwargs, self.ctx.with_window(*window))
        return [(window[0] + offset, window[1] + offset) for offset in offsets]

    def _plan_pattern(self, pattern: str, window: Window, record: bool) -> int | None:
        """A path (or a source pattern such as a seriesByTag call's text): its files, its step."""
        if record:
            self.needs.setdefault(window, {})[pattern] = self._leaves(pattern)
        return self._path_step(pattern, window)

    def _plan_events(self, node: ast.Call, window: Window) -> None:
        """The events query of an events-reading call over ``window``."""
        args, kwargs = _placeholders(node)
        tags = self.registry.event_tags(node.name, args, kwargs)
        if tags is not None:
            self.event_queries.add(events_query(self.ctx.with_window(*window), tags))

    def _function(self, node: ast.Call) -> SeriesFunction:
        return self.registry.get(node.name)

    def _hook(self, node: ast.Call, window: Window, step: int) -> Window:
        """The window the hook of ``node`` asks for its first argument, given that argument's step."""
        args, kwargs = _placeholders(node)
        extra = self.registry.window(node.name, args, kwargs, self.ctx.with_window(*window), step)
        if extra is None:
            return window
        before, after = extra
        return (window[0] - int(before), window[1] + int(after))

    def _widen(self, node: ast.Call, window: Window, record: bool, step: int | None,
               planned: bool) -> Window | None:
        """The window the first argument of a windowed call is read over again, if any.

        ``step`` is the planned step of that argument over ``window``, exact
        for a path (file headers); ``planned`` says everything inside the
        argument is planned, so it can be evaluated to learn its exact step.
        """
        key = (node, window)
        if key in self.widened:
            return self.widened[key]
        first = node.args[0]
        if isinstance(first, ast.PathExpr) or key in self.probed:
            if key in self.probed:
                step = self.probed[key]
            # no series over the caller's window: graphite reads nothing more
            widened = None if step is None else self._hook(node, window, step)
        else:
            guess = step or 60
            widened = self._hook(node, window, guess)
            if widened != self._hook(node, window, guess * 7 + 3):
                # the answer depends on a step only evaluating the argument tells
                if record and planned:
                    self.pending.add(key)
                if record:
                    return None
        if record:
            self.widened[key] = widened
        return widened

    def _sliceable(self, pattern: str, window: Window, wider: Window) -> bool:
        """Whether reading ``pattern`` over ``wider`` also gives its series over ``window``.

        True when every file answers both windows from the same archive (same
        step, same end) and neither read is cut short by the ring's length:
        whisper's values for ``window`` are then exactly the last ones of the
        wider read, so graphite's second read can be skipped.
        """
        leaves = self._leaves(pattern)
        if window == wider or not leaves:
            return False
        for leaf in {id(leaf.header): leaf for leaf in leaves}.values():  # one file per schema
            narrow, wide = self._interval(leaf, window), self._interval(leaf, wider)
            if narrow is None or wide is None:
                return False
            (first, until, step), count = narrow
            (wide_first, wide_until, wide_step), wide_count = wide
            if (step, until) != (wide_step, wide_until) or wide_first > first:
                return False
            if count != (until - first) // step or wide_count != (until - wide_first) // step:
                return False
        return True

    def _cut(self, pattern: str, window: Window, wide: list[Series]) -> list[Series]:
        """The series of ``pattern`` over ``window``, cut from its read over a wider window."""
        headers = {leaf.name: id(leaf.header) for leaf in self._leaves(pattern)}
        cut = []
        for series in wide:
            (first, until, step), count = self.intervals[(headers[series.name], window)]
            offset = (first - series.start) // step
            cut.append(series.copy(start=first, end=until, values=series.values[offset:offset + count]))
        return cut

    def _check_limits(self) -> None:
        series = points = 0
        for window, patterns in self.needs.items():
            for pattern, leaves in patterns.items():
                series += len(leaves)
                self.limits.check_series(series, pattern)
                for leaf in leaves:
                    info = self._interval(leaf, window)
                    if info is not None:
                        points += info[1]
                self.limits.check_points(points, pattern)

    # --- reading ----------------------------------------------------------------------

    def read(self) -> None:
        """One fetch per window for every planned pattern not read yet; every planned events query once."""
        for query in self.event_queries:
            if query not in self.ctx.events:
                self.ctx.events[query] = query.run(self.events) if self.events is not None else []
        for window, patterns in self.needs.items():
            done = self.fetched.setdefault(window, {})
            missing = {
                p: leaves for p, leaves in patterns.items() if p not in done and (p, window) not in self.slices
            }
            if missing:
                done.update(self.source.fetch(
                    missing, window[0], window[1], self.ctx.now,
                    x_files_factor=self.ctx.x_files_factor, leaves=missing,
                ))
        for pattern, window in self.slices:
            self._cut_read(pattern, window)

    def _cut_read(self, pattern: str, window: Window) -> list[Series]:
        """The series of a sliced ``(pattern, window)``, cut (once) from the wider read after
        that one is itself read or cut."""
        done = self.fetched.setdefault(window, {})
        if pattern not in done:
            wider = self.slices[(pattern, window)]
            if (pattern, wider) in self.slices:
                wide = self._cut_read(pattern, wider)
            else:
                wide = self.fetched[wider][pattern]
            done[pattern] = self._cut(pattern, window, wide)
        return done[pattern]

    # --- evaluating -------------------------------------------------------------------

    def evaluate(self, tree: ast.Expr, window: Window | None = None) -> list[Series]:
        """The series of one planned and read tree over ``window`` (default: the request's)."""
        result = self._evaluate(tree, (self.ctx.start, self.ctx.end) if window is None else window)
        if isinstance(result, Series):
            return [result]
        if not isinstance(result, list):
            raise InputError(f"cannot evaluate target={tree}: it is the value {result!r}, not series")
        return result

    def _evaluate(self, node: ast.Arg, window: Window) -> Any:
        if isinstance(node, ast.PathExpr):
            return list(self.fetched[window][node.text])
        if not isinstance(node, ast.Call):
            return _scalar(node)
        function = self._function(node)
        if function.source_pattern:
            return list(self.fetched[window][path_expression(node)])
        windowed = function.window is not None and bool(node.args) and _is_expression(node.args[0])
        args = [
            self._first_argument(node, window) if index == 0 and windowed
            else self._evaluate(arg, window)
            for index, arg in enumerate(node.args)
        ]
        kwargs = {key: self._evaluate(arg, window) for key, arg in node.kwargs}
        ctx = self.ctx.with_window(*window)
        extra: dict[str, Any] = {}
        if windowed:
            widened = self.widened.get((node, window))
            again = None
            if widened is not None and (args[0] or function.widens_empty):
                again = args[0] if widened == window else self._evaluate(node.args[0], widened)
            extra["widened"] = again
        if function.shifts is not None and node.args and _is_expression(node.args[0]) and args[0]:
            extra["shifted"] = [args[0] if moved == window else self._evaluate(node.args[0], moved)
                                for moved in self._shifted_windows(node, window)]
        if function.generates is not None:
            targets = self.registry.generated_targets(node.name, args, kwargs, ctx)
            extra["generated"] = self._generated(node.name, targets, window)
        return self.registry.call(node.name, ctx, args, kwargs, **extra)

    def _generated(self, function: str, targets: Sequence[str], window: Window) -> dict[str, list[Series]]:
        """Plan, read and evaluate the targets a call generated, over the call's window."""
        if self.generation_depth >= MAX_GENERATION_DEPTH:
            raise InputError(
                f"cannot call {function} targets={len(targets)}: targets generated over "
                f"{MAX_GENERATION_DEPTH} levels deep"
            )
        trees: dict[str, ast.Expr | None] = {}
        for target in dict.fromkeys(targets):
            if not target.strip():
                trees[target] = None  # graphite skips blank targets
                continue
            try:
                trees[target] = apply_template(parse(target), self.template)
            except (GrammarError, TemplateError) as exc:
                raise InputError(f"cannot call {function} target={target!r}: {exc}") from None
        planned = [tree for tree in trees.values() if tree is not None]
        self.generation_depth += 1
        try:
            self.plan(planned, window)
            self.read()
            return {
                target: [] if tree is None else self.evaluate(tree, window)
                for target, tree in trees.items()
            }
        finally:
            self.generation_depth -= 1

    def _first_argument(self, node: ast.Call, window: Window) -> Any:
        """A windowed call's first argument over the caller's window (evaluated once)."""
        key = (node, window)
        if key not in self.first_arguments:
            self.first_arguments[key] = self._evaluate(node.args[0], window)
        return self.first_arguments[key]


class Evaluator:
    """Evaluates render targets over a data source with a function registry.

    ``events`` is the store ``events()``/``eventsOverlay()`` read (None: no
    events at all).
    """

    def __init__(self, source: Source, registry: Registry | None = None,
                 limits: Limits | None = None, events: EventStore | None = None) -> None:
        self.source = source
        self.registry = registry if registry is not None else default_registry()
        self.limits = limits if limits is not None else Limits()
        self.events = events

    def parse(self, targets: Sequence[str], template: Mapping[str, str] | None = None) -> list[ast.Expr]:
        """Syntax trees of the non-blank targets, templates expanded (GrammarError, TemplateError, LimitError)."""
        trees = []
        for target in targets:
            if not target or not target.strip():
                continue
            self.limits.check_target(target)
            trees.append(apply_template(parse(target), template))
        return trees

    def evaluate(
        self,
        targets: Sequence[str],
        ctx: RequestContext,
        template: Mapping[str, str] | None = None,
    ) -> list[Series]:
        """The series of every target, concatenated in request order.

        Raises ValueError subclasses for anything the request got wrong:
        ``GrammarError``/``TemplateError`` (syntax), ``InputError`` (unknown
        function, bad argument, bad tag expression), ``LimitError`` (too
        much data, raised before any point is read -- except for targets a
        function generates, which are checked before *their* points are
        read). The events read are left in ``ctx.events``.
        """
        if isinstance(targets, str):
            targets = [targets]
        if ctx.start >= ctx.end:
            raise InputError(f"cannot evaluate from={ctx.start}: not before until={ctx.end}")
        trees = self.parse(targets, template)
        request = _Request(self, ctx, template)
        request.plan(trees)
        request.read()
        result: list[Series] = []
        for tree in trees:
            result.extend(request.evaluate(tree))
        return result


__all__ = ["Evaluator", "MAX_GENERATION_DEPTH", "MAX_PLANNING_ROUNDS", "Source"]
