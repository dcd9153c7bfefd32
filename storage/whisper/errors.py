"""whisper 1.1.10's exception classes, same names and hierarchy, so `except whisper.X` keeps working."""


class WhisperException(Exception):
    """Base class for every error this package raises on purpose."""


class InvalidConfiguration(WhisperException):
    """An archive list (or a file that already exists) cannot be used to create a file."""


class InvalidAggregationMethod(WhisperException):
    """An aggregation method name (or type number) that Whisper does not know."""


class InvalidTimeInterval(WhisperException):
    """A fetch whose from time lies after its until time."""


class InvalidXFilesFactor(WhisperException):
    """An xFilesFactor that is not a number between 0 and 1."""


class TimestampNotCovered(WhisperException):
    """A single update for a time that no archive of the file covers."""


class CorruptWhisperFile(WhisperException):
    """A file whose bytes cannot be a Whisper file; `path` names it, `error` says why."""

    def __init__(self, error: str, path: str) -> None:
        Exception.__init__(self, error)
        self.error = error
        self.path = path

    def __repr__(self) -> str:
        return f"<CorruptWhisperFile[{self.path}] {self.error}>"

    def __str__(self) -> str:
        return f"{self.error} ({self.path})"
