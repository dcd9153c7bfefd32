"""Metric names: validation, carbon's canonical tagged form, and interning to ids.

Carbon rewrites every incoming name with graphite's ``TaggedSeries.parse(...).path``
before caching it, so ``a;b=2;a=1`` and ``a;a=1;b=2`` are one series, a leading
``~`` is dropped from the name, and ``m{a="1"}`` (OpenMetrics) becomes ``m;a=1``.
Carbon logs and keeps names it cannot parse; Carbyne rejects them instead
(``bad_name``), together with empty names, names holding whitespace or control
characters, and names longer than ``max_name_bytes``.

Carbon stores ``a..b`` and ``.a.b`` in the file of ``a.b`` (its path is the name with
dots as separators, leading ones stripped, and the file system ignores doubled ones), so
an untagged name's leading and doubled dots are dropped here and the points join
``a.b``'s. A trailing dot (carbon: a hidden file ``.wsp`` in the folder ``a/b``) is left
for ``storage.paths.metric_path`` to refuse with the other path-safety checks.

Parsers hand raw bytes to :meth:`MetricIndex.id_for`; a bounded cache of raw
spellings makes a known spelling cost one hash lookup. When the compiled
``native.carbon_parse`` is importable its C table serves as that cache so the
native line parser can look spellings up without building Python objects.
"""
from __future__ import annotations

import re

try:
    from native.carbon_parse import SpellingTable as NativeSpellingTable
except ImportError:  # the pure twin below serves when the extension is not built
    NativeSpellingTable = None

DEFAULT_MAX_NAME_BYTES = 1024
DEFAULT_MAX_SPELLINGS = 1 << 20

# Tag names may not hold these (graphite's TaggedSeries.prohibitedTagChars).
_FORBIDDEN_IN_TAG = frozenset(";!^=")
# Whitespace (unicode-aware, as carbon's str.split() sees it) and control characters.
_FORBIDDEN_IN_NAME = re.compile(r"[\s\x00-\x1f\x7f]")
# One OpenMetrics label: key="value" with \" and \\ escapes, then ',' (or carbon's
# accidental ':,') or the end.  Mirrors graphite's parse_openmetrics pattern.
_OPENMETRICS_LABEL = re.compile(r'([^=]+)="((?:\\["\\]|[^"\\])+)"(?::?,|$)')


_DOUBLED_DOTS = re.compile(r"\.{2,}")


class BadMetricName(ValueError):
    """A metric name that cannot be accepted (reported as a ``bad_name`` reject)."""


def _refuse(name: str, reason: str) -> BadMetricName:
    shown = name if len(name) <= 80 else name[:80] + "..."
    return BadMetricName(f"cannot accept metric={shown!r}: {reason}")


def _check_tag(name: str, tag: str, value: str) -> None:
    """Graphite's validateTagAndValue rules."""
    if not tag:
        raise _refuse(name, "tag may not be empty")
    if not value:
        raise _refuse(name, f"value for tag {tag!r} may not be empty")
    if _FORBIDDEN_IN_TAG.intersection(tag):
        raise _refuse(name, f"tag {tag!r} may not contain any of ';!^='")
    if ";" in value:
        raise _refuse(name, f"value of tag {tag!r} may not contain ';'")
    if value[0] == "~":
        raise _refuse(name, f"value of tag {tag!r} may not start with '~'")


def _name_as_tag_value(name: str, metric: str) -> str:
    bare = metric.lstrip("~")
    if not bare:
        raise _refuse(name, "the name part is empty once leading '~' are removed")
    return bare


def _format(bare_name: str, tags: dict[str, str]) -> str:
    """Graphite's TaggedSeries.format: the name, then ';tag=value' strings sorted as strings."""
    return bare_name + "".join(
        sorted(f";{tag}={value}" for tag, value in tags.items() if tag != "name")
    )


def _parse_carbon_tags(name: str) -> str:
    metric, *segments = name.split(";")
    if not metric:
        raise _refuse(name, "no metric name before ';'")
    tags: dict[str, str] = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not tag:
            raise _refuse(name, f"invalid tag segment {segment!r}")
        _check_tag(name, tag, value)
        tags[tag] = value
    return _format(_name_as_tag_value(name, metric), tags)


def _parse_openmetrics(name: str) -> str:
    parts = name[:-1].split("{")
    if len(parts) != 2 or not parts[0]:
        raise _refuse(name, "not of the form metric{tag=\"value\",...}")
    metric, rest = parts
    tags: dict[str, str] = {}
    while rest:
        match = _OPENMETRICS_LABEL.match(rest)
        if match is None:
            raise _refuse(name, f"invalid label segment {rest!r}")
        tag = match.group(1)
        value = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
        _check_tag(name, tag, value)
        tags[tag] = value
        rest = rest[match.end():]
    return _format(_name_as_tag_value(name, metric), tags)


