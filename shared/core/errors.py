"""The error taxonomy: every failure is Transient (retry later) or Terminal (record and move on).

    TillbridgeError
    ├── TransientError          retry: 429, 5xx, timeouts, network, lock conflicts
    │   └── ThrottledError      carries the server's Retry-After
    └── TerminalError           record a failure and complete the message
        ├── InvalidDataError    a field of the source object cannot be written (field + reason)
        ├── NeedsReviewError    matching found more than one candidate (or a two-way conflict to review)
        ├── ChangeTokenExpiredError  a Dataverse change-tracking token is too old: resynchronise in full
        └── ConfigurationError  a setting is missing or malformed (lists every bad setting)

Anything that is not a TillbridgeError counts as transient (unknown errors are retried, then dead-lettered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TillbridgeError(Exception):
    """Base of every error Tillbridge raises on purpose."""

    reason_code = "error"


class TransientError(TillbridgeError):
    """Retrying later may succeed."""

    reason_code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The remote service asked us to slow down (HTTP 429 or equivalent)."""

    reason_code = "throttled"


class TerminalError(TillbridgeError):
    """Retrying the same input cannot succeed; record a failure with a reason."""

    reason_code = "terminal"

    def __init__(self, message: str, *, reason_code: str | None = None) -> None:
        super().__init__(message)
        if reason_code:
            self.reason_code = reason_code


@dataclass(frozen=True)
class FieldProblem:
    """One field of a source object that cannot be written, and why."""

    field: str
    reason: str


class InvalidDataError(TerminalError):
    """The source object has fields that cannot be written to the CRM."""

    reason_code = "invalid_data"

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        summary = "; ".join(f"{p.field}: {p.reason}" for p in self.problems)
        super().__init__(f"invalid data: {summary}")


class NeedsReviewError(TerminalError):
    """Matching found several CRM candidates; a person must choose."""

    reason_code = "needs_review"

    def __init__(self, message: str, candidates: Sequence[str]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


class ConfigurationError(TerminalError):
    """Settings are missing or malformed. The message names every bad setting, never a value."""

    reason_code = "configuration"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} setting problem(s):\n{listing}")


def is_transient(error: BaseException) -> bool:
    """Unknown errors count as transient: retried, then dead-lettered, never silently dropped."""
    return not isinstance(error, TerminalError)


class ConcurrencyError(TransientError):
    """Someone else changed the row since we read it (ETag mismatch); re-read and try again."""

    reason_code = "concurrency"


class BusyError(TransientError):
    """Another writer's claim on the object is live (within its lease): look again soon."""

    reason_code = "busy"


class LostCommitError(TransientError):
    """The CRM write happened, but another writer moved the ledger row on before the commit: the write may
    have landed after a newer one, so the retry re-applies Square's current copy (even at an equal version)."""

    reason_code = "lost_commit"


class ChangeTokenExpiredError(TerminalError):
    """Dataverse no longer knows the change-tracking token (ExpiredVersionStamp 0x80044352: "Version stamp
    associated with the client has expired. Please perform a full sync."): a full pass replaces it."""

    reason_code = "change_token_expired"
