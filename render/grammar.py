"""Graphite's target grammar: a hand-written recursive-descent parser.

It accepts exactly the targets graphite-web 1.1.10's pyparsing grammar
(`graphite/render/grammar_unsafe.py`) parses *completely*, and builds the
same structure as `render.ast` nodes. It makes the same ordered choices
(a PEG, like pyparsing): inside argument lists keywords and numbers are
tried before paths (`f(true)` is a Bool, `f(1.a)` a path, `f(1|g())` pipes
the path "1"), keyword arguments need a positional one first, paths allow
every printable ASCII character except `(){},.'"\\|` (which a backslash
escapes), and strings keep their backslashes.

Deliberate differences, all errors where graphite-web quietly did
something else: trailing text is refused (graphite parses a prefix, so
`sumSeries(a.b` silently fetched the path "sumSeries"); a `template(...)`
that is not a valid template is refused here rather than at evaluation;
a repeated keyword argument is refused (graphite kept the last one).

No global state and no lock: each call builds its own small parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from render.ast import PATH_SYMBOLS, Arg, Bool, Call, Expr, NoneLit, Number, PathExpr, String

_WS = re.compile(r"[ \t\r\n]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC_CHAR = "".join(
    re.escape(chr(c)) for c in range(33, 127) if chr(c) not in PATH_SYMBOLS
)
_ESCAPABLE = re.escape(PATH_SYMBOLS + "=")
_PARTIAL = rf"(?:[{_METRIC_CHAR}]|\\[{_ESCAPABLE}])++"
_ELEMENT = rf"(?:{_PARTIAL}|\{{{_PARTIAL}(?:,{_PARTIAL})*+\}})++"
_PATH = re.compile(rf"{_ELEMENT}(?:\.{_ELEMENT})*+")
_PATH_CONTINUES = frozenset(PATH_SYMBOLS.replace("(", "")) | {
    chr(c) for c in range(33, 127) if chr(c) not in PATH_SYMBOLS
}
_UNESCAPE = re.compile(r"\\(.)")
# A number only counts when ",", ")" or the end follows (after whitespace).
_AFTER_NUMBER = r"(?=[ \t\r\n]*(?:[,)]|\Z))"
_NUMBER = re.compile(
    rf"(?:(-?\d++(?:\.\d++)?+[eE]-?\d++){_AFTER_NUMBER}"
    rf"|(-?\d++\.\d++){_AFTER_NUMBER}"
    rf"|(-?\d++){_AFTER_NUMBER})"
)
_KEYWORD = re.compile(r"(?:(true)|(false)|(none)|(inf))(?![A-Za-z0-9_$])", re.I | re.ASCII)
_STRING = re.compile(
    r"""'(?:[^'\n\r\\]|''|\\(?:[^x]|x[0-9a-fA-F]+))*+'"""
    r'''|"(?:[^"\n\r\\]|""|\\(?:[^x]|x[0-9a-fA-F]+))*+"'''
)
_TEMPLATE_NUMERIC = re.compile(r"^-?[\d.]+$")
# Hostile input must not exhaust the stack; graphite-web itself fails
# (RecursionError, HTTP 500) near 40 levels.
MAX_NESTING = 100


class GrammarError(ValueError):
    """A target graphite's grammar does not parse; `column` is 1-based."""

    def __init__(self, target: str, column: int, reason: str) -> None:
        super().__init__(f"cannot parse target={target}: {reason}")
        self.target = target
        self.column = column
        self.reason = reason


class TemplateError(ValueError):
    """A `template[name]` value that cannot stand where graphite substitutes it."""


class _Refused(Exception):
    """Raised through the descent for text graphite's grammar accepts but its
    evaluator would refuse or silently reinterpret."""

    def __init__(self, pos: int, reason: str) -> None:
        super().__init__(pos, reason)
        self.pos = pos
        self.reason = reason


