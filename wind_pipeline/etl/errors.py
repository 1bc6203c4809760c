"""One small hierarchy: transient errors are worth retrying, terminal ones are reported once.

Every error carries a message that says what went wrong and a hint that says what to do next;
the CLI prints ``error: <message> (<hint>)`` and exits non-zero, Dagster retries only transients.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the ETL core raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class TransientError(PipelineError):
    """May succeed if tried again later: a connection refused, a timeout, a 5xx."""


class TerminalError(PipelineError):
    """Will fail the same way every time until someone changes the input or the setup."""


class ApiUnavailableError(TransientError):
    """The connector API could not be reached, or kept answering 5xx, after every retry."""

    exit_code = 3


class ApiRejectedError(TerminalError):
    """The connector API answered 4xx: the request itself is wrong (its detail is kept)."""

    exit_code = 4

    def __init__(self, status: int, detail: str, *, hint: str = "") -> None:
        super().__init__(f"the connector API rejected the request ({status}): {detail}", hint=hint)
        self.status = status
        self.detail = detail


class DatabaseError(TerminalError):
    """The target database refused a connection or a statement."""

    exit_code = 5


class NoSourceDataError(TerminalError):
    """A requested day has no readings at all in the source."""

    exit_code = 6


class InvalidInputError(TerminalError):
    """A date, range or variable list given by the user does not make sense."""

    exit_code = 2
