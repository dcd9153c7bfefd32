"""storage-schemas.conf and storage-aggregation.conf, read the way carbon 1.1.10 reads them.

Both files are INI files whose sections are tried in file order; the first
section whose ``pattern`` (a Python regex, ``re.search``) matches a metric
decides its retentions, respectively its xFilesFactor and aggregationMethod.
When no section matches, carbon's defaults apply: one archive of 7 days of
minutely points, xFilesFactor 0.5, ``average``.

Carbon stops on some mistakes and silently skips sections on others; here the
fatal ones raise ``ConfigError`` naming file, line and value, and the skipped
ones are kept in ``StorageRules.warnings`` so the daemon can log them.
"""
from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_ARCHIVES: tuple[tuple[int, int], ...] = ((60, 60 * 24 * 7),)
DEFAULT_X_FILES_FACTOR = 0.5
DEFAULT_AGGREGATION_METHOD = "average"
AGGREGATION_METHODS = ("average", "sum", "last", "max", "min", "avg_zero", "absmax", "absmin")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
MAX_UINT32 = 2**32 - 1
_UNIT_AMOUNT = re.compile(r"^(\d+)([a-z]+)$")


class ConfigError(ValueError):
    """A configuration file carbon would refuse; names the file, line and value."""

    def __init__(self, path: str, line: int, value: str, reason: str) -> None:
        super().__init__(f"cannot load {path}:{line}: {value}: {reason}")
        self.path = path
        self.line = line
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class StoragePolicy:
    """How a new whisper file is created: archives sorted by precision, xFF, method."""

    archives: tuple[tuple[int, int], ...]
    x_files_factor: float
    aggregation_method: str


@dataclass(frozen=True)
class SchemaRule:
    """One storage-schemas.conf section that carbon would use."""

    name: str
    pattern: re.Pattern[str]
    archives: tuple[tuple[int, int], ...]
    line: int


@dataclass(frozen=True)
class AggregationRule:
    """One storage-aggregation.conf section; None means "whisper's default"."""

    name: str
    pattern: re.Pattern[str]
    x_files_factor: float | None
    aggregation_method: str | None
    line: int


def parse_retention_def(text: str) -> tuple[int, int]:
    """``"10s:6h"`` → ``(10, 2160)`` with carbon's grammar (units s m h d w y).

    A bare precision is seconds, a bare duration is a point count, and a
    duration with a unit becomes ``seconds // precision`` points.
    """
    try:
        precision_text, points_text = text.strip().split(":")
    except ValueError:
        raise ValueError(f"invalid retention definition {text.strip()!r}") from None
    precision = _amount(precision_text, "precision")
    if precision <= 0:
        raise ValueError(f"precision {precision_text!r} must be at least one second")
    points = _amount(points_text, "retention")
    if not points_text.isdigit():
        points //= precision
    if points <= 0:
        raise ValueError(f"retention {points_text!r} keeps no point at precision {precision_text!r}")
    if precision > MAX_UINT32 or points > MAX_UINT32 or precision * points > MAX_UINT32:
        raise ValueError(f"retention definition {text.strip()!r} does not fit whisper's 32-bit header")
    return precision, points


def _amount(text: str, what: str) -> int:
    """Seconds (or a bare number) from ``"10"``, ``"10s"``, ``"5m"``..."""
    try:
        if text.isdigit():
            return int(text)
        match = _UNIT_AMOUNT.match(text)
        if match is None:
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid {what} specification {text!r}") from None
    count, unit = match.groups()
    if unit not in UNIT_SECONDS:
        raise ValueError(f"invalid unit {unit!r} (use one of s m h d w y)")
    return int(count) * UNIT_SECONDS[unit]


def parse_retentions(text: str) -> tuple[tuple[int, int], ...]:
    """``"10s:6h,1m:7d"`` → archives sorted by precision, validated like whisper does."""
    archives = tuple(parse_retention_def(part) for part in text.split(","))
    return validate_archives(archives)


