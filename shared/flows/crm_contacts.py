"""CRM → Square (flow `crm-contacts`): a contact change read by change tracking becomes one sparse
UpdateCustomer carrying only the columns the CRM owns (or won), sent with Square's `version`; a version
mismatch re-reads the customer and decides again; Tillbridge's own CRM writes coming back are suppressed
(app user + the fingerprints in the ledger). Deletes and unlinked contacts follow the two-way options.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.core.errors import (
    BusyError,
    ConcurrencyError,
    InvalidDataError,
    NeedsReviewError,
    TerminalError,
    TransientError,
)
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.flows import customer_mapping as cm
from shared.flows.context import FlowContext, Outcome
from shared.flows.crm_lifecycle import (
    CUSTOMER,
    delete_in_square,
    deleted,
    mapped_customer,
    rejected,
    settle_contact,
    unlinked,
)
from shared.flows.customers import sync_customer
from shared.flows.ownership import (
    CrmDeletes,
    CrmToSquare,
    Sides,
    SyncedField,
    decide_crm_to_square,
    fingerprints,
    square_changes,
    state_hash,
)
from shared.flows.two_way import (
    ROW_STATE_COLUMNS,
    active,
    contact_fields,
    dump_fields,
    load_fields,
    owners,
    square_changed_at,
    square_fingerprints,
    trace_conflict,
)
from shared.monitoring import tracing
from shared.pipeline.messages import synthetic_command
from shared.pipeline.registry import CRM_CONTACTS_FLOW

log = logging.getLogger("tillbridge.crm_contacts")
FLOW = CRM_CONTACTS_FLOW
MAX_VERSION_RETRIES = 3


def contact_select(fields: tuple[SyncedField, ...], columns: cm.ContactColumns) -> list[str]:
    """What the poller and this flow read of a contact: the mapped columns, the key and the row's state."""
    return [*(f.column for f in fields), columns.square_id, *ROW_STATE_COLUMNS]


async def sync_contact(command: SyncCommand, ctx: FlowContext) -> Outcome:
    """Apply one CRM contact change to Square; raises Transient or Terminal errors for the worker to route."""
    if command.event_type == "contact.deleted":
        return await deleted(command.entity_id, ctx)
    row = await _load_row(command, ctx)
    if row is None:
        return await deleted(command.entity_id, ctx)
    square_id = str(row.get(ctx.columns.square_id) or "")
    if not square_id:
        return await unlinked(command.entity_id, row, ctx)
    ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
    if ledger is not None and ledger.status != "active":
        tracing.step("skipped", reason=f"the Square customer is {ledger.status}")
        return Outcome.IGNORED
    if row.get("statecode") == 1 and ctx.two_way.crm_deletes is CrmDeletes.DELETE:
        async with ctx.writers.hold((CUSTOMER, square_id)):
            return await delete_in_square(command.entity_id, square_id, ctx)
    async with ctx.writers.hold((CUSTOMER, square_id)):  # not beside a Square event of the same customer
        ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
        outcome = await _push(command, row, square_id, ledger, ctx)
    await settle_contact(ctx, command.entity_id, square_id)
    return outcome


async def _load_row(command: SyncCommand, ctx: FlowContext) -> dict[str, Any] | None:
    data_object = (command.event.get("data") or {}).get("object") or {}
    row = None if command.fetch else data_object.get("contact")
    source = "change_tracking"
    if not isinstance(row, dict):
        row = await ctx.dataverse.get(cm.CONTACTS, command.entity_id, contact_select(contact_fields(ctx), ctx.columns))
        source = "crm"
    tracing.step("fetched", source=source, found=row is not None, row_version=(row or {}).get("versionnumber"))
    tracing.snapshot("crm_row", row)
    return row


async def _app_user(ctx: FlowContext) -> str:
    options = ctx.two_way
    if options.app_user_id is None:
        options.app_user_id = str((await ctx.dataverse.who_am_i()).get("UserId", "")).lower()
    return options.app_user_id


