"""Frozen syntax tree of a Graphite target, printed back canonically.

`render.grammar.parse` builds these nodes; `str(node)` prints a target that
parses back to an equal tree (`parse(str(tree)) == tree`). Pipes are
desugared: `a.b|f()|g(1)` is `Call("g", (Call("f", (PathExpr("a.b"),)), Number(1)))`.
`template(...)` stays a `Call` named "template" until
`render.grammar.apply_template` expands it.

graphite-web's grammar cannot express every tree (a string holding both
quote characters, a path spelt like a literal where only a literal can
stand, ...). Printing such a tree raises `ValueError`; every tree `parse`
returns prints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# Characters graphite-web's pathExpression treats as syntax; inside a path
# they need a backslash (`a\(b\)` is the path text "a(b)").
PATH_SYMBOLS = "(){},.'\"\\|"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PRINTABLE_ASCII = frozenset(chr(c) for c in range(33, 127))
_PATH_VERBATIM = re.compile(
    r"""(?:(?:[^(){},.'"\\|\s]++|\{[^(){},.'"\\|\s]++(?:,[^(){},.'"\\|\s]++)*+\})++)"""
    r"""(?:\.(?:(?:[^(){},.'"\\|\s]++|\{[^(){},.'"\\|\s]++(?:,[^(){},.'"\\|\s]++)*+\})++))*+\Z""",
    re.ASCII,
)
_KEYWORD_LIKE = re.compile(r"(?:true|false|none|inf)(?![A-Za-z0-9_$])", re.IGNORECASE | re.ASCII)
_NUMBER_LIKE = re.compile(r"-?\d+(?:\.\d+)?+(?:[eE]-?\d+)?\Z")
_KWARG_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_STRING_BODY = {
    q: re.compile(rf"(?:[^{q}\n\r\\]|{q}{q}|\\(?:[^x]|x[0-9a-fA-F]+))*+\Z")
    for q in ("'", '"')
}


@dataclass(frozen=True, slots=True)
class PathExpr:
    """A metric name or glob pattern, text as graphite sees it (escapes removed)."""

    text: str

    def __post_init__(self) -> None:
        if not self.text or not set(self.text) <= _PRINTABLE_ASCII:
            raise ValueError(f"cannot build path={self.text!r}: needs 1+ printable ASCII characters")

    def __str__(self) -> str:
        return _format(self, _TOP)


@dataclass(frozen=True, slots=True)
class String:
    """A quoted string; `value` is the text between the quotes, backslashes kept."""

    value: str

    def __str__(self) -> str:
        for quote in ("'", '"'):
            if _STRING_BODY[quote].match(self.value):
                return f"{quote}{self.value}{quote}"
        raise ValueError(f"cannot print string={self.value!r}: no graphite quoting expresses it")


@dataclass(frozen=True, slots=True, eq=False)
class Number:
    """An int or float literal; `1` and `1.0` differ, as they do in graphite."""

    value: int | float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise ValueError(f"cannot build number={self.value!r}: needs an int or float")
        if isinstance(self.value, float) and math.isnan(self.value):
            raise ValueError("cannot build number=nan: graphite has no NaN literal")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Number):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value), self.value))

    def __str__(self) -> str:
        value = self.value
        if isinstance(value, int):
            return str(value)
        if math.isinf(value):
            # Overflowing scientific numbers: graphite reads "-inf" as a path and
            # refuses the keyword "inf" as a template default.
            return "1e999" if value > 0 else "-1e999"
        return repr(value).replace("e+", "e")


@dataclass(frozen=True, slots=True)
class Bool:
    """`true` / `false` (any case)."""

    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True, slots=True)
class NoneLit:
    """`none` (any case): graphite passes Python's None."""

    def __str__(self) -> str:
        return "None"


Scalar = String | Number | Bool | NoneLit


@dataclass(frozen=True, slots=True)
class Call:
    """A function call. `source` is the call's own text in the target
    (graphite's `raw`, what `seriesByTag` hands the tag database); it takes
    no part in equality."""

    name: str
    args: tuple[Arg, ...] = ()
    kwargs: tuple[tuple[str, Arg], ...] = ()
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"cannot build call={self.name!r}: not a function name")
        for key, _ in self.kwargs:
            if not _IDENTIFIER.match(key):
                raise ValueError(f"cannot build call={self.name}: bad keyword {key!r}")
        if len({key for key, _ in self.kwargs}) != len(self.kwargs):
            raise ValueError(f"cannot build call={self.name}: repeated keyword argument")
        if self.kwargs and not self.args:
            raise ValueError(
                f"cannot build call={self.name}: graphite needs a positional argument "
                "before keyword arguments"
            )
        if self.name == "template":
            _check_template(self)

    def __str__(self) -> str:
        return _format(self, _TOP)


