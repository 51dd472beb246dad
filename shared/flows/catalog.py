"""items → product interest: catalog.version.updated carries no ids, so the objects changed since the
stored catalog version are searched and kept in a cache the sales flow reads (names, SKU, category)."""

from __future__ import annotations

from typing import Any

from shared.core.models import SyncCommand
from shared.core.paging import paginate
from shared.core.ports import LedgerRow
from shared.flows.commerce_support import CATALOG_DOC, CATEGORY_DOC
from shared.flows.context import FlowContext, Outcome
from shared.monitoring import tracing
from shared.pipeline.ledger import Stamp, commit

CURSOR = "catalog:version"


async def _put(ctx: FlowContext, kind: str, doc_id: str, document: dict[str, Any]) -> None:
    _, etag = await ctx.state.get_doc(kind, doc_id)
    await ctx.state.put_doc(kind, doc_id, document, etag)


async def sync_catalog(command: SyncCommand, ctx: FlowContext) -> Outcome:
    since = await ctx.state.get_cursor(CURSOR)
    objects: list[dict[str, Any]] = []
    latest = since

    async def page(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        nonlocal latest
        found, next_cursor, page_latest = await ctx.square.search_catalog_changed_since(since, cursor)
        latest = page_latest or latest
        return found, next_cursor

    async for found in paginate(page, "catalog (SearchCatalogObjects)"):
        objects += found
    cached = await cache_objects(ctx, objects)
    if latest and latest != since:
        await ctx.state.set_cursor(CURSOR, latest)
    await _commit_version(ctx, command, latest)
    tracing.step("cached", objects=len(objects), variations=cached, since=since, latest=latest)
    return Outcome.WRITTEN if objects else Outcome.UNCHANGED


async def cache_objects(ctx: FlowContext, objects: list[dict[str, Any]]) -> int:
    """Categories and items (with their variations) into the cache the sales flow reads; the number of
    variations cached (used by the live flow and the backfill alike)."""
    categories = {o["id"]: o.get("category_data", {}).get("name") for o in objects if o["type"] == "CATEGORY"}
    for category_id, name in categories.items():
        await _put(ctx, CATEGORY_DOC, category_id, {"name": name})
    cached = 0
    for item in (o for o in objects if o["type"] == "ITEM"):
        cached += await _cache_item(ctx, item, categories)
    return cached


async def _commit_version(ctx: FlowContext, command: SyncCommand, latest: str | None) -> None:
    """The catalog version in the ledger, like any synced object (and a failure of this flow resolved)."""
    row = await ctx.state.get_ledger(command.entity_kind, command.entity_id)
    if row is None and latest is None:
        return
    row = row or LedgerRow(command.entity_kind, command.entity_id)
    if row.failure_open or row.updated_at != latest:
        await commit(ctx.state, row=row, command=command, stamp=Stamp(None, latest), content_hash=None)


async def _cache_item(ctx: FlowContext, item: dict[str, Any], categories: dict[str, str | None]) -> int:
    data = item.get("item_data", {})
    category_ids = [c["id"] for c in data.get("categories", [])] or (
        [data["category_id"]] if data.get("category_id") else []
    )
    category_name = None
    for category_id in category_ids:
        category_name = categories.get(category_id)
        if category_name is None:
            document, _ = await ctx.state.get_doc(CATEGORY_DOC, category_id)
            category_name = (document or {}).get("name")
        if category_name:
            break
    for variation in data.get("variations", []):
        variation_data = variation.get("item_variation_data", {})
        await _put(
            ctx,
            CATALOG_DOC,
            variation["id"],
            {
                "item_name": data.get("name"),
                "variation_name": variation_data.get("name"),
                "sku": variation_data.get("sku"),
                "category_name": category_name,
            },
        )
    return len(data.get("variations", []))
