"""Graphite glob patterns over a folder of whisper files (graphite-web's StandardFinder).

A pattern is split on ``.``; each node is matched against the names in one
directory level with graphite-web's rules: ``{a,b}`` alternatives are expanded
first (innermost braces, graphite's ``expand_braces``), then each alternative
is an ``fnmatch`` glob (``*``, ``?``, ``[a-z]``, ``[!a-z]``), a literal name,
or ``**`` (any number of directory levels). Directories are branches,
``<name>.wsp`` files are leaves; a name can be both.

An empty node (``a..b``, ``.a``, ``a.``, or an empty alternative as in
``a.{,x}.b``) matches the directory it is in without descending, as in
graphite-web, where ``isdir(join(dir, ""))`` holds: ``a..b`` finds ``a.b``,
and a pattern *ending* in an empty node finds the directory it stops in as a
branch whose path ends with a dot and whose name is empty (``a.`` finds the
branch ``a.``; ``.`` finds the root, path ``""``).

Differences from graphite-web, all about names carbon could never have
written: hidden entries (a leading ``.``) are skipped at every level, not only
the last; names that are not valid UTF-8 or contain a ``.`` are skipped; a
backslash makes the next character literal instead of being dropped before
globbing; only ``.wsp`` leaves are served (no ``.wsp.gz`` or ``.rrd``).
And one about a graphite-web bug: its ``**`` slices ``os.walk`` paths by the
length of the folder plus one, which cuts a character too many when the
folder is spelled with a trailing ``/``: after an empty node or another
``**`` (``a..**``, ``**.**``), and for a leading ``**`` under its default
``WHISPER_DIR``, which ends with ``/``. It then misses or misnames matches;
here ``**`` always lists every folder below.
"""
from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from storage.paths import WHISPER_SUFFIX, InvalidMetricName, metric_path

GLOBSTAR = "**"
_BRACES = re.compile(r"\{([^{}]*)\}")
_ESCAPABLE = "*?[]{},\\"
_PROTECTED_BASE = 0xF0000  # supplementary private use area: never in a glob's syntax
_WILDCARDS = ("*", "?", "[")


class FindLimitExceeded(ValueError):
    """A pattern matched more nodes than the caller allows."""


@dataclass(frozen=True)
class Node:
    """One match: a branch (directory) or a leaf (whisper file) at metric ``path``."""

    path: str
    is_leaf: bool
    fs_path: Path


@dataclass(frozen=True)
class _NodeGlob:
    """What one pattern node matches in a directory."""

    literals: tuple[str, ...]
    regex: re.Pattern[str] | None
    globstar: bool
    #: An empty node or alternative: the current directory itself.
    here: bool = False

    @property
    def needs_listing(self) -> bool:
        return self.regex is not None


def find(data_dir: str | os.PathLike, pattern: str, limit: int | None = None) -> list[Node]:
    """Branches and leaves matching ``pattern``, sorted by path, branch before leaf.

    Raises FindLimitExceeded when more than ``limit`` nodes match.
    """
    root = Path(data_dir)
    if _is_tagged(pattern):
        return [Node(pattern, True, path) for path in _tagged_leaf(root, pattern)]
    found: dict[tuple[str, bool], str] = {}
    for metric, is_leaf, fs_path in _matches(str(root), compile_pattern(pattern), (), leaves_only=False):
        found[(metric, is_leaf)] = fs_path
        _check_limit(found, limit, pattern)
    return [Node(path, is_leaf, Path(found[(path, is_leaf)])) for path, is_leaf in sorted(found)]


def expand_leaves(
    data_dir: str | os.PathLike, patterns: Iterable[str], limit: int | None = None
) -> list[tuple[str, str]]:
    """``(metric, whisper file)`` for every leaf matching any pattern, sorted by metric.

    Files are plain ``str`` paths (joined while walking the directories): a
    render may read thousands, and a ``pathlib.Path`` each costs more than
    the read's bookkeeping.
    """
    root = os.fspath(data_dir)
    found: dict[str, str] = {}
    for pattern in patterns:
        if _is_tagged(pattern):
            found.update((pattern, str(path)) for path in _tagged_leaf(Path(root), pattern))
            continue
        for metric, _, fs_path in _matches(root, compile_pattern(pattern), (), leaves_only=True):
            if metric not in found:
                found[metric] = fs_path
                _check_limit(found, limit, pattern)
    return sorted(found.items())


def compile_pattern(pattern: str) -> tuple[_NodeGlob, ...]:
    """Split a pattern on ``.`` and compile each node."""
    return tuple(_compile_node(node) for node in pattern.split("."))


def expand_braces(text: str) -> list[str]:
    """graphite-web's brace expansion: innermost ``{a,b}`` first, duplicates dropped."""
    match = _BRACES.search(text)
    if match is None:
        return [text]
    head, tail = text[: match.start()], text[match.end():]
    variants: dict[str, None] = {}
    for alternative in match.group(1).split(","):
        variants.update(dict.fromkeys(expand_braces(head + alternative + tail)))
    return list(variants)


