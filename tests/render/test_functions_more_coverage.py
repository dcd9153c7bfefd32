"""Every function added after the core list has golden cases (tests/render/cases/more_*.test).

Each must be evaluated over no series (``nothing.*``), a glob with gaps
(``a.*.c``) and series of mixed steps (``a.y.d`` next to ``a.*.c``/``a.b.c``);
the cases themselves run through Carbyne and graphite-web in test_cases.py.
"""

from __future__ import annotations

import pathlib

from test_cases import parse_case_file
from test_registry import CORE_FUNCTIONS

from render import ast
from render.functions import default_registry
from render.grammar import parse

CASES = pathlib.Path(__file__).parent / "cases"

#: Written by another module (render/functions/special.py, events), not covered here.
ELSEWHERE = {
    "events", "verticalLine", "seriesByTag", "groupByTags", "aliasByTags", "applyByNode",
    "useSeriesAbove", "aliasQuery", "eventsOverlay",
}
#: No series argument, or random output (checked in test_functions_more_calls.py).
SERIES_FREE = {"identity", "time", "timeFunction", "sin", "sinFunction", "randomWalk", "randomWalkFunction"}
NOT_IN_CASES = {"randomWalk", "randomWalkFunction"}


def added_functions() -> set[str]:
    return set(default_registry().names()) - CORE_FUNCTIONS - ELSEWHERE


def _calls(node: ast.Arg, found: dict[str, set[str]]) -> None:
    if not isinstance(node, ast.Call):
        return
    target = str(node)
    kinds = found.setdefault(node.name, set())
    kinds.add("called")
    if "nothing.*" in target:
        kinds.add("no series")
    if "*" in target:
        kinds.add("glob")
    if "a.y.d" in target and ("a.*.c" in target or "a.b.c" in target):
        kinds.add("mixed steps")
    for arg in (*node.args, *(v for _, v in node.kwargs)):
        _calls(arg, found)


def test_the_added_functions_are_graphites_remaining_ones() -> None:
    assert len(added_functions()) == 70


def test_every_added_function_has_cases_with_no_series_a_glob_and_mixed_steps() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(CASES.glob("more_*.test")):
        for case in parse_case_file(path):
            _calls(parse(case.target), found)
    wanted = {"called", "no series", "glob", "mixed steps"}
    missing = {}
    for name in sorted(added_functions() - NOT_IN_CASES):
        need = {"called"} if name in SERIES_FREE else wanted
        if need - found.get(name, set()):
            missing[name] = sorted(need - found.get(name, set()))
    assert missing == {}
