"""Where render data comes from: whisper files under a data folder, plus carbon's cache.

:class:`DataSource` answers two questions for the evaluator. ``leaves``
(planning) says which files a pattern matches and what their headers are, so
steps and point counts are known before any point is read. ``fetch`` reads
every file of every pattern for one time window in a single pass, asks the
carbon caches once (a CarbonLink ``cache-query-bulk``) for points not yet on
disk, and merges them the way graphite-web's ``merge_with_cache`` does.

Semantics kept from graphite-web 1.1.10 (``readers/whisper.py``,
``render/datalib.py``): whisper's fetch alignment (``from`` exclusive,
``until`` inclusive at step granularity, the first archive covering
``now - from``), series named by metric and sorted by name within a pattern,
``path_expression`` = the pattern, the request's xFilesFactor on every
series, no series for a file whose fetch returns nothing. A metric that is
only in the cache (no file yet) is not listed, as in graphite-web.

A pattern that is a ``seriesByTag(...)`` call's source text is resolved
through the tag index (``render.tagquery.tagged_files``), as graphite-web's
store hands such patterns to its TagDB: the series it names that have a
whisper file, sorted by name, ``pathExpression`` = the call's text.

Reading goes through one :class:`~storage.whisper.batch.WhisperStore` per
data source (so per render worker): open descriptors and parsed headers are
kept between requests, each fetch is one ``pread`` into numpy. Planning reads
headers through a small cache of its own (:class:`HeaderCache`). Both trust
what they cached for ``revalidate_after`` seconds (1 s) and then check the
file with one ``stat``, so a file replaced by whisper-resize is seen within a
second; a header changed in the meantime is the one the store reads with.

Differences: a corrupt or unreadable file is logged and skipped instead of
failing the whole render; cached points are merged for ``absmax``/``absmin``
files too (graphite-web raises on those methods). Without a tag index a
``seriesByTag`` pattern is refused (``TagQueryError``) rather than matching
nothing, so a misconfigured server says so.
"""
from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from render.series import Series
from render.tagquery import TagQueryError, is_series_by_tag, tagged_files
from storage.finder import FindLimitExceeded, expand_leaves
from storage.whisper import file as whisper_file
from storage.whisper.batch import WhisperStore
from storage.whisper.errors import WhisperException
from storage.whisper.format import Header

log = logging.getLogger(__name__)

Point = tuple[float, float]
TimeInfo = tuple[int, int, int]

#: Seconds a cached header is trusted before its file is checked again (WhisperStore's default).
REVALIDATE_AFTER = 1.0
#: Headers kept by a HeaderCache before it starts over.
MAX_CACHED_HEADERS = 200_000
#: Descriptors a data source keeps open: half the process limit, at most this many.
MAX_OPEN_FILES = 8192


class CacheClient(Protocol):
    """What the data source needs from a CarbonLink client."""

    def cache_query_bulk(self, metrics: Iterable[str]) -> dict[str, list[Point]]: ...


class TagFinder(Protocol):
    """What the data source needs from a tag index (``storage.tagindex.TagIndex``)."""

    def find_series(self, expressions: Sequence[str]) -> list[str]: ...


class Leaf(NamedTuple):
    """One whisper file a pattern matched: metric name, file, parsed header.

    ``identity`` (inode, size, mtime in ns) says which version of the file
    the header was read from (the header planning saw; the read itself uses
    the store's current one). A tuple: a request may plan thousands.
    """

    name: str
    fs_path: str | Path
    header: Header
    identity: tuple[int, int, int] = (0, 0, 0)


Identity = tuple[int, int, int]


def _identity(stat: os.stat_result) -> Identity:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _open_header(fs_path: str) -> tuple[Header, Identity]:
    fd = os.open(fs_path, os.O_RDONLY)
    try:
        return whisper_file.read_header(fd, fs_path), _identity(os.fstat(fd))
    finally:
        os.close(fd)


class HeaderCache:
    """Parsed whisper headers by file, so planning a request reads no header twice in a row.

    An entry is trusted for ``revalidate_after`` seconds; after that one
    ``stat`` says whether the file is the same (inode, size, mtime), else
    its header is read again.
    """

    def __init__(self, revalidate_after: float = REVALIDATE_AFTER, limit: int = MAX_CACHED_HEADERS) -> None:
        self.revalidate_after = revalidate_after
        self.limit = limit
        self._entries: dict[str, tuple[Header, Identity, float]] = {}

    def get(self, fs_path: str) -> tuple[Header, Identity]:
        """The header of ``fs_path`` and the file identity it was read from (OSError, WhisperException)."""
        now = time.monotonic()
        entry = self._entries.get(fs_path)
        if entry is not None:
            header, identity, checked_at = entry
            if now - checked_at < self.revalidate_after:
                return header, identity
            if _identity(os.stat(fs_path)) == identity:
                self._entries[fs_path] = (header, identity, now)
                return header, identity
        header, identity = _open_header(fs_path)
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[fs_path] = (header, identity, now)
        return header, identity


