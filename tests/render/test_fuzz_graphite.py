"""Differential fuzzing: random targets over random data, Carbyne against graphite-web 1.1.10.

Targets are built from the registry: a function, then an argument for each
parameter drawn by its declared type (ints and floats with negatives and 0,
intervals, aggregation names, node numbers, regexes for the alias and grep
functions...), series arguments nested one to three calls deep; now and then
an argument is extreme (1e300, 1e-300, -0.0, windows of 1000 points or a
day, negative window sizes). The data has gaps, all-None and all-equal
series, single points, counters that reset, negatives, zeros (both signs),
magnitudes near the float limits, steps from 1 s to 5 min (mostly 60 and
120), different lengths; the request window is not aligned to the steps,
may be 2 s or days long, and the whole case may sit at a realistic epoch
(an hour, a month's end, a DST change) instead of near 0.

Where graphite-web raises there is nothing to compare; where Carbyne refuses
(InputError) and graphite answers, the refusal is counted for review. Every
other difference fails the test. The default run is short and seeded; run
the module as a script for a big run with the differences grouped::

    python tests/render/test_fuzz_graphite.py --count 5000 --seed 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import random
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from oracle import (
    Data,
    bit_differences,
    carbyne_evaluate,
    differences,
    graphite_evaluate,
    observe_carbyne,
    observe_graphite,
)

from render.functions import InputError, default_registry
from render.functions.params import Param, ParamType
from render.functions.registry import AGG_NAMES
from render.series import Series

pytestmark = pytest.mark.filterwarnings("ignore")

#: Functions the in-memory oracle cannot run the same way in both engines:
#: random output, events, tag queries, and targets generated from series
#: (those need the full evaluator; tests/render/test_evaluator_generated.py).
EXCLUDED = frozenset({
    "randomWalkFunction", "events", "eventsOverlay", "seriesByTag", "applyByNode", "useSeriesAbove",
    "aliasQuery",
})

#: Path expressions a series argument may be (globs, a missing path, mixed steps).
PATTERNS = (
    "a.b.c", "a.*.c", "a.*.*", "a.{b,x}.c", "a.y.d", "*.*.*", "b.*.e", "a.[bx].c", "nothing.*",
    "b.one.e", "a.z.c",
)

INTERVALS = ("1min", "2min", "3min", "5min", "90s", "10min", "1h", "120s", "7min")
#: graphite-web loops until memory runs out on a negative bucket (summarize's ``-1min``).
SIGNED_INTERVALS = (*INTERVALS, "-1min", "-5min")
REGEXES = (r"a\.(\w+)\.c", r"^a", r"\.c$", "b", "[xy]", r"(\w+)\.(\w+)", "nothing", r"a\.b")
REPLACEMENTS = (r"\1", "X", r"\1-\2", "", "z")
NAMES = ("x", "foo.bar", "a.b", "n1")


@dataclass(frozen=True)
class Case:
    """One fuzzed request: data, window and targets."""

    data: dict[str, tuple[int, int, list[float | None]]]
    start: int
    end: int
    targets: tuple[str, ...]
    #: shapes in the targets where the engines are known to differ (keys of KNOWN)
    known: frozenset[str] = frozenset()


#: Known differences, by the shape that causes them: (why, the result fields it may change;
#: "*" any). Each is pinned by a case in tests/render/cases/fuzz_found.test or graph.test.
KNOWN: dict[str, tuple[str, frozenset[str]]] = {
    "series-keyword": ("graphite-web 1.1.10 prefetches no path inside a keyword argument, so it "
                       "evaluates to no series", frozenset({"*"})),
    "asPercent": ("graphite-web labels asPercent's consolidated values with the unconsolidated step "
                  "when steps are mixed", frozenset({"*"})),
    "delay-0": ("graphite-web's delay by 0 steps drops every value (series[:-0])", frozenset({"*"})),
    "transformNull-reference": ("graphite-web, given more reference points than values, keeps the tail "
                                "of its zip", frozenset({"*"})),
    "verticalLine-unlabelled": ("graphite-web names an unlabelled verticalLine None", frozenset({"*"})),
    "setXFilesFactor": ("graphite-web's setXFilesFactor also sets the request's xFilesFactor, so series "
                        "fetched after it carry it", frozenset({"*"})),
    "stacked-options": ("graphite-web's stacked drops the series' other graph options (color...)",
                        frozenset({"options"})),
    "shared-tags": ("graphite-web's areaBetween and holtWintersConfidence* give both series one tags dict: "
                    "tagging one tags the other", frozenset({"tags"})),
}


# --- data -------------------------------------------------------------------------------


#: Magnitudes near the float limits: squares overflow (graphite fails there too), sums lose digits.
EXTREMES = (1e300, -1e300, 1.7976931348623157e308, 1e-300, -1e-300, 5e-324, 2.0**53, 2.0**53 + 2, 1e15 + 0.25)


def _counter(rng: random.Random, length: int) -> list[float | None]:
    """A growing counter that resets now and then, with gaps (for the derivatives)."""
    out: list[float | None] = []
    count = rng.randint(0, 100)
    for _ in range(length):
        count = rng.randint(0, 10) if rng.random() < 0.05 else count + rng.randint(0, 20)
        out.append(None if rng.random() < 0.1 else float(count))
    return out


def random_values(rng: random.Random, length: int) -> list[float | None]:
    kind = rng.random()
    if kind < 0.07:
        return [None] * length
    if kind < 0.12:
        return [0.0] * length
    if kind < 0.17:  # all equal: zero spreads, ties everywhere
        return [rng.choice([7.0, -3.5, 0.1, 2.0**53, 1e300])] * length
    if kind < 0.21:  # one value among gaps
        out: list[float | None] = [None] * length
        if length:
            out[rng.randrange(length)] = rng.choice([5.0, -1.0, 0.25, 0.0])
        return out
    if kind < 0.27:
        return _counter(rng, length)
    extreme = 0.15 if kind < 0.3 else 0.0
    gaps = rng.choice([0.0, 0.1, 0.3, 0.6])
    out: list[float | None] = []
    for _ in range(length):
        r = rng.random()
        if r < gaps:
            out.append(None)
        elif rng.random() < extreme:
            out.append(rng.choice(EXTREMES))
        elif r < gaps + 0.1:
            out.append(rng.choice([0.0, 0.0, -0.0]))
        elif rng.random() < 0.5:
            out.append(float(rng.randint(-5, 30)))
        else:
            out.append(round(rng.uniform(-100, 100), rng.choice([0, 1, 3])))
    return out


#: Unusual steps: seconds, a prime, and ones that share no multiple of 60 with each other.
ODD_STEPS = (1, 7, 10, 30, 90, 300)
#: Epochs the whole case may be moved to: an hour, a 15 min DST change in Europe, a year's
#: last second, a time on no minute.
BASES = (1_699_999_200, 1_711_846_800, 1_704_067_199, 1_699_999_937)


def random_data(rng: random.Random, span: int = 2400) -> dict[str, tuple[int, int, list[float | None]]]:
    """Paths a.{b,x,z}.c, a.y.d, b.{one,two}.e with random steps, starts, lengths and values.

    Steps under 30 s only for requests of at most two hours (``span`` seconds), so that
    graphite-web's Python loops stay quick.
    """
    data = {}
    for path in ("a.b.c", "a.x.c", "a.z.c", "a.y.d", "b.one.e", "b.two.e"):
        if path in ("a.z.c", "b.two.e") and rng.random() < 0.3:
            continue
        if rng.random() < 0.12:
            step = rng.choice([s for s in ODD_STEPS if span <= 7200 or s >= 30])
        else:
            step = rng.choice([60, 60, 120]) if path != "a.y.d" else 120
        start = rng.choice([0, 0, step, 3 * step])
        shape = rng.random()
        if shape < 0.05:
            length = 1
        elif shape < 0.2:
            length = rng.randint(0, 30)
        elif shape < 0.95:
            length = rng.randint(15, 40)
        else:
            length = rng.randint(100, 400)
        data[path] = (start, step, random_values(rng, length))
    return data


def random_window(rng: random.Random) -> tuple[int, int]:
    start = rng.choice([0, 30, 60, 90, 150, 300, 599])
    kind = rng.random()
    if kind < 0.05:
        return start, start + rng.choice([1, 2, 59, 61])
    if kind < 0.1:
        return start, start + rng.choice([3 * 3600, 86400 + 17, 3 * 86400])
    return start, start + rng.choice([120, 300, 601, 900, 1200, 1777, 2400])


# --- targets ----------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _number(rng: random.Random, choices: tuple[Any, ...]) -> str:
    return repr(rng.choice(choices))


#: Literal arguments by (function, parameter) where the type alone says too little.
SPECIAL: dict[tuple[str, str], Callable[[random.Random], str]] = {
    ("alias", "newName"): lambda r: _quote(r.choice(NAMES)),
    ("aliasSub", "search"): lambda r: _quote(r.choice(REGEXES)),
    ("aliasSub", "replace"): lambda r: _quote(r.choice(REPLACEMENTS)),
    ("grep", "pattern"): lambda r: _quote(r.choice(REGEXES)),
    ("exclude", "pattern"): lambda r: _quote(r.choice(REGEXES)),
    ("consolidateBy", "consolidationFunc"): lambda r: _quote(r.choice(["sum", "average", "avg", "min", "max",
                                                                       "first", "last", "avg_zero"])),
    ("cactiStyle", "system"): lambda r: _quote(r.choice(["si", "binary"])),
    ("cactiStyle", "units"): lambda r: _quote(r.choice(["b", "ms"])),
    ("legendValue", "valuesTypes"): lambda r: _quote(r.choice(["average", "avg_zero", "median", "sum", "min",
                                                               "max", "last", "total", "si", "binary"])),
    ("integralByInterval", "intervalUnit"): lambda r: _quote(r.choice(INTERVALS[:6])),
    ("stacked", "stack"): lambda r: _quote(r.choice(["s1", "__DEFAULT__"])),
    ("color", "theColor"): lambda r: _quote(r.choice(["red", "00ff00", "blue"])),
    ("identity", "name"): lambda r: _quote(r.choice(NAMES)),
    ("sinFunction", "name"): lambda r: _quote(r.choice(NAMES)),
    ("timeFunction", "name"): lambda r: _quote(r.choice(NAMES)),
    ("threshold", "label"): lambda r: _quote(r.choice(NAMES)),
    ("threshold", "color"): lambda r: _quote("red"),
    ("verticalLine", "label"): lambda r: _quote(r.choice(NAMES)),
    ("verticalLine", "color"): lambda r: _quote("red"),
    ("smartSummarize", "alignTo"): lambda r: _quote(r.choice(["seconds", "minutes", "hours", "days"])),
    ("filterSeries", "operator"): lambda r: _quote(r.choice(["!=", "<", "<=", "=", ">", ">="])),
    ("reduceSeries", "reduceFunction"): lambda r: _quote(r.choice(["asPercent", "diffSeries", "divideSeries"])),
    ("reduceSeries", "reduceMatchers"): lambda r: _quote(r.choice(["b", "x", "c", "d"])),
    ("groupByTags", "tags"): lambda r: _quote(r.choice(["name", "x"])),
    ("aliasByTags", "tags"): lambda r: r.choice(["1", "-1", "'name'", "0"]),
    ("timeStack", "timeShiftUnit"): lambda r: _quote(r.choice(["1min", "2min", "5min", "1h"])),
    ("timeStack", "timeShiftStart"): lambda r: r.choice(["0", "1", "2"]),
    ("timeStack", "timeShiftEnd"): lambda r: r.choice(["0", "1", "3"]),
    ("holtWintersForecast", "bootstrapInterval"): lambda r: _quote(r.choice(["2min", "10min", "1h"])),
    ("holtWintersForecast", "seasonality"): lambda r: _quote(r.choice(["3min", "5min", "10min"])),
    ("randomWalkFunction", "name"): lambda r: _quote("rw"),
    ("sinFunction", "step"): lambda r: r.choice(["60", "120", "7"]),
    ("timeFunction", "step"): lambda r: r.choice(["60", "120", "7"]),
    ("log", "base"): lambda r: r.choice(["10", "2", "1", "0", "-2", "3"]),
    ("round", "precision"): lambda r: r.choice(["0", "1", "2", "-1"]),
    ("timeShift", "timeShift"): lambda r: _quote(r.choice(["1min", "-2min", "5min", "+3min", "0min", "1h", "-90s"])),
    ("asPercent", "total"): lambda r: r.choice(["100", "0", "-50", "12.5"]),
    ("stdev", "windowTolerance"): lambda r: r.choice(["0.1", "0", "0.5", "1"]),
}
for _hw in ("holtWintersAberration", "holtWintersConfidenceArea", "holtWintersConfidenceBands"):
    SPECIAL[(_hw, "bootstrapInterval")] = SPECIAL[("holtWintersForecast", "bootstrapInterval")]
    SPECIAL[(_hw, "seasonality")] = SPECIAL[("holtWintersForecast", "seasonality")]


#: Optional parameters always given: graphite's default is the wall clock, Carbyne's the request's now.
ALWAYS_GIVEN = frozenset({("timeSlice", "endSliceAt")})


#: Extreme literals, drawn now and then: graphite's grammar reads ``1e300`` as a number but
#: ``1e+300`` as a path, so exponents are written without a sign.
EXTREME_FLOATS = ("1e300", "-1e300", "1e-300", "-0.0", "99.9", "100.5", "1000", "0.001", "-100", "1e15")
EXTREME_INTS = ("10", "100", "1000", "-5", "7", "30")
#: Long, short and odd intervals (never negative or zero: graphite's summarize loops forever).
EXTREME_INTERVALS = ("1d", "30s", "1s", "7s", "1w", "45s", "25h", "3h")


def _by_type(rng: random.Random, param: Param, base: int = 0) -> str:
    kind = param.type
    extreme = rng.random() < 0.1
    if kind is ParamType.float:
        if extreme:
            return rng.choice(EXTREME_FLOATS)
        return _number(rng, (0, 1, -1, 2, 2.5, -3, 0.5, 5, 10, 50, 100, -0.25, 0.0))
    if kind in (ParamType.integer, ParamType.node):
        if extreme:
            return rng.choice(EXTREME_INTS)
        return _number(rng, (0, 1, 2, 3, 5, -1, -2))
    if kind is ParamType.nodeOrTag:
        return rng.choice(["0", "1", "2", "-1", "-3", "'name'", "'x'"])
    if kind is ParamType.interval:
        if extreme and param.name != "timeShift":
            return _quote(rng.choice(EXTREME_INTERVALS))
        return _quote(rng.choice(SIGNED_INTERVALS if param.name == "timeShift" else INTERVALS))
    if kind is ParamType.intOrInterval:
        if extreme:
            return rng.choice(["-1", "100", "1000", "7"]) if rng.random() < 0.5 else _quote(rng.choice(EXTREME_INTERVALS))
        return rng.choice(["1", "2", "3", "5", "0", "10"]) if rng.random() < 0.5 else _quote(rng.choice(INTERVALS))
    if kind is ParamType.intOrInf:
        return rng.choice(["100", "-1", "1000"]) if extreme else rng.choice(["1", "2", "3", "0", "10"])
    if kind is ParamType.aggFunc:
        return _quote(rng.choice(AGG_NAMES))
    if kind is ParamType.aggOrSeriesFunc:
        return _quote(rng.choice([*AGG_NAMES, "sumSeries", "averageSeries", "maxSeries", "diffSeries"]))
    if kind is ParamType.boolean:
        return rng.choice(["true", "false"])
    if kind is ParamType.date:
        return _quote(str(base + rng.choice([0, 120, 300, 450, 600, 900, 1500])))
    if kind in (ParamType.string, ParamType.tag):
        if param.options:
            return _quote(str(rng.choice([o for o in param.options if o is not None])))
        return _quote(rng.choice(NAMES))
    return "1"  # any: asPercent's total as a number


class TargetMaker:
    """Random targets from the registry's declarations."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        registry = default_registry()
        self.functions = []
        for name in registry.names():
            function = registry.get(name)
            if function.name in EXCLUDED or name != function.name:
                continue
            self.functions.append(function)
        # mapSeries returns a list of lists: only reduceSeries takes it
        self.series_functions = [
            f for f in self.functions if f.params and f.params[0].takes_series and f.name != "mapSeries"
        ]
        self.graph_functions = [f for f in self.series_functions if f.group == "Graph"]
        self.known: set[str] = set()
        #: the epoch the case is moved to (absolute dates in arguments move with it)
        self.base = 0

    def series_arg(self, depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.25:
            if rng.random() < 0.1:
                return f"group({rng.choice(PATTERNS)},{rng.choice(PATTERNS)})"
            if rng.random() < 0.15:  # graph options set below, to see which functions keep them
                return self.call(rng.choice(self.graph_functions), 1)
            return rng.choice(PATTERNS)
        return self.call(self.rng.choice(self.series_functions), depth)

    def _flag_known(self, function: Any, parts: list[str]) -> None:
        name = function.name
        series_keywords = {p.name for p in function.params if p.takes_series}
        if any(part.split("=", 1)[0] in series_keywords for part in parts if "=" in part.split("(", 1)[0]):
            self.known.add("series-keyword")
        if name in ("asPercent", "setXFilesFactor"):
            self.known.add(name)
        if name == "delay" and parts[1:2] == ["0"]:
            self.known.add("delay-0")
        if name == "transformNull" and len(parts) > 2:
            self.known.add("transformNull-reference")
        if name == "verticalLine" and len(parts) < 2 or name == "verticalLine" and parts[1].startswith("color="):
            self.known.add("verticalLine-unlabelled")
        if name == "stacked":
            self.known.add("stacked-options")
        if name in ("areaBetween", "holtWintersConfidenceBands", "holtWintersConfidenceArea"):
            self.known.add("shared-tags")

    def call(self, function: Any, depth: int) -> str:
        rng = self.rng
        parts: list[str] = []
        keyword = False
        for param in function.params:
            if param.type is ParamType.seriesLists:  # reduceSeries
                node = rng.choice(["0", "1", "2", "-1"])
                parts.append(f"mapSeries({self.series_arg(depth - 1)},{node})")
                continue
            if param.takes_series:
                if not param.required and rng.random() < 0.6:
                    keyword = True
                    continue
                count = rng.choice([1, 1, 2, 3]) if param.multiple else 1
                args = [self.series_arg(depth - 1) for _ in range(count)]
                parts.extend(f"{param.name}={a}" if keyword else a for a in args)
                continue
            if not param.required and rng.random() < 0.45 and (function.name, param.name) not in ALWAYS_GIVEN:
                keyword = True
                continue
            count = rng.choice([1, 1, 2]) if param.multiple else 1
            for _ in range(count):
                maker = SPECIAL.get((function.name, param.name))
                value = maker(rng) if maker else _by_type(rng, param, self.base)
                if keyword and not param.multiple:
                    parts.append(f"{param.name}={value}")
                elif keyword:
                    break
                else:
                    parts.append(value)
        self._flag_known(function, parts)
        return f"{function.name}({','.join(parts)})"

    def target(self) -> str:
        depth = self.rng.choice([1, 1, 2, 2, 3])
        if self.rng.random() < 0.06:
            return self.call(self.rng.choice([f for f in self.functions if not (f.params and f.params[0].takes_series)]), 1)
        return self.call(self.rng.choice(self.series_functions), depth)


def random_case(rng: random.Random, maker: TargetMaker) -> Case:
    start, end = random_window(rng)
    maker.known = set()
    maker.base = rng.choice(BASES) if rng.random() < 0.2 else 0
    targets = (maker.target(),) if rng.random() < 0.9 else (maker.target(), maker.target())
    data = {path: (first + maker.base, step, values)
            for path, (first, step, values) in random_data(rng, end - start).items()}
    return Case(data, start + maker.base, end + maker.base, targets, frozenset(maker.known))


# --- comparing ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one case: ``kind`` is agree, differ, refused, graphite-failed or crash."""

    case: Case
    kind: str
    detail: list[str] = field(default_factory=list)


def run_case(case: Case) -> Outcome:
    targets = list(case.targets)
    try:
        ours = carbyne_evaluate(targets, case.start, case.end, case.data)
        refused = None
    except InputError as exc:
        ours, refused = [], str(exc)
    except Exception as exc:  # a crash is always a bug: bad input must be an InputError
        return Outcome(case, "crash", [f"{type(exc).__name__}: {exc}"])
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None):
            warnings.simplefilter("ignore")
            theirs = graphite_evaluate(targets, case.start, case.end, case.data)
    except Exception as exc:  # graphite-web fails in many ways; nothing to compare
        return Outcome(case, "graphite-failed", [f"{type(exc).__name__}: {exc}"])
    if refused is not None:
        return Outcome(case, "refused", [refused])
    strays = [type(s).__name__ for s in ours if not isinstance(s, Series)]
    if strays:
        return Outcome(case, "crash", [f"Carbyne returned {strays} among its series"])
    observed = [observe_carbyne(s) for s in ours], [observe_graphite(s) for s in theirs]
    problems = differences(*observed) or bit_differences(*observed)
    if problems and _explained(case, problems):
        return Outcome(case, "known", problems)
    return Outcome(case, "differ" if problems else "agree", problems)