def _decide(
    row: dict[str, Any], sides: Sides, ctx: FlowContext, forced: list[str], square: cm.ContactPlan | None
) -> CrmToSquare:
    square_now = square_fingerprints(ctx, square.payload) if square is not None else None
    decision = decide_crm_to_square(
        row,
        owners=owners(ctx),
        fields=contact_fields(ctx),
        sides=sides,
        square_now=square_now,
        square_values=square.payload if square is not None else None,
        forced=forced,
        rule=ctx.two_way.conflicts,
        region=ctx.phone_region,
    )
    for conflict in decision.conflicts:
        trace_conflict(ctx, conflict, FLOW)
    if decision.needs_review:
        columns = ", ".join(c.column for c in decision.conflicts if c.winner == "review")
        raise NeedsReviewError(f"Square and the CRM both changed {columns} since the last sync", ())
    return decision


async def _push(
    command: SyncCommand, row: dict[str, Any], square_id: str, ledger: LedgerRow | None, ctx: FlowContext
) -> Outcome:
    row_version = row.get("versionnumber")
    known_version = ledger.crm_row_version if ledger is not None else None
    if known_version is not None and isinstance(row_version, int) and row_version < known_version:
        tracing.step("gated", decision="stale", row_version=row_version, ledger_row_version=known_version)
        return Outcome.STALE
    if ledger is not None and ledger.pushed_version is not None and (ledger.version or -1) < ledger.pushed_version:
        current = await ctx.square.retrieve_customer(square_id)  # an earlier attempt's apply did not finish
        if current is not None:
            await _apply_returned(ctx, square_id, current)
            ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
            fresh = await ctx.dataverse.get(
                cm.CONTACTS, command.entity_id, contact_select(contact_fields(ctx), ctx.columns)
            )
            row = fresh if fresh is not None else row  # the apply may have written the contact
    crm_now = fingerprints(row, contact_fields(ctx), ctx.phone_region)
    crm_before = load_fields(ledger.crm_fields) if ledger else None
    forced = _still_won(command, crm_now)
    unchanged = crm_before is not None and all(crm_before.get(c) == fp for c, fp in crm_now.items())
    if unchanged and command.event_type != "contact.push":
        own = str(row.get("_modifiedby_value") or "").lower() == await _app_user(ctx)
        tracing.step("suppressed" if own else "unchanged", reason="own_write" if own else "no synced column changed")
        ctx.metrics.increment("crm_changes_suppressed" if own else "crm_changes_unchanged", flow=FLOW)
        return Outcome.SUPPRESSED if own else Outcome.UNCHANGED
    if not active(ctx):
        tracing.step("skipped", reason="every contact column is Square's")
        return Outcome.IGNORED
    square_before = load_fields(ledger.square_fields) if ledger else None
    square = None
    base_at = ledger.updated_at if ledger else None
    if ledger is None or square_before is None or ledger.version is None:  # nothing recorded yet: ask Square
        raw = await ctx.square.retrieve_customer(square_id)
        if raw is None:
            tracing.step("skipped", reason="the Square customer no longer exists")
            return Outcome.IGNORED
        square = mapped_customer(raw, ctx)
        version: int | None = raw.get("version")
        base_at = raw.get("updated_at")
    else:
        version = ledger.version
    sides = Sides(square_before, crm_before, ledger.updated_at if ledger else None, row.get("modifiedon"))
    decision = _decide(row, sides, ctx, forced, square)
    if not decision.send:
        await _remember_crm(ctx, square_id, row, crm_now)
        tracing.step("unchanged", reason="Square already holds every column the CRM owns")
        return Outcome.UNCHANGED
    base = square_fingerprints(ctx, square.payload) if square is not None else None
    return await _send(row, square_id, ledger, ctx, _Attempt(version, decision, sides, forced, base, base_at))


def _still_won(command: SyncCommand, crm_now: dict[str, str]) -> list[str]:
    """The `both` columns a Square-side decision gave to the CRM, if the CRM still holds the value that won
    (a value Tillbridge has written since is not the CRM's to send)."""
    won = ((command.event.get("data") or {}).get("object") or {}).get("forced") or {}
    if not isinstance(won, dict):
        return []
    return [column for column, fp in won.items() if crm_now.get(column) == fp]


