"""Whitelist and blacklist of metric names (carbon's USE_WHITELIST).

Each file holds one Python regular expression per line, searched anywhere in
the name (``re.search``); lines starting with ``#`` and blank lines are
skipped; a pattern that does not compile is logged and skipped. A missing or
empty whitelist lets everything through. Files are re-read when their mtime
changes, so editing them needs no restart.
"""
from __future__ import annotations

import logging
import os
import re
from enum import Enum
from pathlib import Path

log = logging.getLogger(__name__)


class RegexList:
    """The patterns of one list file, reloaded on demand when the file changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.patterns: tuple[re.Pattern[str], ...] = ()
        self._mtime: float | None = None
        self.generation = 0
        self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Re-read the file if it appeared, vanished or changed; True when the patterns changed."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        except OSError as exc:
            log.error("cannot stat list=%s: %s (keeping previous patterns)", self.path, exc)
            return False
        if mtime == self._mtime:
            return False
        patterns = self._read() if mtime is not None else ()
        if patterns is None:
            return False
        self._mtime = mtime
        if patterns != self.patterns:
            self.patterns = patterns
            self.generation += 1
            log.info("loaded %d pattern(s) from %s", len(patterns), self.path)
            return True
        return False

    def _read(self) -> tuple[re.Pattern[str], ...] | None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.error("cannot read list=%s: %s (keeping previous patterns)", self.path, exc)
            return None
        patterns = []
        for number, line in enumerate(text.splitlines(), start=1):
            pattern = line.strip()
            if not pattern or line.startswith("#"):
                continue
            try:
                patterns.append(re.compile(pattern))
            except re.error as exc:
                log.error("cannot compile pattern=%r at %s:%d: %s (line skipped)",
                          pattern, self.path, number, exc)
        return tuple(patterns)

    def search(self, name: str) -> bool:
        return any(p.search(name) for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)


class Verdict(Enum):
    """Why a name is refused; the value is carbon's self-metric counter."""

    BLACKLISTED = "blacklistMatches"
    NOT_WHITELISTED = "whitelistRejects"


class MetricFilter:
    """Carbon's rule: the blacklist refuses, then a non-empty whitelist must match."""

    def __init__(self, whitelist: RegexList, blacklist: RegexList) -> None:
        self.whitelist = whitelist
        self.blacklist = blacklist

    @classmethod
    def from_files(
        cls, whitelist: str | os.PathLike[str], blacklist: str | os.PathLike[str]
    ) -> MetricFilter:
        return cls(RegexList(whitelist), RegexList(blacklist))

    @property
    def generation(self) -> tuple[int, int]:
        """Changes whenever either list's patterns change (callers cache verdicts by it)."""
        return (self.whitelist.generation, self.blacklist.generation)

    def reload_if_changed(self) -> bool:
        white = self.whitelist.reload_if_changed()
        black = self.blacklist.reload_if_changed()
        return white or black

    def verdict(self, name: str) -> Verdict | None:
        """None when the name may pass, else the reason it is refused."""
        if self.blacklist and self.blacklist.search(name):
            return Verdict.BLACKLISTED
        if self.whitelist and not self.whitelist.search(name):
            return Verdict.NOT_WHITELISTED
        return None
