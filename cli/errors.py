"""Exit codes of the ``tinkerbell`` command, and the one error type that carries them.

Every failure the command expects ends as a ``CliError``: one line on stderr (and,
with ``--json``, one JSON object on stdout), then its exit code; never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # the command did its job; a followed task ended COMPLETED
    FAILED = 1  # a followed task ended FAILED
    USAGE = 2  # bad command line, unreadable input file, missing configuration
    CANCELLED = 3  # a followed task ended CANCELLED
    REFUSED = 4  # the API refused the request (4xx: bad input, not found, conflict, rate limit)
    AUTH = 5  # not signed in, or the sign-in / the token was refused
    NETWORK = 6  # the service could not be reached, or answered 5xx after retries
    TIMEOUT = 7  # --timeout passed before the followed task finished (it keeps running)
    INTERNAL = 8  # anything unexpected (a bug in the client): reported in one line


EXIT_CODES_HELP = """\
exit codes:
  0  ok; a followed task (submit --wait, watch) ended COMPLETED
  1  the task ended FAILED
  2  usage: bad arguments, unreadable file, missing configuration
  3  the task ended CANCELLED
  4  refused by the API (4xx): invalid input, unknown task, conflict, rate limit
  5  authentication: not logged in, or the sign-in or the token was refused
  6  network: the service is unreachable, or answered 5xx after retries
  7  timeout: --timeout passed before the task finished (it keeps running)
  8  unexpected error in the client"""

# A task's final status, as the exit code of the command that followed it.
STATUS_EXIT = {"COMPLETED": Exit.OK, "FAILED": Exit.FAILED, "CANCELLED": Exit.CANCELLED}


@dataclass
class CliError(Exception):
    """An expected failure: its message is for the user, its code for scripts."""

    message: str
    exit: Exit
    code: str = ""  # the API's error code when the API gave one (e.g. invalid_argument)
    field: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "code": self.code or self.exit.name.lower(),
                "field": self.field,
                "exit_code": int(self.exit),
            }
        }


def exit_for_http_status(status: int) -> Exit:
    """The exit code of an HTTP error answer."""
    if status in (401, 403):
        return Exit.AUTH
    if 400 <= status < 500:
        return Exit.REFUSED
    return Exit.NETWORK


def exit_for_task_status(status: str) -> Exit:
    return STATUS_EXIT.get(status, Exit.OK)
