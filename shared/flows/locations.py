"""locations → territory: location events carry only an id, so the store is fetched and written with
its owner, business unit and territory from LOCATION_OWNERS; an unmapped store is reported once."""

from __future__ import annotations

from shared.core.errors import TerminalError
from shared.core.models import SyncCommand
from shared.core.ports import LedgerRow
from shared.flows import commerce_mapping as cmap
from shared.flows.commerce_support import owner_for
from shared.flows.context import FlowContext, Outcome
from shared.flows.sales import tables
from shared.monitoring import tracing
from shared.pipeline.ledger import Stamp, commit


async def sync_location(command: SyncCommand, ctx: FlowContext) -> Outcome:
    location = await ctx.square.retrieve_location(command.entity_id)
    if location is None:
        raise TerminalError(f"location {command.entity_id} does not exist in Square", reason_code="source_not_found")
    tracing.snapshot("square_object", location)
    t = tables(ctx)
    assignment, _mapped = ctx.sales.owners.for_location(location["id"])
    owner = await owner_for(ctx, location["id"])
    body = cmap.location_payload(t, location, assignment.business_unit, assignment.territory, ctx.configuration)
    if owner:
        body["ownerid@odata.bind"] = owner
    tracing.snapshot("mapped_payload", body)
    result = await ctx.dataverse.upsert_by_key(t.set("location"), {t.col("SquareLocationId"): location["id"]}, body)
    row = await ctx.state.get_ledger("location", location["id"]) or LedgerRow("location", location["id"])
    row.dataverse_id = result.entity_id
    # a location has no version: each write carries the state just fetched, so the newest write wins
    await commit(ctx.state, row=row, command=command, stamp=Stamp(None, ctx.clock.now().isoformat()), content_hash=None)
    ctx.metrics.increment("records_written", flow="locations")
    return Outcome.WRITTEN
