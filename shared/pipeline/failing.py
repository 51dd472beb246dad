"""A terminal error becomes a failure record and flags the object's ledger row (so its next success
resolves the failure) — the one definition shared by the worker and the bulk path."""

from __future__ import annotations

from shared.core.errors import InvalidDataError, NeedsReviewError, TerminalError
from shared.core.models import SyncCommand
from shared.core.ports import Clock, FailureRecord, LedgerRow, StateStore
from shared.pipeline.ledger import release
from shared.pipeline.messages import version_label


async def record_terminal(
    state: StateStore, clock: Clock, command: SyncCommand, flow: str, error: TerminalError
) -> str | None:
    """Record the failure of one object; returns the failing field(s), if the error names any."""
    now = clock.now().isoformat()
    failed_field = None
    if isinstance(error, InvalidDataError):
        failed_field = ",".join(problem.field for problem in error.problems)
    candidates = error.candidates if isinstance(error, NeedsReviewError) else ()
    await state.record_failure(
        FailureRecord(
            flow=flow,
            record_id=command.entity_id,
            reason_code=error.reason_code,
            message=str(error),
            event_id=command.event_id,
            event_type=command.event_type,
            field=failed_field,
            candidates=candidates,
            first_seen=now,
            last_seen=now,
            source_version=version_label(command),
        )
    )
    await flag_ledger(state, command)
    return failed_field


async def flag_ledger(state: StateStore, command: SyncCommand) -> None:
    """Mark the object as having an open failure, so its next success resolves it."""
    row = await state.get_ledger(command.entity_kind, command.entity_id)
    row = row if row is not None else LedgerRow(kind=command.entity_kind, square_id=command.entity_id)
    if row.failure_open and row.pending_version is None and row.failed_version == command.source_version:
        return
    row.failure_open = True
    row.failed_version = command.source_version
    if row.pending_event_id in (None, command.event_id):  # another writer's live claim stays its own
        release(row)
    await state.save_ledger(row)
