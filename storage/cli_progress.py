"""Progress on stderr for commands that walk a whole tree of whisper files."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from storage.paths import WHISPER_SUFFIX

BAR_WIDTH = 30


def whisper_files(directory: str | os.PathLike) -> list[Path]:
    """Every ``*.wsp`` file below ``directory``, in a stable (sorted) order."""
    found: list[Path] = []
    for parent, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        found.extend(Path(parent, name) for name in sorted(filenames) if name.endswith(WHISPER_SUFFIX))
    return found


class Progress:
    """A one-line bar redrawn in place; silent unless the stream is a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        filled = BAR_WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {label[-40:]:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def each_with_progress(paths: list[Path], stream: TextIO | None = None) -> Iterator[Path]:
    """Yield the paths, advancing a progress bar after each one."""
    progress = Progress(len(paths), stream)
    try:
        for path in paths:
            yield path
            progress.advance(str(path))
    finally:
        progress.close()