def _field(problem: str) -> str:
    """The field a line of ``differences`` is about (``count`` for a different number of series)."""
    if not problem.startswith("#"):
        return "count"
    return problem.split(":", 1)[0].split(" ", 1)[1]


def _explained(case: Case, problems: list[str]) -> bool:
    """Whether the known differences of ``case``'s shapes may account for every problem."""
    fields = set().union(*(KNOWN[k][1] for k in case.known)) if case.known else set()
    return "*" in fields or all(_field(p) in fields for p in problems)


def cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    maker = TargetMaker(rng)
    return [random_case(rng, maker) for _ in range(count)]


def quiet_graphite() -> None:
    logging.disable(logging.CRITICAL)


# --- the test ---------------------------------------------------------------------------------

#: The default run: seeded, short enough for CI.
SEED = 20261202
COUNT = 1500


@pytest.mark.usefixtures("graphite_web")
def test_fuzzed_targets_agree_with_graphite() -> None:
    quiet_graphite()
    try:
        outcomes = [run_case(c) for c in cases(SEED, COUNT)]
    finally:  # later tests read the log (caplog)
        logging.disable(logging.NOTSET)
    kinds = collections.Counter(o.kind for o in outcomes)
    bad = [o for o in outcomes if o.kind in ("crash", "differ")]
    report = "\n".join(f"{o.kind} {list(o.case.targets)} {o.case.start}..{o.case.end}: {o.detail[:3]}" for o in bad[:10])
    assert not bad, f"{kinds}\n{report}"
    # the generator must mostly produce comparable targets, or the test proves little
    assert kinds["agree"] >= COUNT // 2, kinds