Expr = PathExpr | Call
Arg = PathExpr | Call | String | Number | Bool | NoneLit


def _check_template(call: Call) -> None:
    """A template is `template(expr[, defaults])` with literal defaults,
    either all positional or all keyword (anything else is an error in graphite)."""
    head, defaults = (call.args[0], call.args[1:]) if call.args else (None, ())
    if not isinstance(head, PathExpr | Call) or (isinstance(head, Call) and head.name == "template"):
        raise ValueError("cannot build call=template: first argument must be a path or a call")
    values = list(defaults) + [value for _, value in call.kwargs]
    if (defaults and call.kwargs) or not all(isinstance(v, String | Number) for v in values):
        raise ValueError(
            "cannot build call=template: defaults must be strings or numbers, "
            "all positional or all keyword"
        )


# Printing contexts: what graphite's grammar tries at the position the text lands on.
_TOP = "top"  # expression: template | call | path, pipes allowed
_ARG = "arg"  # function argument: literals are tried before expressions
_TEMPLATE_HEAD = "template head"  # call | path, no pipes


def _format(node: Arg, context: str) -> str:
    if isinstance(node, PathExpr):
        return _format_path(node.text, context)
    if isinstance(node, Call):
        return _format_call(node, context)
    return str(node)


def _format_path(text: str, context: str) -> str:
    printed = _escape_path(text)
    if context == _ARG:
        if _KEYWORD_LIKE.match(printed) or _NUMBER_LIKE.match(printed):
            raise ValueError(f"cannot print path={text}: graphite reads it as a literal here")
        if _KWARG_LIKE.match(printed):
            cut = printed.index("=")
            printed = printed[:cut] + "\\" + printed[cut:]
    return printed


def _escape_path(text: str) -> str:
    """Path text as a pathExpression: verbatim when that reads back the same,
    else with every symbol backslashed."""
    if _PATH_VERBATIM.match(text):
        return text
    escape_dots = "" in text.split(".")
    return "".join(
        "\\" + ch if ch in PATH_SYMBOLS and (ch != "." or escape_dots) else ch for ch in text
    )


def _needs_pipe(call: Call) -> bool:
    """True when the first argument cannot be written inside the parentheses
    and must come in front of a pipe instead (`1|f()`: a path named "1")."""
    if call.name == "template" or not call.args:
        return False
    first = call.args[0]
    if isinstance(first, PathExpr):
        printed = _escape_path(first.text)
        return bool(_KEYWORD_LIKE.match(printed) or _NUMBER_LIKE.match(printed))
    return isinstance(first, Call) and _needs_pipe(first)


def _format_call(call: Call, context: str) -> str:
    if call.name == "template":
        head = _format(call.args[0], _TEMPLATE_HEAD)
        return _call_text("template", [head] + _format_rest(call.args[1:], call.kwargs))
    if not _needs_pipe(call):
        return _call_text(call.name, _format_rest(call.args, call.kwargs))
    if context == _TEMPLATE_HEAD:
        raise ValueError(f"cannot print call={call.name} as a template head: it needs a pipe")
    rest = _format_rest(call.args[1:], call.kwargs)
    if len(call.args) == 1 and call.kwargs:
        raise ValueError(f"cannot print call={call.name}: a piped call needs a positional argument")
    first = call.args[0]
    if isinstance(first, Call):
        head = _format_call(first, context)
    else:
        head = _escape_path(first.text)
        if context == _ARG and _KEYWORD_LIKE.match(head):
            raise ValueError(f"cannot print path={first.text}: graphite reads it as a literal here")
    return head + "|" + _call_text(call.name, rest)


def _format_rest(args: tuple[Arg, ...], kwargs: tuple[tuple[str, Arg], ...]) -> list[str]:
    return [_format(arg, _ARG) for arg in args] + [f"{k}={_format(v, _ARG)}" for k, v in kwargs]


def _call_text(name: str, parts: list[str]) -> str:
    return f"{name}({','.join(parts)})"
