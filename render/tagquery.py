"""Tagged series names and ``seriesByTag`` expressions, as graphite-web 1.1.10 reads them.

One module for what the tag index (:mod:`storage.tagindex`), the ``/tags``
API and the evaluator must agree on:

* **Tagged names.** ``parse_path`` is graphite's ``TaggedSeries.parse``:
  ``name;tag=value;...`` or OpenMetrics ``name{tag="value",...}``; the
  ``name`` tag is the metric with leading ``~`` removed; the canonical path
  is the name followed by the ``;tag=value`` strings sorted *as strings*
  (``;a.b=1`` sorts before ``;a=2``). The order of :attr:`ParsedPath.tags`
  is graphite's dict order (first appearance, ``name`` where it first
  appeared or last), which decides the ids graphite's tag database hands
  out, so the index keeps it too.
* **Expressions.** ``tag=spec``, ``tag!=spec``, ``tag=~regex``,
  ``tag!=~regex``. A regex not starting with ``^`` is anchored as
  ``^(regex)``. An expression that accepts the empty value also accepts
  series *without* the tag (``dc=`` = no ``dc`` tag, ``dc!=`` = has one);
  at least one expression must refuse the empty value. graphite-web checks
  such "empty-matching" expressions with ``re.match`` on the value (``''``
  when missing) and the others in SQL with ``re.search``; the two differ
  only for a pattern that starts with its own ``^`` and holds a top-level
  ``|`` (``^a|b``), and :class:`Matcher` keeps both.
* **seriesByTag.** :func:`tag_expressions` takes the expressions out of a
  parsed ``seriesByTag(...)`` call the way graphite-web's store does (string
  arguments only); the series it yields are named by their canonical path,
  and their ``pathExpression`` is the call's source text (``ast.Call.source``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from render import ast
from render.grammar import parse
from storage.paths import InvalidMetricName, metric_path

#: Characters a tag name may not hold (graphite's ``prohibitedTagChars``).
FORBIDDEN_TAG_CHARS = ";!^="
OPERATORS = ("=", "!=", "=~", "!=~")

# graphite's parse_tagspec: a tag without ; ! =, an operator, a value without ;
_EXPRESSION = re.compile(r"([^;!=]+)(!?=~?)([^;]*)\Z")
# One OpenMetrics label: key="value" with \" and \\ escapes, then ',' (or ':,') or the end.
_OPENMETRICS_LABEL = re.compile(r'([^=]+)="((?:\\["\\]|[^"\\])+)"(?::?,|$)')
_SHOWN_CHARS = 80


class TagQueryError(ValueError):
    """A tagged name or tag expression graphite would refuse; the message says why."""


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN_CHARS else repr(text[:_SHOWN_CHARS]) + "..."


@dataclass(frozen=True)
class ParsedPath:
    """A tagged (or plain) series name: its canonical ``path`` and its tags (``name`` included)."""

    path: str
    tags: Mapping[str, str]


def _check_tag(path: str, tag: str, value: str) -> None:
    def refuse(reason: str) -> TagQueryError:
        return TagQueryError(f"cannot parse path={_shown(path)}: {reason}")

    if not tag:
        raise refuse("a tag name is empty")
    if not value:
        raise refuse(f"the value of tag {tag!r} is empty")
    bad = [c for c in FORBIDDEN_TAG_CHARS if c in tag]
    if bad:
        raise refuse(f"tag {tag!r} holds {bad[0]!r} (tag names may not hold any of {FORBIDDEN_TAG_CHARS!r})")
    if ";" in value:
        raise refuse(f"the value of tag {tag!r} holds ';'")
    if value[0] == "~":
        raise refuse(f"the value of tag {tag!r} starts with '~'")


def _name_tag(path: str, metric: str) -> str:
    bare = metric.lstrip("~")
    if not bare:
        raise TagQueryError(f"cannot parse path={_shown(path)}: the metric name is empty without its leading '~'")
    return bare


def format_path(tags: Mapping[str, str]) -> str:
    """The canonical path of ``tags``: the ``name`` tag, then ``;tag=value`` strings sorted as strings."""
    return tags.get("name", "") + "".join(
        sorted(f";{tag}={value}" for tag, value in tags.items() if tag != "name")
    )


def _openmetrics_tags(path: str) -> dict[str, str]:
    metric, _, labels = path[:-1].partition("{")
    if not metric:
        raise TagQueryError(f"cannot parse path={_shown(path)}: no metric name before '{{'")
    if "{" in labels:
        raise TagQueryError(f"cannot parse path={_shown(path)}: more than one '{{'")
    tags: dict[str, str] = {}
    while labels:
        match = _OPENMETRICS_LABEL.match(labels)
        if match is None:
            raise TagQueryError(f"cannot parse path={_shown(path)}: invalid label {_shown(labels)}")
        tag = match.group(1)
        value = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
        _check_tag(path, tag, value)
        tags[tag] = value
        labels = labels[match.end():]
    tags["name"] = _name_tag(path, metric)
    return tags


def _carbon_tags(path: str) -> dict[str, str]:
    metric, *segments = path.split(";")
    if not metric:
        raise TagQueryError(f"cannot parse path={_shown(path)}: no metric name before ';'")
    tags: dict[str, str] = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not tag:
            raise TagQueryError(f"cannot parse path={_shown(path)}: invalid segment {_shown(segment)}")
        _check_tag(path, tag, value)
        tags[tag] = value
    tags["name"] = _name_tag(path, metric)
    return tags


def parse_path(path: str) -> ParsedPath:
    """graphite's ``TaggedSeries.parse``: the canonical path and tags of ``path``.

    Raises :class:`TagQueryError` for names graphite cannot parse.
    """
    if not isinstance(path, str) or not path:
        raise TagQueryError(f"cannot parse path={path!r}: empty")
    tags = _openmetrics_tags(path) if path.endswith('"}') and "{" in path else _carbon_tags(path)
    return ParsedPath(format_path(tags), tags)


def canonical_path(path: str) -> str:
    """The canonical spelling of a tagged name (``a;b=2;a=1`` → ``a;a=1;b=2``)."""
    return parse_path(path).path


def _anchored(spec: str) -> str:
    return spec if spec.startswith("^") else f"^({spec})"


@dataclass(frozen=True)
class Matcher:
    """One tag expression. ``tag``, ``operator`` (one of :data:`OPERATORS`) and ``spec`` as written."""

    tag: str
    operator: str
    spec: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def is_regex(self) -> bool:
        return self.operator.endswith("~")

    @property
    def negated(self) -> bool:
        return self.operator.startswith("!")

    @property
    def matches_empty(self) -> bool:
        """Whether the empty value (a series without the tag) is accepted."""
        return self.accepts_missing_or("")

    def accepts_missing_or(self, value: str) -> bool:
        """graphite's check of an empty-matching expression on ``value`` (``''`` = tag missing)."""
        if self.pattern is not None:
            return (self.pattern.match(value) is None) == self.negated
        return (value == self.spec) != self.negated

    def accepts_present(self, value: str) -> bool:
        """graphite's SQL check of an expression refusing the empty value, on a present value."""
        if self.pattern is not None:
            return (self.pattern.search(value) is None) == self.negated
        return (value == self.spec) != self.negated

    def __str__(self) -> str:
        return f"{self.tag}{self.operator}{self.spec}"


