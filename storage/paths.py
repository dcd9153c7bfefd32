"""The one place a metric name becomes a file path.

Metric names arrive from the network, so every rule that keeps a name inside
the data folder lives here: a name is split on ``.`` into directory nodes, the
last node gets ``.wsp``, and anything that could climb out of the folder, hide
a file, confuse the file system or exceed its limits is refused before any
path is built. Tagged names (``name;tag=value``) are stored under
``_tagged/`` by the SHA-256 of the name, as carbon does with
``TAG_HASH_FILENAMES = True``.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

WHISPER_SUFFIX = ".wsp"
TAGGED_DIR = "_tagged"
MAX_NAME_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, tmpfs
MAX_PATH_BYTES = 4095  # PATH_MAX (4096) minus the terminating NUL
_SHOWN_CHARS = 64
# Unicode's Cc (control) category is exactly these 65 code points
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidMetricName(ValueError):
    """A metric name that cannot be stored safely; the message says why."""


def metric_path(data_dir: str | os.PathLike, metric: str) -> Path:
    """Return ``<data_dir>/a/b/c.wsp`` for ``a.b.c`` (or the ``_tagged`` hash path).

    Raises InvalidMetricName for names that are empty, contain control
    characters or path separators, have empty nodes (``a..b``, ``.a``, ``a.``),
    exceed file-system name or path limits, or would resolve outside
    ``data_dir`` through existing symbolic links.
    """
    return Path(metric_file(data_dir, metric))


def metric_file(data_dir: str | os.PathLike, metric: str) -> str:
    """:func:`metric_path` as a str (no Path built per metric)."""
    return locate_metric(data_dir, metric)[0]


def locate_metric(data_dir: str | os.PathLike, metric: str,
                  known_dirs: set[str] | None = None) -> tuple[str, bool]:
    """(:func:`metric_file`, whether the check found the file missing): the carbon writer's
    form, which creates a missing file without trying to open it first.

    ``known_dirs`` (the caller's, kept across calls) holds folders already seen to be real
    folders inside the data folder; they are not looked at again, and the folders this
    check sees are added. (A folder replaced by a link after it was seen is not noticed,
    as one replaced between any check and the write is not.)
    """
    root = os.fspath(data_dir)
    _check_characters(metric)
    if ";" in metric:
        digest = hashlib.sha256(metric.encode("utf-8")).hexdigest()
        parts = (TAGGED_DIR, digest[0:3], digest[3:6], digest + WHISPER_SUFFIX)
    else:
        parts = _plain_parts(metric)
    path = os.path.join(root, *parts)
    size = len(os.fsencode(path))
    if size > MAX_PATH_BYTES:
        raise _invalid(metric, f"the path would be {size} bytes, over the {MAX_PATH_BYTES}-byte limit")
    return path, _check_inside(root, parts, path, metric, known_dirs)


def _check_characters(metric: str) -> None:
    if not isinstance(metric, str):
        raise InvalidMetricName(f"cannot map metric={metric!r}: a metric name must be str")
    if not metric:
        raise _invalid(metric, "the name is empty")
    try:
        metric.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(metric, "the name is not valid UTF-8") from None
    control = _CONTROL.search(metric)
    if control is not None:
        raise _invalid(metric, f"control character {control.group()!r} at position {control.start()}")


def _plain_parts(metric: str) -> tuple[str, ...]:
    for separator in ("/", "\\"):
        if separator in metric:
            raise _invalid(metric, f"{separator!r} is not allowed in a metric name")
    nodes = metric.split(".")
    for index, node in enumerate(nodes):
        if not node:
            raise _invalid(metric, f"node {index} is empty (leading, trailing or doubled '.')")
    names = (*nodes[:-1], nodes[-1] + WHISPER_SUFFIX)
    for index, name in enumerate(names):
        size = len(name.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            raise _invalid(
                metric,
                f"node {index} would be a {size}-byte file name, over the {MAX_NAME_BYTES}-byte limit",
            )
    if nodes[0] == TAGGED_DIR:
        raise _invalid(metric, f"{TAGGED_DIR!r} is reserved for tagged series")
    return names


def _check_inside(root: str, parts: tuple[str, ...], path: str, metric: str,
                  known_dirs: set[str] | None) -> bool:
    """Refuse paths that existing symbolic links would send outside the data folder;
    True when a node is missing (so is the file).

    Only a link below the root can do that (no node is ``..``), so the nodes are looked at
    from the root down and the walk ends at the first one missing; only a path going
    through a link is resolved in full. A folder is known only once the walk has passed
    every folder above it, so when the file's own folder is known only the file is looked at.
    """
    last = len(parts) - 1
    if known_dirs is not None and last and path[:path.rindex(os.sep)] in known_dirs:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return True
        return _missing_once_resolved(root, path, metric) if stat.S_ISLNK(mode) else False
    current = root
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        if known_dirs is not None and current in known_dirs:
            continue
        try:
            mode = os.lstat(current).st_mode
        except OSError:  # missing (or unreadable): nothing below it can be a link
            return True
        if stat.S_ISLNK(mode):
            return _missing_once_resolved(root, path, metric)
        if known_dirs is not None and index < last and stat.S_ISDIR(mode):
            known_dirs.add(current)
    return False


def _missing_once_resolved(root: str, path: str, metric: str) -> bool:
    """For a path through a link: refuse it if it resolves outside ``root``, else whether
    what it resolves to is missing."""
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    if os.path.commonpath([real_root, real_path]) != real_root:
        raise _invalid(metric, f"the path resolves to {real_path!r}, outside the data directory")
    return not os.path.lexists(real_path)


def _invalid(metric: str, reason: str) -> InvalidMetricName:
    return InvalidMetricName(f"cannot map metric={_shown(metric)}: {reason}")


def _shown(metric: str) -> str:
    """repr() of the name, cut short so hostile names cannot flood the logs."""
    if len(metric) <= _SHOWN_CHARS:
        return repr(metric)
    return f"{metric[:_SHOWN_CHARS]!r}...({len(metric)} chars)"