@dataclass
class _Attempt:
    """One UpdateCustomer under way: the Square version it is sent on (and that version's fingerprints and
    time, when read from Square rather than the ledger) and what it carries."""

    version: int | None
    decision: CrmToSquare
    sides: Sides
    forced: list[str]
    square_base: dict[str, str] | None = None
    base_at: str | None = None


async def _send(
    row: dict[str, Any], square_id: str, ledger: LedgerRow | None, ctx: FlowContext, attempt: _Attempt
) -> Outcome:
    fields = contact_fields(ctx)
    ledger = await _write_ahead(ctx, square_id, row, ledger, attempt)
    for _ in range(MAX_VERSION_RETRIES):
        body = square_changes(row, attempt.decision.send, fields, ctx.phone_region)
        tracing.snapshot("square_update", body)
        tracing.step("sending", columns=list(attempt.decision.send), version=attempt.version)
        try:
            updated = await ctx.square.update_customer(square_id, body, version=attempt.version)
        except ConcurrencyError:
            ctx.metrics.increment("crm_version_conflicts", flow=FLOW)
            raw = await ctx.square.retrieve_customer(square_id)
            if raw is None:
                await _clear_marker(ctx, square_id)
                tracing.step("skipped", reason="the Square customer no longer exists")
                return Outcome.IGNORED
            square = mapped_customer(raw, ctx)
            known = await ctx.state.get_ledger(CUSTOMER, square_id)
            square_at = square_changed_at(known, raw.get("version"), raw.get("updated_at"))
            sides = Sides(attempt.sides.square_before, attempt.sides.crm_before, square_at, row.get("modifiedon"))
            tracing.step("version_mismatch", square_version=raw.get("version"))
            decision = _decide(row, sides, ctx, attempt.forced, square)
            base = square_fingerprints(ctx, square.payload) if square is not None else None
            attempt = _Attempt(raw.get("version"), decision, sides, attempt.forced, base, raw.get("updated_at"))
            if not decision.send:
                await _clear_marker(ctx, square_id)
                return Outcome.UNCHANGED
            ledger = await _write_ahead(ctx, square_id, row, ledger, attempt)
            continue
        except InvalidDataError as error:
            await _clear_marker(ctx, square_id)
            raise rejected(error, fields) from error
        if updated is None:
            await _clear_marker(ctx, square_id)
            tracing.step("skipped", reason="the Square customer no longer exists")
            return Outcome.IGNORED
        caught_up = await _commit_sent(ctx, square_id, row, attempt, updated)
        ctx.metrics.increment("crm_changes_sent", flow=FLOW)
        tracing.step("written", target="square", version=updated.get("version"), columns=list(attempt.decision.send))
        if not caught_up:
            await _apply_returned(ctx, square_id, updated)
        return Outcome.WRITTEN
    raise TransientError(f"Square customer {square_id} kept changing while its CRM edit was being sent")


async def _write_ahead(
    ctx: FlowContext, square_id: str, row: dict[str, Any], ledger: LedgerRow | None, attempt: _Attempt
) -> LedgerRow:
    """Before the write: the version Tillbridge's own update will produce and the values it will carry, so
    that version's webhook is recognised as this write even if it overtakes the commit — only when the update
    is sent on the version the CRM already has (else that webhook carries Square changes the CRM needs)."""
    current = await ctx.state.get_ledger(CUSTOMER, square_id) or ledger
    current = current or LedgerRow(kind=CUSTOMER, square_id=square_id, dataverse_id=str(row.get("contactid") or ""))
    predicted = dict(load_fields(current.square_fields) or {})
    predicted.update({c: attempt.decision.crm_now[c] for c in attempt.decision.send})
    on_applied = attempt.version is not None and attempt.version == current.version
    current.echo_version = attempt.version + 1 if on_applied and attempt.version is not None else None
    current.echo_hash = state_hash(predicted) if current.echo_version is not None else None
    return await ctx.state.save_ledger(current)


