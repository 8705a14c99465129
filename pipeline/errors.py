"""The one error type shown to a user as one line (no traceback), with an exit status.

Raised by any layer for a mistake the user can fix: bad arguments or options, inputs that
cannot be read, an output directory that already holds a run. The dispatcher
(``khabar.pipeline.cli``) prints it as ``khabar <command>: error: <message>``.
"""

from __future__ import annotations


class CliError(Exception):
    """An error to show as one line, with exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
