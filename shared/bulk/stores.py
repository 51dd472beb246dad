"""Locations and the catalog in bulk: every store as a location row (owner, business unit and territory
from LOCATION_OWNERS, like the live flow), and the catalog cache filled from the whole catalog."""

from __future__ import annotations

from typing import Any

from shared.bulk.context import BulkContext
from shared.bulk.counts import Counts
from shared.bulk.records import Record, row_of, write_records
from shared.core.ports import BatchOperation
from shared.flows import commerce_mapping as cmap
from shared.flows.catalog import cache_objects
from shared.flows.commerce_support import owner_for
from shared.flows.sales import tables
from shared.pipeline.ledger import Stamp


async def backfill_locations(locations: list[dict[str, Any]], bc: BulkContext) -> Counts:
    """Locations have no version: each write carries the state just listed, so the newest write wins
    (the live flow commits the same stamp: the time of the fetch)."""
    counts = Counts(examined=len(locations))
    t = tables(bc.ctx)
    ledgers = await bc.ledgers("location", (str(location["id"]) for location in locations))
    fetched_at = bc.ctx.clock.now().isoformat()
    records = []
    for location in locations:
        assignment, _mapped = bc.ctx.sales.owners.for_location(location["id"])
        body = cmap.location_payload(t, location, assignment.business_unit, assignment.territory)
        owner = await owner_for(bc.ctx, location["id"])
        if owner:
            body["ownerid@odata.bind"] = owner
        operation = BatchOperation("PATCH", t.key("Location", "SquareLocationId", str(location["id"])), body)
        record = Record(
            "location",
            bc.command("location", {**location, "updated_at": fetched_at}, "location"),
            Stamp(None, fetched_at),
            ledgers[str(location["id"])],
        )
        record.rows = [row_of(operation, record.square_id)]
        records.append(record)
    await write_records(records, bc, counts, [t.set("location")])
    return counts


async def backfill_catalog_page(objects: list[dict[str, Any]], bc: BulkContext) -> Counts:
    """Items, variations and categories into the catalog cache (no Dataverse rows: lines carry the names)."""
    counts = Counts(examined=len(objects))
    live = [o for o in objects if not o.get("is_deleted")]
    if bc.dry_run:
        counts.updated += len(live)
        return counts
    await cache_objects(bc.ctx, live)
    counts.updated += len(live)
    return counts