def assert_same_to_the_bit(target: str, data: Data) -> None:
    """``target`` over ``data`` (0..1200) agrees with graphite-web, every float printed the same."""
    ours = [observe_carbyne(s) for s in carbyne_evaluate(target, 0, 1200, data)]
    theirs = [observe_graphite(s) for s in graphite_evaluate(target, 0, 1200, data)]
    problems = differences(ours, theirs) or bit_differences(ours, theirs)
    assert not problems, problems


#: Values whose exp/log/sin numpy's SIMD routines round differently from Python's math (found by
#: tests/render/test_fuzz_http.py's byte comparison).
MATH_DATA = {"a.f.g": (0, 60, [None, -92.29, 39.24, -71.21, -7.49, 34.33, 58.59, -9.36, -0.35, 2.0, 3.0,
                               6.0, 10.0, 21.92, 0.75, 1.5, 8.25, 13.0, -3.5, 17.0, 22.0])}
MATH_TARGETS = ["exp(a.f.g)", "sigmoid(a.f.g)", "log(a.f.g,3)", "log(a.f.g)", "logit(scale(a.f.g,0.01))",
                "sinFunction('s',3,77)", "pow(log(a.f.g,10),10)", "pow(a.f.g,2.5)", "powSeries(a.f.g,scale(a.f.g,0.1))"]


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("target", MATH_TARGETS)
def test_math_functions_give_graphites_floats_to_the_bit(target: str) -> None:
    assert_same_to_the_bit(target, MATH_DATA)


