"""The golden corpus: tests/render/cases/*.test, run through Carbyne and graphite-web 1.1.10.

A case file::

    # comment
    load a.b.c 0 60 1 None 3          path, start, step, values (None = missing)
    at 0 600                           request from/until [now] for the evals below
    eval sumSeries(a.*.c)              a target
      series "sumSeries(a.*.c)" 60 660 60
        tags {"name": "sumSeries(a.*.c)", "aggregatedBy": "sum"}
        values 1.0 None 3.0
      error <text>                     (instead of series) Carbyne answers 400 with <text>
      graphite-differs <reason>        graphite-web's answer differs (a graphite bug)

An eval with no ``series`` lines expects no series. Every eval runs in both
engines: Carbyne must give the expected output, and graphite-web must give
the same (names, time, tags, values, path expressions, consolidation) unless
the case says ``graphite-differs``, in which case graphite must in fact
differ (or fail). ``python tests/render/test_cases.py --update`` rewrites the
expected output from Carbyne's current answers (review the diff: graphite's
agreement is still checked by the tests).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys

import pytest
from oracle import (
    carbyne_evaluate,
    differences,
    graphite_evaluate,
    observe_carbyne,
    observe_graphite,
)

from render.functions import InputError
from render.series import Series

CASES = pathlib.Path(__file__).parent / "cases"


@dataclasses.dataclass
class Expected:
    name: str
    start: int
    end: int
    step: int
    tags: dict[str, str]
    values: list[float | None]


@dataclasses.dataclass
class Eval:
    file: pathlib.Path
    line: int
    target: str
    start: int
    end: int
    now: int
    data: dict[str, tuple[int, int, list[float | None]]]
    series: list[Expected] = dataclasses.field(default_factory=list)
    error: str | None = None
    graphite_differs: str | None = None

    @property
    def id(self) -> str:
        return f"{self.file.stem}:{self.line}:{self.target}"


def _number(text: str) -> float | None:
    return None if text == "None" else float(text)


def _format_number(value: float | None) -> str:
    return "None" if value is None or math.isnan(value) else repr(float(value))


def parse_case_file(path: pathlib.Path) -> list[Eval]:
    """Every eval in one case file, with the data loaded anywhere in the file."""
    data: dict[str, tuple[int, int, list[float | None]]] = {}
    evals: list[Eval] = []
    window = (0, 600, 600)
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "load":
            name, start, step, *values = rest.split()
            data[name] = (int(start), int(step), [_number(v) for v in values])
        elif word == "at":
            parts = [int(p) for p in rest.split()]
            window = (parts[0], parts[1], parts[2] if len(parts) > 2 else parts[1])
        elif word == "eval":
            evals.append(Eval(path, number, rest, *window, data))
        elif word == "series":
            name, offset = json.JSONDecoder().raw_decode(rest)
            start, end, step = (int(p) for p in rest[offset:].split())
            evals[-1].series.append(Expected(name, start, end, step, {}, []))
        elif word == "tags":
            evals[-1].series[-1].tags = json.loads(rest)
        elif word == "values":
            evals[-1].series[-1].values = [_number(v) for v in rest.split()]
        elif word == "error":
            evals[-1].error = rest
        elif word == "graphite-differs":
            evals[-1].graphite_differs = rest
        else:
            raise ValueError(f"cannot parse case line={raw!r}: {path}:{number}")
    return evals


def all_evals() -> list[Eval]:
    return [e for path in sorted(CASES.glob("*.test")) for e in parse_case_file(path)]


def run_carbyne(case: Eval) -> list[Series]:
    return carbyne_evaluate(case.target, case.start, case.end, case.data, now=case.now)


def run_graphite(case: Eval) -> list:
    return graphite_evaluate(case.target, case.start, case.end, case.data, now=case.now)


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _matches(series: Series, expected: Expected) -> bool:
    values = series.to_list()
    return (
        (series.name, series.start, series.end, series.step, dict(series.tags))
        == (expected.name, expected.start, expected.end, expected.step, expected.tags)
        and len(values) == len(expected.values)
        and all(_close(a, b) for a, b in zip(values, expected.values, strict=True))
    )


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("case", all_evals(), ids=lambda c: c.id)
def test_case(case: Eval) -> None:
    if case.error is not None:
        with pytest.raises(InputError) as error:
            run_carbyne(case)
        assert case.error in str(error.value)
    else:
        ours = run_carbyne(case)
        assert len(ours) == len(case.series), [s.name for s in ours]
        for series, expected in zip(ours, case.series, strict=True):
            assert _matches(series, expected), f"{series!r} {dict(series.tags)} != {expected}"
    try:
        theirs = run_graphite(case)
    except Exception as exc:  # graphite-web fails in many ways (TypeError, IndexError, ...)
        assert case.error is not None or case.graphite_differs, f"graphite-web failed: {exc!r}"
        return
    if case.error is not None:
        assert case.graphite_differs, "graphite-web accepted what Carbyne refuses"
        return
    problems = differences([observe_carbyne(s) for s in ours], [observe_graphite(s) for s in theirs])
    if case.graphite_differs:
        assert problems, "marked graphite-differs but graphite-web agrees"
    else:
        assert not problems, "\n".join(problems)


#: Core functions that take no series argument.
SERIES_FREE = {"constantLine", "threshold"}


def test_every_core_function_has_cases_with_no_series_a_glob_and_mixed_steps() -> None:
    from test_registry import CORE_FUNCTIONS

    from render import ast
    from render.grammar import parse

    seen: dict[str, set[str]] = {name: set() for name in CORE_FUNCTIONS}
    called: set[str] = set()

    def visit(node: ast.Arg) -> None:
        if not isinstance(node, ast.Call):
            return
        called.add(node.name)
        target = str(node)
        if node.name in seen:
            if "nothing.*" in target:
                seen[node.name].add("no series")
            if "*" in target:
                seen[node.name].add("glob")
            if "a.y.d" in target and "a.*.c" in target:
                seen[node.name].add("mixed steps")
        for arg in (*node.args, *(v for _, v in node.kwargs)):
            visit(arg)

    for case in all_evals():
        visit(parse(case.target))
    assert sorted(CORE_FUNCTIONS - called) == []
    missing = {
        name: sorted({"no series", "glob", "mixed steps"} - kinds)
        for name, kinds in seen.items()
        if name not in SERIES_FREE and len(kinds) < 3
    }
    assert missing == {}


def _expected_lines(series: list[Series]) -> list[str]:
    lines = []
    for s in series:
        lines.append(f"  series {json.dumps(s.name)} {s.start} {s.end} {s.step}")
        lines.append(f"    tags {json.dumps(dict(s.tags))}")
        lines.append("    values " + " ".join(_format_number(v) for v in s.values.tolist()))
    return lines


def update_case_file(path: pathlib.Path) -> None:
    """Rewrite the expected output of every eval in ``path`` from Carbyne's answers."""
    evals = {e.line: e for e in parse_case_file(path)}
    out: list[str] = []
    pending: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        word = raw.strip().partition(" ")[0]
        if word in ("series", "tags", "values"):
            continue
        if word not in ("error", "graphite-differs"):
            out.extend(pending)
            pending = []
        out.append(raw)
        if number in evals and evals[number].error is None:
            pending = _expected_lines(run_carbyne(evals[number]))
    out.extend(pending)
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    for case_file in sorted(CASES.glob("*.test")):
        update_case_file(case_file)