def parse_expression(expression: str) -> Matcher:
    """A :class:`Matcher` for ``tag<op>spec``; :class:`TagQueryError` when malformed or a bad regex."""
    match = _EXPRESSION.match(expression) if isinstance(expression, str) else None
    if match is None:
        raise TagQueryError(
            f"cannot parse expr={_shown(str(expression))}: not tag=value, tag!=value, tag=~regex or tag!=~regex"
        )
    tag, operator, spec = match.groups()
    pattern = None
    if operator.endswith("~"):
        try:
            pattern = re.compile(_anchored(spec))
        except re.error as exc:
            raise TagQueryError(f"cannot parse expr={_shown(expression)}: bad regular expression: {exc}") from None
    return Matcher(tag, operator, spec, pattern)


def expression_tag(expression: str) -> str:
    """The tag an expression is about (what graphite's autocomplete leaves out)."""
    return parse_expression(expression).tag


@dataclass(frozen=True)
class TagQuery:
    """Parsed expressions: ``required`` refuse the empty value (an index lookup each), ``filters`` do not."""

    required: tuple[Matcher, ...]
    filters: tuple[Matcher, ...]

    def accepts(self, tags: Mapping[str, str]) -> bool:
        """Whether a series with ``tags`` matches every expression."""
        for matcher in self.required:
            value = tags.get(matcher.tag)
            if value is None or not matcher.accepts_present(value):
                return False
        return all(m.accepts_missing_or(tags.get(m.tag, "")) for m in self.filters)