def _remember_row(ledger: LedgerRow, row: dict[str, Any], crm_now: dict[str, str]) -> None:
    ledger.crm_fields = dump_fields({**(load_fields(ledger.crm_fields) or {}), **crm_now})
    ledger.crm_modified_on = row.get("modifiedon") or ledger.crm_modified_on
    if isinstance(row.get("versionnumber"), int):
        ledger.crm_row_version = max(row["versionnumber"], ledger.crm_row_version or 0)


async def _commit_sent(
    ctx: FlowContext, square_id: str, row: dict[str, Any], attempt: _Attempt, updated: dict[str, Any]
) -> bool:
    """After the write: what the CRM holds; and if the CRM had every Square change up to the version the
    update was sent on, the new version (its webhook then changes nothing). False when it had not."""
    new_version = updated.get("version")
    plan = mapped_customer(updated, ctx)
    for _ in range(MAX_VERSION_RETRIES):
        ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
        if ledger is None:
            return False
        _remember_row(ledger, row, attempt.decision.crm_now)
        if ledger.echo_version is not None and isinstance(new_version, int) and ledger.echo_version <= new_version:
            ledger.echo_version = ledger.echo_hash = None
        if isinstance(new_version, int):  # this version's time is Tillbridge's write, not a change in Square
            ledger.pushed_version, ledger.pushed_base_at = new_version, attempt.base_at
        caught_up = ledger.version is not None and ledger.version == attempt.version
        if caught_up and plan is not None and isinstance(new_version, int):
            ledger.version, ledger.updated_at = new_version, updated.get("updated_at")
            ledger.square_fields = dump_fields(square_fingerprints(ctx, plan.payload))
            ledger.content_hash = plan.content_hash
        try:
            await ctx.state.save_ledger(ledger)
            return caught_up or (
                ledger.version is not None and isinstance(new_version, int) and ledger.version >= new_version
            )
        except ConcurrencyError:
            continue  # the customer flow committed in between (perhaps this very echo): read again
    raise TransientError(f"ledger row of {square_id} kept changing")


async def _apply_returned(ctx: FlowContext, square_id: str, updated: dict[str, Any]) -> None:
    """The update went out on a newer Square version than the CRM has: apply the customer Square returned
    (the customer flow, under the owners) so the CRM gets those Square changes now, and the older webhooks
    still on their way are stale instead of bringing back values Square no longer holds."""
    version = updated.get("version")
    command = synthetic_command(
        event_id=f"crm-applied-{square_id}-{version}",
        event_type="customer.updated",
        kind=CUSTOMER,
        entity_id=square_id,
        received_at=ctx.clock.now().isoformat(),
        data_object={"customer": updated},
        source_version=version if isinstance(version, int) else None,
    )
    tracing.step("applying", reason="Square had changes the CRM had not seen", version=version)
    for attempt in range(1, MAX_VERSION_RETRIES + 1):
        try:
            await sync_customer(command, ctx)
            return
        except TerminalError as error:  # the customer's own webhook meets the same problem and records it
            tracing.step("apply_failed", reason_code=error.reason_code)
            return
        except BusyError:
            raise  # another host is writing this customer: this change is retried later as a whole
        except TransientError:  # the ledger row changed meanwhile (a webhook of this customer): again
            if attempt == MAX_VERSION_RETRIES:
                raise  # the retry of this change sees the version not applied and applies it (_push)


async def _clear_marker(ctx: FlowContext, square_id: str) -> None:
    ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
    if ledger is not None and ledger.echo_version is not None:
        ledger.echo_version = ledger.echo_hash = None
        await ctx.state.save_ledger(ledger)


async def _remember_crm(ctx: FlowContext, square_id: str, row: dict[str, Any], crm_now: dict[str, str]) -> None:
    """Nothing to send: keep what the CRM now holds, so the Square side compares with the truth."""
    ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
    if ledger is None:
        return
    _remember_row(ledger, row, crm_now)
    await ctx.state.save_ledger(ledger)