def validate_archives(archives: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Sort by precision and apply whisper.validateArchiveList's rules; ValueError if broken."""
    if not archives:
        raise ValueError("at least one archive is needed")
    ordered = tuple(sorted(archives, key=lambda archive: archive[0]))
    for index, (finer, coarser) in enumerate(zip(ordered, ordered[1:], strict=False)):
        if finer[0] == coarser[0]:
            raise ValueError(f"archives {index} and {index + 1} have the same precision {finer[0]}s")
        if coarser[0] % finer[0]:
            raise ValueError(
                f"precision {coarser[0]}s of archive {index + 1} is not a multiple of "
                f"precision {finer[0]}s of archive {index}"
            )
        if coarser[0] * coarser[1] <= finer[0] * finer[1]:
            raise ValueError(
                f"archive {index + 1} keeps {coarser[0] * coarser[1]}s, no longer than the "
                f"{finer[0] * finer[1]}s of the more precise archive {index}"
            )
        needed = coarser[0] // finer[0]
        if finer[1] < needed:
            raise ValueError(
                f"archive {index} has {finer[1]} points, fewer than the {needed} that "
                f"archive {index + 1} aggregates per point"
            )
    return ordered


@dataclass(frozen=True)
class StorageRules:
    """Both files parsed once; ``policy_for`` answers for one metric."""

    schemas: tuple[SchemaRule, ...] = ()
    aggregations: tuple[AggregationRule, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def load(
        cls, schemas_path: str | os.PathLike | None, aggregation_path: str | os.PathLike | None
    ) -> StorageRules:
        """Read both files; a missing file (or None) means carbon's defaults only."""
        warnings: list[str] = []
        schemas = tuple(_load_schemas(schemas_path, warnings)) if schemas_path else ()
        aggregations = (
            tuple(_load_aggregations(aggregation_path, warnings)) if aggregation_path else ()
        )
        return cls(schemas, aggregations, tuple(warnings))

    def policy_for(self, metric: str) -> StoragePolicy:
        archives = next(
            (rule.archives for rule in self.schemas if rule.pattern.search(metric)),
            DEFAULT_ARCHIVES,
        )
        rule = next((rule for rule in self.aggregations if rule.pattern.search(metric)), None)
        x_files_factor = rule.x_files_factor if rule else None
        method = rule.aggregation_method if rule else None
        return StoragePolicy(
            archives=archives,
            x_files_factor=DEFAULT_X_FILES_FACTOR if x_files_factor is None else x_files_factor,
            aggregation_method=method or DEFAULT_AGGREGATION_METHOD,
        )


@dataclass(frozen=True)
class _Section:
    name: str
    line: int
    options: dict[str, str]
    key_lines: dict[str, int]


def _load_schemas(path: str | os.PathLike, warnings: list[str]) -> Iterator[SchemaRule]:
    shown = os.fspath(path)
    for section in _read_sections(path):
        where = f"{shown}:{section.line}: [{section.name}]"
        if "retentions" not in section.options:
            warnings.append(f"{where}: no 'retentions', section skipped")
            continue
        value = section.options["retentions"]
        line = section.key_lines.get("retentions", section.line)
        try:
            archives = tuple(parse_retention_def(part) for part in value.split(","))
        except ValueError as error:
            raise ConfigError(shown, line, f"retentions={value!r}", str(error)) from None
        pattern = section.options.get("pattern")
        if not pattern:
            warnings.append(f"{where}: no 'pattern', section skipped")
            continue
        regex = _compile(shown, section, pattern)
        try:
            archives = validate_archives(archives)
        except ValueError as error:
            warnings.append(f"{where}: retentions={value!r}: {error}, section skipped")
            continue
        yield SchemaRule(section.name, regex, archives, section.line)


def _load_aggregations(path: str | os.PathLike, warnings: list[str]) -> Iterator[AggregationRule]:
    shown = os.fspath(path)
    for section in _read_sections(path):
        where = f"{shown}:{section.line}: [{section.name}]"
        x_files_factor: float | None = None
        raw_xff = section.options.get("xfilesfactor")
        if raw_xff is not None:
            line = section.key_lines.get("xfilesfactor", section.line)
            try:
                x_files_factor = float(raw_xff)
            except ValueError:
                warnings.append(f"{where}: xFilesFactor={raw_xff!r} is not a number, section skipped")
                continue
            if not 0 <= x_files_factor <= 1:
                raise ConfigError(shown, line, f"xFilesFactor={raw_xff!r}", "must be between 0 and 1")
        method = section.options.get("aggregationmethod")
        if method is not None and method not in AGGREGATION_METHODS:
            line = section.key_lines.get("aggregationmethod", section.line)
            raise ConfigError(
                shown, line, f"aggregationMethod={method!r}",
                f"unknown method (use one of {', '.join(AGGREGATION_METHODS)})",
            )
        pattern = section.options.get("pattern")
        if not pattern:
            warnings.append(f"{where}: no 'pattern', section skipped")
            continue
        regex = _compile(shown, section, pattern)
        yield AggregationRule(section.name, regex, x_files_factor, method, section.line)


def _compile(shown: str, section: _Section, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        line = section.key_lines.get("pattern", section.line)
        raise ConfigError(shown, line, f"pattern={pattern!r}", f"invalid regex: {error}") from None


def _read_sections(path: str | os.PathLike) -> list[_Section]:
    """Sections in file order with their options, as carbon's OrderedConfigParser sees them.

    configparser supplies the values (so comments, continuation lines, ``:``
    delimiters, ``%`` interpolation and ``[DEFAULT]`` behave as in carbon);
    a scan of the raw lines supplies the order and the line numbers.

    Lines are what iterating over the file gives, as for carbon and for
    configparser: universal newlines, so a split on LF only. ``splitlines()``
    also breaks at VT, FF, 0x1c-0x1e, NEL and U+2028/U+2029; a comment such
    as "# old<FF>[catchall]" -- one comment line for carbon -- then put
    [catchall] early in the order and gave its retentions to other metrics.
    """
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(shown, 0, shown, f"cannot read the file: {error}") from None
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=shown)
    except configparser.Error as error:
        line, reason = getattr(error, "lineno", 0), _first_line(error)
        if not line and getattr(error, "errors", None):
            # a plain ParsingError lists its bad lines instead of having one lineno
            line, reason = error.errors[0][0], "neither a section header, an option nor a comment"
        line = line or 1
        lines = text.split("\n")
        offending = lines[min(line, len(lines)) - 1].strip()
        raise ConfigError(shown, line, offending, reason) from None
    sections: list[_Section] = []
    for name, line, key_lines in _scan_headers(text.split("\n")):
        try:
            options = dict(parser.items(name))
        except configparser.InterpolationError as error:
            key_line = key_lines.get(error.option, line)
            raise ConfigError(shown, key_line, f"{error.option}", _first_line(error)) from None
        except configparser.Error as error:
            raise ConfigError(shown, line, f"[{name}]", _first_line(error)) from None
        sections.append(_Section(name, line, options, key_lines))
    return sections


def _scan_headers(lines: list[str]) -> Iterator[tuple[str, int, dict[str, int]]]:
    """Carbon's section order: every stripped line that starts with '[' and ends with ']'."""
    current: tuple[str, int, dict[str, int]] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            if current:
                yield current
            current = (line[1:-1], number, {})
        elif current and raw[:1] not in (" ", "\t") and line and line[0] not in "#;":
            key = re.split(r"[=:]", line, maxsplit=1)[0].strip().lower()
            current[2].setdefault(key, number)
    if current:
        yield current


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]
