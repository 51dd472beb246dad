"""What the store-activity flows share: who the buyer is in the CRM, which owner a store maps to, what
the catalog cache knows about a line, and the buyer's purchase aggregates."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core.errors import TransientError
from shared.core.normalize import NormalizationError, normalize_email
from shared.core.ports import FailureRecord
from shared.flows.commerce_mapping import CatalogEntry
from shared.flows.context import FlowContext
from shared.flows.customer_mapping import CONTACTS
from shared.flows.matching import odata_string
from shared.monitoring import tracing

CATALOG_DOC = "catalog"
CATEGORY_DOC = "catalogcategory"
STATS_DOC = "stats"


@dataclass(frozen=True)
class Buyer:
    """The CRM contact a sale belongs to: its @odata.bind path and the id its aggregates are kept under."""

    bind: str
    stats_id: str


async def _linked_contact(ctx: FlowContext, customer_id: str) -> tuple[str | None, str]:
    """The contact of a Square customer via the ledger, following merges to the surviving customer (whose
    id the aggregates are kept under); no contact if it failed to sync."""
    seen: set[str] = set()
    while customer_id not in seen:
        seen.add(customer_id)
        row = await ctx.state.get_ledger("customer", customer_id)
        if row is None:
            raise TransientError(f"customer {customer_id} has not reached the CRM yet")
        if row.status == "merged" and row.merged_into:
            customer_id = row.merged_into
            continue
        if row.status == "active" and not row.dataverse_id and not row.failure_open:
            # claimed but not written yet (the customer's own event is in flight): wait for it
            raise TransientError(f"customer {customer_id} is being written to the CRM right now")
        return (row.dataverse_id if row.status == "active" else None), customer_id
    return None, customer_id


async def resolve_buyer(ctx: FlowContext, customer_id: str | None, buyer_email: str | None) -> Buyer | None:
    """The one buyer resolver of every commerce flow: a Square customer's contact (merges followed; a
    customer still on its way to the CRM makes the caller wait), else a guest's contact by email."""
    if customer_id:
        contact_id, survivor_id = await _linked_contact(ctx, customer_id)
        return Buyer(f"/{CONTACTS}({contact_id})", survivor_id) if contact_id else None
    if not buyer_email or ctx.sales.guest_checkout == "ignore":
        return None
    try:
        email = normalize_email(buyer_email)
    except NormalizationError:
        return None
    guest_key = "guest-" + hashlib.sha256(email.encode()).hexdigest()[:24]
    rows = await ctx.dataverse.query(
        CONTACTS, f"emailaddress1 eq {odata_string(email)} and statecode eq 0", ["contactid"]
    )
    if len(rows) == 1:
        return Buyer(f"/{CONTACTS}({rows[0]['contactid']})", guest_key)
    if rows or ctx.sales.guest_checkout != "match_or_create":
        return None  # several look-alikes: never guess
    created = await ctx.dataverse.upsert_by_key(
        CONTACTS, {ctx.columns.square_id: guest_key}, {"emailaddress1": buyer_email.strip(), "lastname": "Guest"}
    )
    tracing.step("guest_contact", contact_id=created.entity_id)
    return Buyer(f"/{CONTACTS}({created.entity_id})", guest_key)


async def sale_buyer(ctx: FlowContext, order: dict[str, Any] | None, payment: dict[str, Any] | None) -> Buyer | None:
    """Who bought: the order's customer, else the payment's customer, else the guest's email on the payment.
    Payments, order updates and refunds all ask this one question (a refund passes its sale's payment)."""
    customer_id = (order or {}).get("customer_id") or (payment or {}).get("customer_id")
    return await resolve_buyer(ctx, customer_id, (payment or {}).get("buyer_email_address"))


async def owner_for(ctx: FlowContext, location_id: str | None) -> str | None:
    """The owner bind path for records from this store; an unmapped store is reported once, never blocked."""
    assignment, mapped = ctx.sales.owners.for_location(location_id)
    if not mapped and location_id and location_id not in ctx.reported_unmapped:
        ctx.reported_unmapped.add(location_id)
        if await ctx.state.get_failure("locations", location_id) is None:
            now = ctx.clock.now().isoformat()
            await ctx.state.record_failure(
                FailureRecord(
                    flow="locations",
                    record_id=location_id,
                    reason_code="needs_mapping",
                    message="no owner is configured for this Square location (LOCATION_OWNERS); "
                    "its records use the default owner",
                    event_id="",
                    event_type="location",
                    first_seen=now,
                    last_seen=now,
                )
            )
    return assignment.owner


async def catalog_entries(ctx: FlowContext, order: dict[str, Any]) -> dict[str, CatalogEntry]:
    """Names, SKU and category per catalog variation: from the cache, read through from Square on a miss
    (the sale can arrive before the catalog.version.updated event that would have filled the cache)."""
    entries: dict[str, CatalogEntry] = {}
    missing: list[str] = []
    for line in order.get("line_items", []):
        object_id = line.get("catalog_object_id")
        if object_id and object_id not in entries and object_id not in missing:
            document, _ = await ctx.state.get_doc(CATALOG_DOC, object_id)
            if document:
                entries[object_id] = CatalogEntry(**document)
            else:
                missing.append(object_id)
    if missing:
        objects, related = await ctx.square.batch_retrieve_catalog(missing)
        tracing.step("catalog_read_through", variations=len(missing))
        for object_id, entry in catalog_entries_from(objects, related).items():
            entries[object_id] = entry
            _, etag = await ctx.state.get_doc(CATALOG_DOC, object_id)
            await ctx.state.put_doc(CATALOG_DOC, object_id, entry.__dict__, etag)
    return entries


def catalog_entries_from(objects: list[dict[str, Any]], related: list[dict[str, Any]]) -> dict[str, CatalogEntry]:
    """Variation id → entry, from variations (objects) and their items and categories (related)."""
    by_id = {o["id"]: o for o in [*objects, *related]}
    entries = {}
    for variation in (o for o in objects if o.get("type") == "ITEM_VARIATION"):
        data = variation.get("item_variation_data", {})
        item = by_id.get(data.get("item_id", ""), {}).get("item_data", {})
        category = next(
            (by_id[c["id"]]["category_data"].get("name") for c in item.get("categories", []) if c["id"] in by_id), None
        )
        entries[variation["id"]] = CatalogEntry(item.get("name"), data.get("name"), data.get("sku"), category)
    return entries


def iso_now(ctx: FlowContext) -> str:
    return ctx.clock.now().astimezone(UTC).isoformat()


def parse_iso(text: str | None) -> datetime | None:
    from shared.core.times import parse_time

    return parse_time(text)