def _compile_node(node: str) -> _NodeGlob:
    literals: list[str] = []
    regexes: list[str] = []
    globstar = here = False
    for variant in expand_braces(_protect_escapes(node)):
        if variant == GLOBSTAR:
            globstar = True
        elif any(wildcard in variant for wildcard in _WILDCARDS):
            regexes.append(_unprotect(fnmatch.translate(variant), re.escape))
        elif variant:
            literals.append(_unprotect(variant, str))
        else:
            here = True
    regex = re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None
    return _NodeGlob(tuple(dict.fromkeys(literals)), regex, globstar, here)


def _protect_escapes(node: str) -> str:
    """Turn ``\\x`` into a placeholder so braces and globbing leave it alone."""
    out: list[str] = []
    chars = iter(node)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        index = _ESCAPABLE.find(escaped) if escaped else -1
        out.append(chr(_PROTECTED_BASE + index) if index >= 0 else escaped)
    return "".join(out)


def _unprotect(text: str, quote) -> str:
    for index, char in enumerate(_ESCAPABLE):
        text = text.replace(chr(_PROTECTED_BASE + index), quote(char))
    return text


def _matches(
    directory: str, globs: tuple[_NodeGlob, ...], prefix: tuple[str, ...], leaves_only: bool
) -> list[tuple[str, bool, str]]:
    """(metric, is_leaf, file or directory) for every match of ``globs`` below ``directory``.

    Lists, not generators: a leaf then passes through no chain of ``yield from``.
    """
    glob, rest = globs[0], globs[1:]
    found = []
    if glob.globstar:
        found.extend(_globstar(directory, rest or (_compile_node("*"),), prefix, leaves_only))
    if glob.here:
        if rest:
            found.extend(_matches(directory, rest, prefix, leaves_only))
        elif not leaves_only and os.path.isdir(directory):
            found.append((".".join(prefix) + "." if prefix else "", False, directory))
    if not glob.literals and not glob.needs_listing:
        return found
    subdirs, leaves = _candidates(directory, glob, want_leaves=not rest)
    if rest:
        for name, path in subdirs:
            found.extend(_matches(path, rest, (*prefix, name), leaves_only))
        return found
    head = ".".join(prefix) + "." if prefix else ""
    if not leaves_only:
        found.extend((head + name, False, path) for name, path in subdirs)
    found.extend([(head + stem, True, path) for stem, path in leaves])
    return found


def _globstar(
    directory: str, rest: tuple[_NodeGlob, ...], prefix: tuple[str, ...], leaves_only: bool
) -> list[tuple[str, bool, str]]:
    """``**``: match ``rest`` here and in every real (not symlinked) directory below."""
    found = _matches(directory, rest, prefix, leaves_only)
    for entry in _scan(directory):
        if _visible(entry.name) and entry.is_dir(follow_symlinks=False):
            found.extend(_globstar(entry.path, rest, (*prefix, entry.name), leaves_only))
    return found


def _candidates(
    directory: str, glob: _NodeGlob, want_leaves: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(name, path)`` of matching subdirectories and (when wanted) matching leaves in one directory."""
    if not glob.needs_listing:
        subdirs = [
            (name, path) for name in glob.literals
            if os.path.isdir(path := os.path.join(directory, name))
        ]
        leaves = [
            (name, path) for name in glob.literals
            if want_leaves and os.path.isfile(path := os.path.join(directory, name + WHISPER_SUFFIX))
        ]
        return subdirs, leaves
    literals = set(glob.literals)
    regex = glob.regex
    subdirs, leaves = [], []
    for entry in _scan(directory):
        name = entry.name
        if not _visible(name):
            continue
        if want_leaves and name.endswith(WHISPER_SUFFIX):
            stem = name[: -len(WHISPER_SUFFIX)]
            if "." not in stem and (stem in literals or regex.match(stem)) and entry.is_file():
                leaves.append((stem, entry.path))
                continue
        if "." not in name and (name in literals or regex.match(name)) and entry.is_dir():
            subdirs.append((name, entry.path))
    return subdirs, leaves


def _scan(directory: str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _visible(name: str) -> bool:
    """Hidden entries and names no metric could have are not browsable."""
    if name.startswith("."):
        return False
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_tagged(pattern: str) -> bool:
    return ";" in pattern and not pattern.startswith("_tagged.")


def _tagged_leaf(root: Path, name: str) -> list[Path]:
    """Tagged series are looked up by their hashed file, never globbed (as graphite-web)."""
    try:
        path = metric_path(root, name)
    except InvalidMetricName:
        return []
    return [path] if path.is_file() else []


def _check_limit(found, limit: int | None, pattern: str) -> None:
    if limit is not None and len(found) > limit:
        raise FindLimitExceeded(
            f"cannot find pattern={pattern!r}: more than {limit} matches (limit {limit})"
        )