#: Python's sum starts from 0: graphite's sums and differences of -0.0 are 0.0; its min and max keep
#: the first of -0.0 and 0.0 (json prints the sign).
ZERO_DATA = {"a.b.c": (0, 60, [-0.0, -0.0, -0.0, None, 1.0, -0.0, 0.0]),
             "a.x.c": (0, 60, [-0.0, -0.0, None, -0.0, None, 0.0, -0.0]),
             # long enough for numpy's vectorised fmax, which returns 0.0 for (-0.0, 0.0)
             "a.n.m": (0, 60, [1.0] * 4 + [-0.0, 0.0, -0.0, 0.0, 0.0, -0.0] + [2.0] * 11),
             "a.n.p": (0, 60, [0.0, -0.0] * 11)}
ZERO_TARGETS = ["maxSeries(a.*.c)", "minSeries(a.*.c)", "rangeOfSeries(a.*.c)", "maxSeries(a.n.*)",
                "minSeries(a.n.p,a.n.m)", "rangeOfSeries(a.n.*)", "aggregate(a.n.*,'max')",
                "movingMax(a.n.*,3)", "movingMin(a.n.*,3)", "integral(a.n.*)", "offsetToZero(a.n.*)",
                "minMax(a.n.*)", "sumSeries(a.*.c)", "sumSeries(a.b.c)", "diffSeries(a.*.c)", "diffSeriesLists(a.b.c,a.x.c)",
                "averageSeries(a.b.c)", "aggregate(a.*.c,'avg_zero')", "aggregateLine(a.b.c,'sum')"]


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("target", ZERO_TARGETS)
def test_sums_of_negative_zero_give_graphites_zero(target: str) -> None:
    assert_same_to_the_bit(target, ZERO_DATA)


