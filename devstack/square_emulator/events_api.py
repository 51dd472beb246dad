"""Every event the emulator fires, and Square's Events API over them (BETA; SPEC paths `/v2/events*`).

- "All events are disabled by default. You must enable events to make them searchable." Only events that
  occur while enabled are searchable; "Disabling events for a specific time period prevents them from being
  searchable, even if you re-enable them later" (SPEC DisableEvents / EnableEvents descriptions).
- SearchEvents returns events of the past 28 days only (SPEC SearchEvents; events-api/overview).
- `limit` 1–100, default 100 (SPEC `SearchEventsRequest.limit` minimum/maximum); the cursor must be sent
  with the original query (SPEC `SearchEventsRequest.query`).
- Response: `events`, `metadata[{event_id, api_version}]`, `cursor` (SPEC `SearchEventsResponse`,
  `EventMetadata`). Sort: only `DEFAULT` (= created_at, SPEC `SearchEventsSortField`); Square documents no
  default order, the emulator uses DESC like its other time-sorted searches [inference].
Not emulated: the personal-access-token-only rule (the emulator has one token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from devstack.square_emulator.clock import Clock, canonical, stamp
from devstack.square_emulator.paging import CursorBook, fingerprint, strict_limit
from devstack.square_emulator.responses import SQUARE_VERSION, SquareFault, json_object, ok
from devstack.square_emulator.subscriptions import KNOWN_EVENT_TYPES

SEARCH_WINDOW = timedelta(days=28)


@dataclass
class EventLog:
    """All events in firing order (for the control API) and the searchable ones (fired while enabled)."""

    clock: Clock
    all: list[dict[str, Any]] = field(default_factory=list)
    searchable: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = False

    def append(self, event: dict[str, Any]) -> None:
        self.all.append(event)
        if self.enabled:
            self.searchable.append(event)


EVENTS = web.AppKey("event_log", EventLog)
CURSORS = web.AppKey("cursors", CursorBook)


def _list_of_strings(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SquareFault(400, "EXPECTED_ARRAY", f"`{name}` must be an array of strings.", name)
    return list(value)


def _matcher(query_filter: dict[str, Any], oldest: str) -> Any:
    types = _list_of_strings(query_filter.get("event_types"), "query.filter.event_types")
    merchants = _list_of_strings(query_filter.get("merchant_ids"), "query.filter.merchant_ids")
    locations = _list_of_strings(query_filter.get("location_ids"), "query.filter.location_ids")
    window = query_filter.get("created_at") or {}
    start = max(canonical(window.get("start_at")) or oldest, oldest)
    end = canonical(window.get("end_at")) or "9999"

    def matches(event: dict[str, Any]) -> bool:
        created = canonical(event["created_at"]) or ""
        return (
            start <= created <= end
            and (types is None or event["type"] in types)
            and (merchants is None or event.get("merchant_id") in merchants)
            and (locations is None or event.get("location_id") in locations)
        )

    return matches


def _sort_order(query: dict[str, Any]) -> str:
    sort = query.get("sort") or {}
    if sort.get("field", "DEFAULT") != "DEFAULT":
        raise SquareFault(400, "INVALID_ENUM_VALUE", "query.sort.field must be DEFAULT.", "query.sort.field")
    order = sort.get("order", "DESC")
    if order not in ("ASC", "DESC"):
        raise SquareFault(400, "INVALID_SORT_ORDER", "query.sort.order must be ASC or DESC.", "query.sort.order")
    return str(order)


async def search_events(request: web.Request) -> web.Response:
    body = await json_object(request)
    limit = strict_limit(body.get("limit"), low=1, high=100, default=100)
    query = body.get("query") or {}
    log = request.app[EVENTS]
    order = _sort_order(query)

    def build() -> list[int]:
        matches = _matcher(query.get("filter") or {}, stamp(log.clock.now() - SEARCH_WINDOW))
        found = [n for n, event in enumerate(log.searchable) if matches(event)]
        found.sort(key=lambda n: canonical(log.searchable[n]["created_at"]) or "", reverse=order == "DESC")
        return found

    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint("SearchEvents", query), cursor=body.get("cursor"), limit=limit, build=build
    )
    events = [log.searchable[int(str(n))] for n in keys]
    result: dict[str, Any] = {}
    if events:
        result["events"] = events
        result["metadata"] = [{"event_id": e["event_id"], "api_version": SQUARE_VERSION} for e in events]
    if cursor:
        result["cursor"] = cursor
    return ok(result)


async def enable_events(request: web.Request) -> web.Response:
    request.app[EVENTS].enabled = True
    return ok({})


async def disable_events(request: web.Request) -> web.Response:
    request.app[EVENTS].enabled = False
    return ok({})


async def list_event_types(request: web.Request) -> web.Response:
    types = sorted(KNOWN_EVENT_TYPES)
    metadata = [{"event_type": t, "api_version_introduced": "2018-07-12", "release_status": "PUBLIC"} for t in types]
    return ok({"event_types": types, "metadata": metadata})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/events", search_events)
    app.router.add_put("/v2/events/enable", enable_events)
    app.router.add_put("/v2/events/disable", disable_events)
    app.router.add_get("/v2/events/types", list_event_types)
