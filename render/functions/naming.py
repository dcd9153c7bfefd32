"""How graphite derives names and grouping keys from series names.

graphite-web re-parses a series name such as ``movingAverage(a.b.c,2)``
with its target grammar to find the first metric path in it (``a.b.c``) when
a node number must be looked up. Only that prefix-parse is needed here, so
this is a small scanner following the same token rules rather than the full
grammar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from render.series import Series

_PATH_SYMBOLS = "(){},.'\"\\|"
_FUNCTION_OPEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*")
_LITERAL_ARG = re.compile(
    r"""(?:(?:-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*(?:[,)]|$)"""
    r"""|(?:true|false|none|inf)(?![A-Za-z0-9_])|['"])""",
    re.IGNORECASE,
)


def _path_char(ch: str) -> bool:
    return "!" <= ch <= "~" and ch not in _PATH_SYMBOLS


def _scan_element(text: str, i: int) -> tuple[str, int]:
    """One dot-separated element (plain characters, ``\\x`` escapes, ``{a,b}``)."""
    out = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _PATH_SYMBOLS + "=":
            out.append(text[i + 1])
            i += 2
        elif ch == "{":
            close = text.find("}", i)
            inner = text[i + 1 : close] if close > 0 else ""
            if close < 0 or not inner or not all(
                part and all(_path_char(c) for c in part) for part in inner.split(",")
            ):
                break
            out.append(text[i : close + 1])
            i = close + 1
        elif _path_char(ch):
            out.append(ch)
            i += 1
        else:
            break
    return "".join(out), i


def _scan_path(text: str, i: int) -> str | None:
    elements = []
    while True:
        element, i = _scan_element(text, i)
        if not element:
            break
        elements.append(element)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        break
    return ".".join(elements) or None


def _call_end(text: str, open_paren: int) -> int | None:
    """The index of the ``)`` closing the ``(`` at ``open_paren`` (quoted text skipped), or None."""
    depth, quote, i = 0, "", open_paren
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _is_target(text: str) -> bool:
    from render.grammar import GrammarError, parse

    try:
        parse(text)
    except GrammarError:
        return False
    return True


def first_path_expression(name: str) -> str | None:
    """The first metric path in ``name`` read as a target, e.g. ``a.b.c`` in ``scale(a.b.c,2)``.

    None when the innermost first argument is a literal rather than a path.
    When the leading call is no valid target (``f(a.b.c Current:1.0 ,x)`` from
    ``cactiStyle``, ``f(a.y.d,)``...), graphite's prefix parse reads the
    function name as a path, and so does this.
    """
    text = name.lstrip()
    call = _FUNCTION_OPEN.match(text, 0)
    if call is not None:
        end = _call_end(text, text.index("(", call.start()))
        if end is None or not _is_target(text[: end + 1]):
            return _scan_path(text, 0)
    i = 0
    while True:
        call = _FUNCTION_OPEN.match(text, i)
        if call is None:
            return _scan_path(text, i)
        i = call.end()
        if _LITERAL_ARG.match(text, i):
            return None


def node_or_tag(series: Series, node: int | str, path: str | None = None) -> str:
    """graphite's ``getNodeOrTag``: node ``n`` of the path (tags cut off), else tag ``n``."""
    if isinstance(node, int):
        parts = (path or series.name).split(";", 2)[0].split(".")
        try:
            return parts[node]
        except IndexError:
            pass
    return series.tags.get(str(node), "")


def node_key(series: Series, nodes: Sequence[int | str]) -> str:
    """graphite's ``aggKey``: the chosen nodes/tags joined by ``.``.

    A name that ends in ``)`` (a function result) is looked up in its first
    metric path, so ``aliasByNode(scale(a.b.c,2),1)`` gives ``b``.
    """
    path = first_path_expression(series.name) if series.name.endswith(")") else None
    return ".".join(node_or_tag(series, n, path) for n in nodes)


def format_path_expressions(series_list: Iterable[Series]) -> str:
    """The distinct path expressions in first-seen order, joined by ``,``."""
    return ",".join(dict.fromkeys(s.path_expression for s in series_list))