#: -0.0 and 0.0 mixed, steps 60 and 120: sorts keep their order, consolidation and seeds add from 0,
#: ints stay ints in legends.
MIXED_ZERO_DATA = {"a.b.c": (0, 60, [None, -0.0, -0.0, 0.0, None, 1.0, -0.0] * 3),
                   "a.x.c": (0, 60, [-0.0, None, 0.0, -0.0, 0.0, None, 2.0] * 3),
                   "a.y.d": (0, 120, [-0.0, 0.0, None, -0.0] * 3)}
MIXED_ZERO_TARGETS = [
    "exponentialMovingAverage(a.*.c,1)", "nPercentile(a.y.d,2)", "percentileOfSeries(group(a.*.c,a.y.d),5)",
    "maxSeries(a.x.c,a.y.d)", "minSeries(a.y.d,a.b.c)", "legendValue(transformNull(a.b.c),'sum','median','max')",
    "add(legendValue(isNonNull(a.*.c),'median'),2.5)", "movingMedian(a.*.c,3)",
    "cumulative(exponentialMovingAverage(a.*.c,2))", "summarize(a.*.c,'3min','max')",
    "sumSeries(consolidateBy(group(a.x.c,a.y.d),'max'))",
]


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("target", MIXED_ZERO_TARGETS)
def test_mixed_zeros_and_ints_as_graphite_prints_them(target: str) -> None:
    assert_same_to_the_bit(target, MIXED_ZERO_DATA)


