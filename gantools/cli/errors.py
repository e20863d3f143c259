"""The one error type of the CLI: a one-line message plus the process exit code.

Commands raise :func:`usage` (exit 2: the arguments are wrong) or :func:`failure` (exit 1: the
arguments are fine but the work could not be done); :func:`gantools.cli.main` prints it as one
line ``error: ...`` on stderr. Click usage errors and ``OptionError`` need no wrapping: ``main``
translates them too.
"""

from __future__ import annotations

USAGE = 2
FAILURE = 1
INTERRUPTED = 130


class CliError(Exception):
    """A one-line error for the user, with the process exit code."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def usage(message: object) -> CliError:
    """Bad arguments: exit code 2."""
    return CliError(str(message), USAGE)


def failure(message: object) -> CliError:
    """Good arguments, failed work (unreadable weights, unwritable output): exit code 1."""
    return CliError(str(message), FAILURE)