def open_file_budget() -> int:
    """How many whisper files a data source keeps open: half the descriptor limit, capped."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN_FILES
    return max(16, min(MAX_OPEN_FILES, soft // 2))


def fetch_interval(header: Header, start: int, end: int, now: int) -> tuple[TimeInfo, int] | None:
    """``((from, until, step), points)`` whisper.fetch would return, from the header alone.

    None when the window lies outside the file's retention (whisper returns
    None then too). ``points`` is how many values come back: whisper returns
    at most one ring's worth.
    """
    if start > end:
        raise ValueError(f"cannot fetch from={start}: after until={end}")
    oldest = now - header.max_retention
    if start > now or end < oldest:
        return None
    start = max(start, oldest)
    end = min(end, now)
    archive = whisper_file.select_archive(header, start, now)
    step = archive.seconds_per_point
    first = start - start % step + step
    until = end - end % step + step
    if first == until:
        until += step
    return (first, until, step), min((until - first) // step, archive.points)


def _last_per_interval(ts: np.ndarray, vals: np.ndarray, raw_step: int) -> tuple[np.ndarray, np.ndarray]:
    """One point per raw step, the last one sent, ordered by first appearance (a dict's order)."""
    keys = ts - np.mod(ts, raw_step)
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    last = np.full(len(unique), -1, dtype=np.int64)
    np.maximum.at(last, inverse, np.arange(len(keys)))
    order = np.argsort(first, kind="stable")
    return unique[order], vals[last[order]]


def _by_abs(values: np.ndarray, pick_max: bool) -> float:
    """whisper's absmax/absmin: the value with the largest/smallest magnitude, first on ties."""
    magnitude = np.abs(values)
    return float(values[np.argmax(magnitude) if pick_max else np.argmin(magnitude)])


def _aggregate_per_interval(
    ts: np.ndarray, vals: np.ndarray, step: int, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cached points consolidated to the fetch step with the file's aggregation method."""
    keys = ts - np.mod(ts, step)
    unique, inverse = np.unique(keys, return_inverse=True)
    groups = len(unique)
    if method in ("average", "avg_zero"):
        result = np.bincount(inverse, weights=vals, minlength=groups) / np.bincount(inverse)
    elif method == "sum":
        result = np.bincount(inverse, weights=vals, minlength=groups)
    elif method in ("max", "min"):
        result = np.full(groups, -np.inf if method == "max" else np.inf)
        (np.maximum if method == "max" else np.minimum).at(result, inverse, vals)
    elif method == "last":
        last = np.full(groups, -1, dtype=np.int64)
        np.maximum.at(last, inverse, np.arange(len(vals)))
        result = vals[last]
    elif method in ("absmax", "absmin"):
        result = np.array([_by_abs(vals[inverse == g], method == "absmax") for g in range(groups)])
    else:
        raise ValueError(f"cannot merge cached points aggregationMethod={method!r}: unknown method")
    return unique, result


def merge_cached(
    values: np.ndarray,
    start: int,
    step: int,
    points: Sequence[Point],
    aggregation_method: str | None,
    raw_step: int | None,
) -> np.ndarray:
    """``values`` (fetched from ``start`` every ``step``) with cached points written over them.

    graphite-web's ``merge_with_cache``: keep the last point per raw step
    (what whisper itself would keep), consolidate to ``step`` with the file's
    aggregation method when the fetch step is coarser than the raw one, then
    overwrite the slot each point falls in; points before ``start`` or past
    the fetched values are ignored. Returns a new array.
    """
    if not points:
        return values
    ts = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
    vals = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
    finite = np.isfinite(ts)
    if not finite.all():
        ts, vals = ts[finite], vals[finite]
    if raw_step is not None and raw_step > 1:
        ts, vals = _last_per_interval(ts, vals, raw_step)
    if aggregation_method and step != raw_step:
        ts, vals = _aggregate_per_interval(ts, vals, step, aggregation_method)
    index = np.trunc(ts - start).astype(np.int64) // step
    keep = (index >= 0) & (index < len(values))
    index, vals = index[keep], vals[keep]
    # several points on one slot: the last one written wins
    reversed_unique, position = np.unique(index[::-1], return_index=True)
    merged = np.array(values, dtype=np.float64, copy=True)
    merged[reversed_unique] = vals[::-1][position]
    return merged


def _pattern_series(pattern: str, names: list[str], read: Mapping[str, tuple[int, int, int, np.ndarray]],
                    x_files_factor: float) -> list[Series]:
    """The series of one pattern, in ``names`` order.

    The first is built whole; the others are its siblings with their own
    name, tags, times and values (``Series.sibling`` shares what is equal and
    checks only what changes: a fourth of the cost for thousands of series).
    """
    if not names:
        return []
    first = Series(names[0], *read[names[0]], path_expression=pattern, x_files_factor=x_files_factor)
    result = [first]
    for name in names[1:]:
        start, end, step, values = read[name]
        result.append(first.sibling(name, start, end, step, values))
    return result


class DataSource:
    """Whisper files under ``data_dir``, optionally carbon's cache through ``carbonlink``
    and tagged series through ``tag_index``.

    ``store`` reads the files (default: a WhisperStore of its own, closed by :meth:`close`).
    """

    def __init__(self, data_dir: str | os.PathLike, carbonlink: CacheClient | None = None,
                 tag_index: TagFinder | None = None, store: WhisperStore | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.carbonlink = carbonlink
        self.tag_index = tag_index
        self.store = store if store is not None else WhisperStore(max_open_files=open_file_budget())
        self.headers = HeaderCache()

    def close(self) -> None:
        """Close the files the store keeps open."""
        self.store.close()

    def find(self, pattern: str, limit: int | None = None) -> list[tuple[str, str | Path]]:
        """``(metric, file)`` of every whisper file ``pattern`` matches, sorted by metric.

        A ``seriesByTag(...)`` pattern asks the tag index (TagQueryError for
        bad expressions or when there is no index). Raises
        ``storage.finder.FindLimitExceeded`` past ``limit`` matches.
        """
        if not is_series_by_tag(pattern):
            return expand_leaves(self.data_dir, [pattern], limit)
        if self.tag_index is None:
            raise TagQueryError(f"cannot find series pattern={pattern}: this server has no tag index")
        found = tagged_files(pattern, self.tag_index.find_series, self.data_dir)
        if limit is not None and len(found) > limit:
            raise FindLimitExceeded(f"cannot find series pattern={pattern}: it matches more than {limit} series")
        return found

    def leaves(self, pattern: str, limit: int | None = None) -> list[Leaf]:
        """The files ``pattern`` matches with their headers; unreadable files are logged and left out."""
        found = []
        for name, fs_path in self.find(pattern, limit):
            try:
                header, identity = self.headers.get(os.fspath(fs_path))
            except (OSError, WhisperException) as exc:
                log.warning("cannot read header of file=%s: %s", fs_path, exc)
                continue
            found.append(Leaf(name, fs_path, header, identity))
        return found

    def fetch(
        self,
        patterns: Iterable[str],
        start: int,
        end: int,
        now: int,
        *,
        x_files_factor: float = 0.0,
        leaves: Mapping[str, Sequence[Leaf]] | None = None,
    ) -> dict[str, list[Series]]:
        """Series of every pattern over ``(start, end]``, read in one pass.

        ``leaves`` (from planning) saves finding the files again. A file
        matched by several patterns is read once.
        """
        patterns = list(dict.fromkeys(patterns))
        matched = {
            pattern: list(leaves[pattern]) if leaves is not None and pattern in leaves
            else self.leaves(pattern)
            for pattern in patterns
        }
        by_name: dict[str, Leaf] = {}
        for found in matched.values():
            for leaf in found:
                by_name.setdefault(leaf.name, leaf)
        read = self._read_all(by_name.values(), start, end, now)
        return {
            pattern: _pattern_series(pattern, [leaf.name for leaf in found if leaf.name in read], read,
                                     x_files_factor)
            for pattern, found in matched.items()
        }

    def _read_all(
        self, leaves: Iterable[Leaf], start: int, end: int, now: int
    ) -> dict[str, tuple[int, int, int, np.ndarray]]:
        """``name -> (start, end, step, values)`` for every file with data, cache merged in."""
        fetched: dict[str, tuple[int, int, int, np.ndarray]] = {}
        read_leaves: dict[str, Leaf] = {}
        fetch = self.store.fetch
        for leaf in leaves:
            try:
                result = fetch(leaf.fs_path, start, end, now)
            except (OSError, WhisperException) as exc:
                log.warning("cannot fetch file=%s: %s", leaf.fs_path, exc)
                continue
            if result is not None:
                (first, until, step), values = result
                values.flags.writeable = False
                fetched[leaf.name] = (first, until, step, values)
                read_leaves[leaf.name] = leaf
        if self.carbonlink and fetched:
            for name, points in self.carbonlink.cache_query_bulk(fetched).items():
                if points and name in fetched:
                    first, until, step, values = fetched[name]
                    header = self._header_for_merge(read_leaves[name])
                    merged = merge_cached(values, first, step, points, header.aggregation_method,
                                          header.archives[0].seconds_per_point)
                    merged.flags.writeable = False
                    fetched[name] = (first, until, step, merged)
        return fetched

    def _header_for_merge(self, leaf: Leaf) -> Header:
        """The file's current header (its aggregation decides how cached points merge)."""
        try:
            return self.headers.get(str(leaf.fs_path))[0]
        except (OSError, WhisperException):
            return leaf.header


__all__ = [
    "CacheClient", "DataSource", "HeaderCache", "Leaf", "TagFinder", "fetch_interval", "merge_cached",
    "open_file_budget",
]
