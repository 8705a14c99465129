"""The one error type shown to a user as one line (no traceback), with an exit status.

Raised by any layer for a mistake the user can fix: bad arguments or options, inputs that
cannot be read, an output directory that already holds a run. The dispatcher
(``khabar.pipeline.cli``) prints it as ``khabar <command>: error: <message>``.
"""

from __future__ import annotations

import difflib


class CliError(Exception):
    """An error to show as one line, with exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


#: Exit status of a run whose data failed a check (every record a dead letter, the
#: dead-letter rate above --max_dead_letter_rate; inspect --against with --fail-on-alerts).
EXIT_DATA_CHECK = 3


def did_you_mean(word: str, choices: object) -> str:
    """``"; did you mean --output?"`` for a misspelt flag or command, else ``""``."""
    stem = word.split("=", 1)[0]
    close = difflib.get_close_matches(stem, list(choices), n=1, cutoff=0.75)  # type: ignore[call-overload]
    return f"; did you mean {close[0]}?" if close else ""