# --- the big run --------------------------------------------------------------------------------


def _signature(outcome: Outcome) -> str:
    """A rough class for a difference: the outermost function and the first differing field."""
    target = outcome.case.targets[0]
    outer = target.split("(", 1)[0]
    first = outcome.detail[0] if outcome.detail else ""
    field_name = first.split(":", 1)[0].split(" ", 1)[-1] if first.startswith("#") else first[:40]
    return f"{outcome.kind} {outer} {field_name}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", type=int, default=2, help="examples printed per class")
    parser.add_argument("--kinds", default="crash,differ,refused")
    args = parser.parse_args(argv)
    import resource

    # a runaway graphite-web call must fail here, not take the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from oracle import ensure_graphite

    ensure_graphite()
    quiet_graphite()
    classes: dict[str, list[Outcome]] = collections.defaultdict(list)
    kinds: collections.Counter[str] = collections.Counter()
    for case in cases(args.seed, args.count):
        outcome = run_case(case)
        kinds[outcome.kind] += 1
        if outcome.kind in args.kinds.split(","):
            classes[_signature(outcome)].append(outcome)
    print(dict(kinds))
    for signature, members in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"\n== {signature} ({len(members)})")
        for outcome in sorted(members, key=lambda o: len(" ".join(o.case.targets)))[: args.show]:
            print(f"  targets {list(outcome.case.targets)} window {outcome.case.start} {outcome.case.end}")
            print(f"  data {outcome.case.data}")
            for line in outcome.detail[:3]:
                print("    " + line[:600])


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    main(sys.argv[1:])
