"""CRM → Square, the contact's life around the field sync: the contact's own ledger row (its link to a
Square customer, its open failure), deletes and deactivations (CRM_DELETES), contacts with no Square
customer (CRM_CREATE_IN_SQUARE), and the helpers both parts share."""

from __future__ import annotations

from typing import Any

from shared.core.errors import FieldProblem, InvalidDataError
from shared.core.ports import LedgerRow
from shared.flows import customer_mapping as cm
from shared.flows.context import FlowContext, Outcome
from shared.flows.customers import parse_customer
from shared.flows.ownership import CrmDeletes, SyncedField, column_of_square_field, fingerprints, square_changes
from shared.flows.two_way import contact_fields, dump_fields, square_fingerprints
from shared.monitoring import tracing
from shared.pipeline.ledger import release
from shared.pipeline.registry import CRM_CONTACTS_FLOW

FLOW = CRM_CONTACTS_FLOW
CUSTOMER, CONTACT = "customer", "contact"
CREATE_NEEDS = ("given_name", "family_name", "company_name", "email_address", "phone_number")


def mapped_customer(raw: dict[str, Any], ctx: FlowContext) -> cm.ContactPlan | None:
    """A Square customer in the CRM's shape (None when it cannot be mapped: the customer flow reports that)."""
    try:
        customer = parse_customer(raw)
        mapping = ctx.configuration.contact_mapping
        return cm.map_customer(customer, columns=ctx.columns, phone_region=ctx.phone_region, mapping=mapping)
    except InvalidDataError:
        return None


def rejected(error: InvalidDataError, fields: tuple[SyncedField, ...]) -> InvalidDataError:
    """Square's field errors, named by the CRM column a person must fix (Square's field and message kept)."""
    return InvalidDataError(
        [
            FieldProblem(column_of_square_field(p.field, fields), f"{p.reason} (Square field {p.field})")
            for p in error.problems
        ]
    )


async def settle_contact(ctx: FlowContext, contact_id: str, square_id: str) -> None:
    """The contact's own ledger row: which customer it is linked to (a CRM delete names only the contact)
    and whether a failure is open (resolved by this success)."""
    row = await ctx.state.get_ledger(CONTACT, contact_id)
    if row is not None and row.customer_id == square_id and not row.failure_open:
        return
    row = row or LedgerRow(kind=CONTACT, square_id=contact_id, dataverse_id=contact_id)
    had_failure = row.failure_open
    row.customer_id, row.failure_open, row.failed_version = square_id, False, None
    release(row)
    await ctx.state.save_ledger(row)
    if had_failure:
        await ctx.state.resolve_failure(FLOW, contact_id, "synced")


async def _linked_customer(ctx: FlowContext, contact_id: str) -> str | None:
    row = await ctx.state.get_ledger(CONTACT, contact_id)
    if row is not None and row.customer_id:
        return row.customer_id
    after: str | None = None
    while True:  # not seen by this flow yet: look for the customer linked to it (rare: deletes only)
        rows, after = await ctx.state.ledger_page(CUSTOMER, after, 1000)
        found = next((r.square_id for r in rows if (r.dataverse_id or "").lower() == contact_id.lower()), None)
        if found or after is None:
            return found


async def deleted(contact_id: str, ctx: FlowContext) -> Outcome:
    if ctx.two_way.crm_deletes is CrmDeletes.IGNORE:
        tracing.step("skipped", reason="CRM deletes are ignored (CRM_DELETES=ignore)")
        return Outcome.IGNORED
    square_id = await _linked_customer(ctx, contact_id)
    if square_id is None:
        tracing.step("skipped", reason="the contact was not linked to a Square customer")
        return Outcome.IGNORED
    return await delete_in_square(contact_id, square_id, ctx)


async def delete_in_square(contact_id: str, square_id: str, ctx: FlowContext) -> Outcome:
    ledger = await ctx.state.get_ledger(CUSTOMER, square_id)
    if ledger is not None and ledger.status != "active":
        tracing.step("skipped", reason=f"the Square customer is {ledger.status}")
        return Outcome.IGNORED
    existed = await ctx.square.delete_customer(square_id, version=None)
    row = ledger or LedgerRow(kind=CUSTOMER, square_id=square_id, dataverse_id=contact_id)
    row.status = "deleted"
    await ctx.state.save_ledger(row)
    tracing.step("deleted", target="square", customer_id=square_id, existed=existed)
    ctx.metrics.increment("crm_deletes_sent", flow=FLOW)
    await settle_contact(ctx, contact_id, square_id)
    return Outcome.WRITTEN


async def unlinked(contact_id: str, row: dict[str, Any], ctx: FlowContext) -> Outcome:
    """A contact with no Square customer: created in Square only when CRM_CREATE_IN_SQUARE says so."""
    if not ctx.two_way.create_in_square or row.get("statecode") == 1:
        tracing.step("skipped", reason="not linked to a Square customer (CRM_CREATE_IN_SQUARE=false)")
        return Outcome.IGNORED
    fields = contact_fields(ctx)
    pushable = [f.column for f in fields if f.square_path is not None]
    body = {k: v for k, v in square_changes(row, pushable, fields, ctx.phone_region).items() if v not in (None, {})}
    if isinstance(body.get("address"), dict):
        body["address"] = {k: v for k, v in body["address"].items() if v is not None}
    if not any(body.get(name) for name in CREATE_NEEDS):
        raise InvalidDataError(
            [FieldProblem("firstname,lastname,emailaddress1,mobilephone", "Square needs a name, email or phone")]
        )
    try:
        customer = await ctx.square.create_customer(body, idempotency_key=f"tb-{contact_id}")
    except InvalidDataError as error:
        raise rejected(error, fields) from error
    square_id = str(customer["id"])
    await _link_created(ctx, contact_id, row, customer)
    await ctx.dataverse.update(cm.CONTACTS, contact_id, {ctx.columns.square_id: square_id})
    await settle_contact(ctx, contact_id, square_id)
    tracing.step("written", target="square", created=square_id)
    ctx.metrics.increment("crm_customers_created", flow=FLOW)
    return Outcome.WRITTEN


async def _link_created(ctx: FlowContext, contact_id: str, row: dict[str, Any], customer: dict[str, Any]) -> None:
    """The ledger links the new customer to the contact before the key is written, so the customer's own
    webhook (customer.created) updates this contact instead of matching or creating another."""
    square_id = str(customer["id"])
    if await ctx.state.get_ledger(CUSTOMER, square_id) is not None:
        return  # a retry: the first attempt linked it
    plan = mapped_customer(customer, ctx)
    ledger = LedgerRow(
        kind=CUSTOMER,
        square_id=square_id,
        dataverse_id=contact_id,
        version=customer.get("version"),
        updated_at=customer.get("updated_at"),
        content_hash=plan.content_hash if plan else None,
        square_fields=dump_fields(square_fingerprints(ctx, plan.payload)) if plan else None,
        crm_fields=dump_fields(fingerprints(row, contact_fields(ctx), ctx.phone_region)),
        crm_modified_on=row.get("modifiedon"),
    )
    await ctx.state.save_ledger(ledger)