def parse(target: str) -> Expr:
    """Parse one `target=` expression into its syntax tree.

    Tabs first expand to 8-column stops, as pyparsing does (so a tab inside
    a string literal becomes spaces, and error columns count expanded tabs).
    """
    return _Parser(target).parse()


class _Parser:
    """One parse of one target; keeps the furthest failure for the error."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.text = target.expandtabs() if "\t" in target else target
        self.fail_pos = -1
        self.expected: list[str] = []
        self.depth = 0

    # -- entry -----------------------------------------------------------

    def parse(self) -> Expr:
        text = self.text
        start = _WS.match(text).end()
        if start == len(text):
            raise GrammarError(self.target, start + 1, "empty target")
        try:
            result = self.expression(start)
        except _Refused as refused:
            reason = f"{refused.reason} at column {refused.pos + 1}"
            raise GrammarError(self.target, refused.pos + 1, reason) from None
        if result is not None:
            node, end = result
            end = _WS.match(text, end).end()
            if end == len(text):
                return node
            self.fail(end, "'|' or the end of the target")
        raise self.error()

    def fail(self, pos: int, what: str) -> None:
        if pos > self.fail_pos:
            self.fail_pos, self.expected = pos, [what]
        elif pos == self.fail_pos and what not in self.expected:
            self.expected.append(what)

    def error(self) -> GrammarError:
        pos = self.fail_pos
        found = "end of target" if pos >= len(self.text) else repr(self.text[pos])
        expected = " or ".join(self.expected)
        return GrammarError(
            self.target, pos + 1, f"unexpected {found} at column {pos + 1}, expected {expected}"
        )

    # -- expressions -----------------------------------------------------

    def expression(self, pos: int) -> tuple[Expr, int] | None:
        """(template | call | path) { '|' call }"""
        text = self.text
        if self.depth >= MAX_NESTING:
            raise _Refused(pos, f"expressions nested deeper than {MAX_NESTING} levels")
        self.depth += 1
        try:
            result = self.template(pos) or self.call(pos) or self.path(pos)
        finally:
            self.depth -= 1
        if result is None:
            self.fail(pos, "a metric path or a function call")
            return None
        node, end = result
        while True:
            bar = _WS.match(text, end).end()
            if not text.startswith("|", bar):
                return node, end
            piped = self.call(_WS.match(text, bar + 1).end())
            if piped is None:
                self.fail(_WS.match(text, bar + 1).end(), "a function call after '|'")
                return node, end
            call, end = piped
            node = Call(call.name, (node, *call.args), call.kwargs, source=call.source)

    def call(self, pos: int) -> tuple[Call, int] | None:
        """name '(' [ args [ ',' kwargs ] ] ')' -- a keyword argument needs a positional one first."""
        text = self.text
        name_match = _IDENT.match(text, pos)
        if name_match is None:
            return None
        open_at = _WS.match(text, name_match.end()).end()
        if not text.startswith("(", open_at):
            if open_at == len(text) or text[open_at] not in _PATH_CONTINUES:
                self.fail(open_at, "'('")
            return None
        args: list[Arg] = []
        kwargs: list[tuple[str, Arg]] = []
        end = open_at + 1
        first = self.positional(end)
        if first is not None:
            args.append(first[0])
            end = first[1]
            end = self.more_positionals(end, args)
            comma = _WS.match(text, end).end()
            if text.startswith(",", comma):
                end = self.keywords(comma + 1, kwargs, end)
        elif self.keyword(end) is not None:
            self.fail(_WS.match(text, end).end(), "a positional argument before keyword arguments")
        close_at = _WS.match(text, end).end()
        if not text.startswith(")", close_at):
            self.fail(close_at, "',' or ')'")
            return None
        name = name_match.group()
        if name == "template":
            raise _Refused(
                pos,
                "invalid template(): it takes a path or call, then string/numeric "
                "defaults, all positional or all keyword,",
            )
        if len({key for key, _ in kwargs}) != len(kwargs):
            raise _Refused(pos, f"repeated keyword argument in {name}()")
        source = text[pos : close_at + 1]
        return Call(name, tuple(args), tuple(kwargs), source=source), close_at + 1

    def more_positionals(self, end: int, args: list[Arg]) -> int:
        text = self.text
        while True:
            comma = _WS.match(text, end).end()
            if not text.startswith(",", comma):
                return end
            following = self.positional(comma + 1)
            if following is None:
                return end
            args.append(following[0])
            end = following[1]

    def keywords(self, pos: int, kwargs: list[tuple[str, Arg]], end_before: int) -> int:
        """kwarg { ',' kwarg }; on no match at all the comma stays unconsumed."""
        text = self.text
        found = self.keyword(pos)
        if found is None:
            return end_before
        while found is not None:
            key, value, end = found
            kwargs.append((key, value))
            comma = _WS.match(text, end).end()
            if not text.startswith(",", comma):
                return end
            found = self.keyword(comma + 1)
        return end

    def positional(self, pos: int) -> tuple[Arg, int] | None:
        if self.keyword(pos) is not None:
            return None
        return self.arg(pos)

    def keyword(self, pos: int) -> tuple[str, Arg, int] | None:
        text = self.text
        pos = _WS.match(text, pos).end()
        name_match = _IDENT.match(text, pos)
        if name_match is None:
            return None
        equals = _WS.match(text, name_match.end()).end()
        if not text.startswith("=", equals):
            return None
        value = self.arg(equals + 1)
        if value is None:
            return None
        return name_match.group(), value[0], value[1]

    def arg(self, pos: int) -> tuple[Arg, int] | None:
        """boolean | number | none | string | inf | expression, in that order."""
        text = self.text
        pos = _WS.match(text, pos).end()
        scalar = self.scalar(pos)
        if scalar is not None:
            return scalar
        keyword = _KEYWORD.match(text, pos)
        if keyword is not None:
            if keyword.group(1):
                return Bool(True), keyword.end()
            if keyword.group(2):
                return Bool(False), keyword.end()
            if keyword.group(3):
                return NoneLit(), keyword.end()
            return Number(float("inf")), keyword.end()
        return self.expression(pos)

    def scalar(self, pos: int) -> tuple[Number | String, int] | None:
        """number | string: the literals a template default may be."""
        text = self.text
        number = _NUMBER.match(text, pos)
        if number is not None:
            scientific, decimal, integer = number.groups()
            value = int(integer) if integer is not None else float(scientific or decimal)
            return Number(value), number.end()
        string = _STRING.match(text, pos)
        if string is not None:
            return String(string.group()[1:-1]), string.end()
        return None

    def path(self, pos: int) -> tuple[PathExpr, int] | None:
        found = _PATH.match(self.text, pos)
        if found is None:
            return None
        raw = found.group()
        if self.text.startswith(".", found.end()):
            self.fail(found.end() + 1, "a path node after '.'")
        return PathExpr(_UNESCAPE.sub(r"\1", raw) if "\\" in raw else raw), found.end()

    # -- template --------------------------------------------------------

    def template(self, pos: int) -> tuple[Call, int] | None:
        """'template' '(' (call | path) [ ',' (litargs | litkwargs) ] ')'"""
        text = self.text
        if not text.startswith("template", pos):
            return None
        open_at = _WS.match(text, pos + 8).end()
        if not text.startswith("(", open_at):
            return None
        head_at = _WS.match(text, open_at + 1).end()
        head = self.call(head_at) or self.path(head_at)
        if head is None:
            return None
        node, end = head
        defaults: list[Arg] = []
        named: list[tuple[str, Arg]] = []
        comma = _WS.match(text, end).end()
        if text.startswith(",", comma):
            end = self.template_defaults(comma + 1, defaults, named) or end
        close_at = _WS.match(text, end).end()
        if not text.startswith(")", close_at):
            self.fail(close_at, "',' or ')'")
            return None
        if len({key for key, _ in named}) != len(named):
            raise _Refused(pos, "repeated keyword argument in template()")
        source = text[pos : close_at + 1]
        return Call("template", (node, *defaults), tuple(named), source=source), close_at + 1

    def template_defaults(
        self, pos: int, defaults: list[Arg], named: list[tuple[str, Arg]]
    ) -> int | None:
        """litargs | litkwargs; returns the end, or None when neither matches."""
        text = self.text
        end = None
        at = pos
        while self.literal_keyword(at) is None:
            value = self.scalar(_WS.match(text, at).end())
            if value is None:
                break
            defaults.append(value[0])
            end = value[1]
            comma = _WS.match(text, end).end()
            if not text.startswith(",", comma):
                return end
            at = comma + 1
        if end is not None:
            return end
        at = pos
        while (found := self.literal_keyword(at)) is not None:
            named.append((found[0], found[1]))
            end = found[2]
            comma = _WS.match(text, end).end()
            if not text.startswith(",", comma):
                break
            at = comma + 1
        return end

    def literal_keyword(self, pos: int) -> tuple[str, Arg, int] | None:
        text = self.text
        pos = _WS.match(text, pos).end()
        name_match = _IDENT.match(text, pos)
        if name_match is None:
            return None
        equals = _WS.match(text, name_match.end()).end()
        if not text.startswith("=", equals):
            return None
        value = self.scalar(_WS.match(text, equals + 1).end())
        if value is None:
            return None
        return name_match.group(), value[0], value[1]


# -- template() expansion ---------------------------------------------------


def apply_template(node: Expr, params: Mapping[str, str] | None = None) -> Expr:
    """Expand every `template(...)` the way graphite-web's evaluator does.

    Each template's variables are its defaults (`$1`, `$2`... for positional
    ones) overridden by the request's `template[name]=value` params. Inside
    the template's expression `$name` is replaced textually in paths; a path
    that is exactly `$name` becomes the value itself (a number when it looks
    numeric). Strings are never substituted. An inner template uses only its
    own variables. A target that expands to a bare value is an error (graphite
    fails on it with a 500).
    """
    expanded = _expand(node, None, params or {})
    if not isinstance(expanded, PathExpr | Call):
        raise TemplateError(f"cannot expand target={node}: it becomes the value {expanded}")
    return expanded


def _expand(node: Arg, variables: dict[str, object] | None, params: Mapping[str, str]) -> Arg:
    if isinstance(node, Call):
        if node.name == "template":
            own = _template_variables(node, params)
            return _expand(node.args[0], own, params)
        args = tuple(_expand(arg, variables, params) for arg in node.args)
        kwargs = tuple((key, _expand(value, variables, params)) for key, value in node.kwargs)
        return Call(node.name, args, kwargs, source=node.source)
    if isinstance(node, PathExpr) and variables:
        return _substitute(node.text, variables)
    return node


def _template_variables(call: Call, params: Mapping[str, str]) -> dict[str, object]:
    variables: dict[str, object] = {key: _scalar_value(value) for key, value in call.kwargs}
    variables.update(
        (str(index), _scalar_value(value)) for index, value in enumerate(call.args[1:], 1)
    )
    variables.update(params)
    return variables


def _scalar_value(node: Arg) -> object:
    if isinstance(node, Number | String):
        return node.value
    raise TemplateError(f"cannot use template default={node}: only strings and numbers")


def _substitute(text: str, variables: dict[str, object]) -> Arg:
    for name, value in variables.items():
        if text == "$" + name:
            return _variable_node(name, value)
        text = text.replace("$" + name, str(value))
    try:
        return PathExpr(text)
    except ValueError as exc:
        raise TemplateError(f"cannot substitute template into path={text!r}: {exc}") from None


def _variable_node(name: str, value: object) -> Arg:
    if not isinstance(value, str):
        return Number(value)  # type: ignore[arg-type]
    if _TEMPLATE_NUMERIC.match(value):
        try:
            return Number(float(value))
        except ValueError:
            raise TemplateError(f"cannot use template {name}={value}: not a number") from None
    return String(value)
