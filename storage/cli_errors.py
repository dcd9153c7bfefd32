"""The one exception a ``carbyne whisper`` command raises to stop with a message."""


class CommandError(Exception):
    """Printed on stderr by the dispatcher, which then exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