def canonical_name(name: str) -> str:
    """Return carbon's canonical spelling of ``name`` or raise :class:`BadMetricName`.

    Canonicalisation is idempotent: ``canonical_name(canonical_name(x)) == canonical_name(x)``.
    """
    if not name:
        raise _refuse(name, "empty name")
    bad = _FORBIDDEN_IN_NAME.search(name)
    if bad is not None:
        raise _refuse(name, f"contains whitespace or control character {bad.group()!r}")
    if name.endswith('"}') and "{" in name:
        return _parse_openmetrics(name)
    if ";" in name:
        return _parse_carbon_tags(name)
    bare = name
    while bare[:1] in ("~", "."):
        bare = bare.lstrip("~").lstrip(".")
    if not bare:
        raise _refuse(name, "the name is empty once leading '~' and '.' are removed")
    if ".." in bare:
        bare = _DOUBLED_DOTS.sub(".", bare)
    return bare


class SpellingCache:
    """Bounded map of raw name spellings (bytes) to metric ids; pure twin of the C table.

    Being a cache, it forgets everything when full rather than growing without bound
    (a client can spell one tagged name in n! ways).
    """

    def __init__(self, limit: int = DEFAULT_MAX_SPELLINGS) -> None:
        if limit < 1:
            raise ValueError(f"cannot use spelling limit={limit}: must be at least 1")
        self.limit = limit
        self._ids: dict[bytes, int] = {}

    def get(self, raw: bytes) -> int:
        """The id cached for ``raw``, or -1."""
        return self._ids.get(raw, -1)

    def add(self, raw: bytes, metric_id: int) -> None:
        if len(self._ids) >= self.limit:
            self._ids.clear()
        self._ids[raw] = metric_id

    def clear(self) -> None:
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)


class MetricIndex:
    """Interns canonical metric names to dense ids (0, 1, 2, ...) for parsers and the cache.

    ``id_for`` is meant for the one reactor thread; ``name`` is safe from other threads.
    """

    def __init__(
        self,
        max_name_bytes: int = DEFAULT_MAX_NAME_BYTES,
        max_spellings: int = DEFAULT_MAX_SPELLINGS,
        native: bool | None = None,
    ) -> None:
        """``native``: True needs the compiled spelling table, False refuses it, None picks it if built."""
        if max_name_bytes < 1:
            raise ValueError(f"cannot use max_name_bytes={max_name_bytes}: must be at least 1")
        if native and NativeSpellingTable is None:
            raise ImportError("cannot use native=True: native.carbon_parse is not built")
        use_native = NativeSpellingTable is not None if native is None else native
        self.max_name_bytes = max_name_bytes
        self.spellings = (
            NativeSpellingTable(max_spellings) if use_native else SpellingCache(max_spellings)
        )
        self._ids: dict[str, int] = {}
        self._names: list[str] = []

    def id_for(self, raw: bytes | str) -> int:
        """The id of ``raw``'s canonical name, interning it if new; raises :class:`BadMetricName`."""
        if isinstance(raw, bytes):
            known = self.spellings.get(raw)
            if known >= 0:
                return known
            if len(raw) > self.max_name_bytes:
                raise self._too_long(raw.decode("utf-8", "replace"), len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _refuse(raw.decode("utf-8", "replace"), "not valid UTF-8") from exc
            metric_id = self._intern(canonical_name(text))
            self.spellings.add(raw, metric_id)
            return metric_id
        known_id = self._ids.get(raw)
        if known_id is not None:
            return known_id
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise _refuse(raw, "not encodable as UTF-8") from exc
        if size > self.max_name_bytes:
            raise self._too_long(raw, size)
        return self._intern(canonical_name(raw))

    def lookup(self, raw: bytes | str) -> int | None:
        """The id of ``raw``'s canonical name if already known (never interns); None otherwise."""
        if isinstance(raw, bytes):
            known = self.spellings.get(raw)
            if known >= 0:
                return known
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
        known_id = self._ids.get(raw)
        if known_id is not None:
            return known_id
        try:
            return self._ids.get(canonical_name(raw))
        except BadMetricName:
            return None

    def name(self, metric_id: int) -> str:
        """The canonical name interned as ``metric_id``."""
        if metric_id < 0:
            raise IndexError(f"cannot find metric id={metric_id}: ids are not negative")
        return self._names[metric_id]

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def _intern(self, canonical: str) -> int:
        metric_id = self._ids.get(canonical)
        if metric_id is None:
            metric_id = len(self._names)
            self._names.append(canonical)
            self._ids[canonical] = metric_id
        return metric_id

    def _too_long(self, name: str, size: int) -> BadMetricName:
        return _refuse(name, f"{size} bytes is over the {self.max_name_bytes}-byte limit")