def parse_query(expressions: Sequence[str]) -> TagQuery:
    """All expressions of one ``seriesByTag``/``findSeries``; at least one must refuse the empty value."""
    if isinstance(expressions, str):
        raise TypeError("cannot parse expressions: pass a sequence of strings, not one string")
    matchers = [parse_expression(e) for e in expressions]
    required = tuple(m for m in matchers if not m.matches_empty)
    if not required:
        shown = ", ".join(_shown(e) for e in expressions) or "none"
        raise TagQueryError(
            f"cannot find series expr={shown}: at least one expression must not match the empty value"
        )
    return TagQuery(required, tuple(m for m in matchers if m.matches_empty))


def tag_expressions(call: ast.Call) -> list[str]:
    """The expressions of a ``seriesByTag(...)`` call: its string arguments, as graphite-web reads them.

    graphite-web passes only the positional string arguments on (other
    arguments are silently ignored); an empty list means no series.
    """
    if call.name != "seriesByTag":
        raise ValueError(f"cannot take tag expressions from function={call.name}: not seriesByTag")
    return [arg.value for arg in call.args if isinstance(arg, ast.String)]


def path_expression(call: ast.Call) -> str:
    """The ``pathExpression`` of the series a ``seriesByTag`` call yields: the call's source text."""
    return call.source if call.source is not None else str(call)


def is_series_by_tag(pattern: str) -> bool:
    """Whether a planned pattern is a ``seriesByTag(...)`` call's source text (graphite's test)."""
    return pattern.startswith("seriesByTag(")


def tagged_files(
    source: str, find_series: Callable[[Sequence[str]], list[str]], data_dir: str | os.PathLike[str]
) -> list[tuple[str, Path]]:
    """``(series name, whisper file)`` for a ``seriesByTag(...)`` call's source text, sorted by name.

    What graphite-web's store does with such a pattern: parse it again, ask
    the tag index (``find_series``, e.g. ``TagIndex.find_series``) for the
    matching canonical paths, and read each one's file
    (:func:`storage.paths.metric_path`). Series without a file are left out.
    Raises :class:`TagQueryError` for bad expressions (a 400).
    """
    call = parse(source)
    if not isinstance(call, ast.Call) or call.name != "seriesByTag":
        raise TagQueryError(f"cannot find series pattern={_shown(source)}: not a seriesByTag call")
    found = []
    for name in find_series(tag_expressions(call)):
        try:
            path = metric_path(data_dir, name)
        except InvalidMetricName:
            continue
        if path.is_file():
            found.append((name, path))
    return found


__all__ = [
    "FORBIDDEN_TAG_CHARS",
    "OPERATORS",
    "Matcher",
    "ParsedPath",
    "TagQuery",
    "TagQueryError",
    "canonical_path",
    "expression_tag",
    "format_path",
    "is_series_by_tag",
    "parse_expression",
    "parse_path",
    "parse_query",
    "path_expression",
    "tag_expressions",
    "tagged_files",
]
