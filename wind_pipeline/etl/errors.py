"""One small hierarchy: transient errors are worth retrying, terminal ones are reported once.

Every error carries a message that says what went wrong and a hint that says what to do next.
Which exit code each class gets is the CLI's business (``wind_pipeline.cli``), not the core's.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the ETL core raises on purpose."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class TransientError(PipelineError):
    """May succeed if tried again later: a connection refused or dropped, a timeout, a 5xx."""


class TerminalError(PipelineError):
    """Will fail the same way every time until someone changes the input or the setup."""


class ApiUnavailableError(TransientError):
    """The connector API could not be reached, or kept answering 5xx, after every retry."""


class TargetUnavailableError(TransientError):
    """The target database refused the connection or dropped it (a restart, a failover)."""


class ApiRejectedError(TerminalError):
    """The connector API answered 4xx: the request itself is wrong (its detail is kept)."""

    def __init__(self, status: int, detail: str, *, hint: str = "") -> None:
        super().__init__(f"the connector API rejected the request ({status}): {detail}", hint=hint)
        self.status = status
        self.detail = detail


class DatabaseError(TerminalError):
    """The target database refused a statement (not a connection problem: that is transient)."""


class NoSourceDataError(TerminalError):
    """A requested day has no readings at all in the source."""


class InvalidInputError(TerminalError):
    """A date, range, variable or turbine list given by the user does not make sense."""


class StackNotRunningError(TerminalError):
    """No target is configured: ``./.env`` names a local stack that is not running, or there is
    no stack and nothing names a database. Retrying cannot help; starting the stack does."""
