"""Square's Orders API reads on the emulator (SPEC paths `/v2/orders*`).

- RetrieveOrder; BatchRetrieveOrders: at most 100 ids, unknown ids silently absent (SPEC
  `BatchRetrieveOrdersRequest.order_ids`; reference/square.md §3).
- SearchOrders (SPEC `SearchOrdersRequest`, `SearchOrdersQuery`, `SearchOrdersFilter`, `SearchOrdersSort`,
  `SearchOrdersDateTimeFilter`; docs orders-api/manage-orders/search-orders):
  `location_ids` required, 1–10, all the seller's; `limit` default 500, max 1000; one date range only,
  both ends inclusive, an absent end = the time of the first request (the cursor's snapshot); `sort_field`
  (default CREATED_AT, order default DESC) must be the filtered date field or the request is refused; sorting
  by CLOSED_AT needs a state filter of closed states only; `customer_filter` / `source_filter` at most 10
  values; `return_entries` answers `order_entries` {order_id, version?, location_id} (SPEC `OrderEntry`);
  a cursor only with the original query.
Error codes for these refusals are not documented; the emulator picks the closest SPEC `ErrorCode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from devstack.square_emulator.clock import canonical
from devstack.square_emulator.keys import COMMERCE, CURSORS
from devstack.square_emulator.paging import fingerprint, lenient_limit
from devstack.square_emulator.responses import SquareFault, json_object, not_found, ok

ORDER_STATES = ("OPEN", "COMPLETED", "CANCELED", "DRAFT")
CLOSED_STATES = {"COMPLETED", "CANCELED"}
DATE_FIELDS = {"created_at": "CREATED_AT", "updated_at": "UPDATED_AT", "closed_at": "CLOSED_AT"}
Order = dict[str, Any]


async def retrieve_order(request: web.Request) -> web.Response:
    wanted = request.match_info["order_id"]
    order = request.app[COMMERCE].orders.get(wanted)
    if order is None:
        raise not_found("order", wanted)
    return ok({"order": order})


def _id_list(value: Any, name: str, high: int, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if value is None:
        raise SquareFault(400, "MISSING_REQUIRED_PARAMETER", f"`{name}` is required.", name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SquareFault(400, "EXPECTED_ARRAY", f"`{name}` must be an array of strings.", name)
    if required and not value:
        raise SquareFault(400, "ARRAY_LENGTH_TOO_SHORT", f"`{name}` needs at least one value.", name)
    if len(value) > high:
        raise SquareFault(400, "ARRAY_LENGTH_TOO_LONG", f"`{name}` takes at most {high} values.", name)
    return list(value)


async def batch_retrieve_orders(request: web.Request) -> web.Response:
    body = await json_object(request)
    ids = _id_list(body.get("order_ids"), "order_ids", 100)
    orders = request.app[COMMERCE].orders
    found = [orders[i] for i in ids if i in orders]  # unknown ids are skipped
    if body.get("location_id"):
        found = [o for o in found if o["location_id"] == body["location_id"]]
    return ok({"orders": found} if found else {})


def _date_filter(query_filter: dict[str, Any]) -> tuple[str | None, Callable[[Order], bool]]:
    window = query_filter.get("date_time_filter") or {}
    chosen = [name for name in DATE_FIELDS if window.get(name) is not None]
    if len(chosen) > 1:
        raise SquareFault(
            400, "CONFLICTING_PARAMETERS", "Filter on one time range only.", "query.filter.date_time_filter"
        )
    if not chosen:
        return None, lambda order: True
    name = chosen[0]
    bounds = window[name]
    start, end = canonical(bounds.get("start_at")), canonical(bounds.get("end_at"))
    for given, parsed, end_name in ((bounds.get("start_at"), start, "start_at"), (bounds.get("end_at"), end, "end_at")):
        if given is not None and parsed is None:
            raise SquareFault(
                400, "INVALID_TIME", "Not an RFC 3339 time.", f"query.filter.date_time_filter.{name}.{end_name}"
            )
    low, high = start or "", end or "9999"
    return name, lambda order: name in order and low <= order[name] <= high


def _state_filter(query_filter: dict[str, Any]) -> set[str] | None:
    rule = query_filter.get("state_filter")
    if rule is None:
        return None
    states = rule.get("states") if isinstance(rule, dict) else None
    if not isinstance(states, list) or not states:
        raise SquareFault(
            400, "MISSING_REQUIRED_PARAMETER", "state_filter needs states.", "query.filter.state_filter.states"
        )
    unknown = [s for s in states if s not in ORDER_STATES]
    if unknown:
        raise SquareFault(
            400, "INVALID_ENUM_VALUE", f"Unknown order states {unknown}.", "query.filter.state_filter.states"
        )
    return set(states)


def _sort(query: dict[str, Any], date_field: str | None, states: set[str] | None) -> tuple[str, bool]:
    sort = query.get("sort") or {}
    sort_field = sort.get("sort_field", "CREATED_AT")
    if sort_field not in DATE_FIELDS.values():
        raise SquareFault(
            400,
            "INVALID_ENUM_VALUE",
            "sort_field must be CREATED_AT, UPDATED_AT or CLOSED_AT.",
            "query.sort.sort_field",
        )
    order = sort.get("sort_order", "DESC")
    if order not in ("ASC", "DESC"):
        raise SquareFault(400, "INVALID_SORT_ORDER", "sort_order must be ASC or DESC.", "query.sort.sort_order")
    if date_field is not None and DATE_FIELDS[date_field] != sort_field:
        raise SquareFault(
            400,
            "CONFLICTING_PARAMETERS",
            f"The date_time_filter on {date_field} needs sort_field {DATE_FIELDS[date_field]}, not {sort_field}.",
            "query.sort.sort_field",
        )
    if sort_field == "CLOSED_AT" and (states is None or not states <= CLOSED_STATES):
        raise SquareFault(
            400,
            "CONFLICTING_PARAMETERS",
            "Sorting by CLOSED_AT needs a state filter of closed states.",
            "query.sort.sort_field",
        )
    return sort_field.lower(), order == "DESC"


def _order_predicate(
    query_filter: dict[str, Any], locations: list[str]
) -> tuple[str | None, set[str] | None, Callable[[Order], bool]]:
    date_field, in_range = _date_filter(query_filter)
    states = _state_filter(query_filter)
    customers = set(
        _id_list(
            (query_filter.get("customer_filter") or {}).get("customer_ids"),
            "query.filter.customer_filter.customer_ids",
            10,
            required=False,
        )
    )
    sources = set(
        _id_list(
            (query_filter.get("source_filter") or {}).get("source_names"),
            "query.filter.source_filter.source_names",
            10,
            required=False,
        )
    )
    fulfillment = query_filter.get("fulfillment_filter")
    wanted_locations = set(locations)

    def matches(order: Order) -> bool:
        buyers = {order.get("customer_id")} | {t.get("customer_id") for t in order.get("tenders", [])}
        return (
            order["location_id"] in wanted_locations
            and in_range(order)
            and (states is None or order["state"] in states)
            and (not customers or bool(customers & buyers))
            and (not sources or order.get("source", {}).get("name") in sources)
            and (fulfillment is None or bool(order.get("fulfillments")))
        )

    return date_field, states, matches


async def search_orders(request: web.Request) -> web.Response:
    body = await json_object(request)
    commerce = request.app[COMMERCE]
    locations = _id_list(body.get("location_ids"), "location_ids", 10)
    unknown = [loc for loc in locations if loc not in commerce.locations]
    if unknown:
        raise SquareFault(400, "INVALID_VALUE", f"Locations not of this seller: {unknown}.", "location_ids")
    query = body.get("query") or {}
    date_field, states, matches = _order_predicate(query.get("filter") or {}, locations)
    sort_field, descending = _sort(query, date_field, states)
    limit = lenient_limit(body.get("limit"), high=1000, default=500, over="high")

    def build() -> list[str]:
        found = [o for o in commerce.orders.values() if matches(o)]
        found.sort(key=lambda o: (o.get(sort_field, ""), o["id"]), reverse=descending)
        return [o["id"] for o in found]

    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint("SearchOrders", {"location_ids": locations, "query": query}),
        cursor=body.get("cursor"),
        limit=limit,
        build=build,
    )
    orders = [commerce.orders[str(k)] for k in keys]
    result: dict[str, Any] = {}
    if orders and body.get("return_entries"):
        result["order_entries"] = [_entry(o) for o in orders]
    elif orders:
        result["orders"] = orders
    if cursor:
        result["cursor"] = cursor
    return ok(result)


def _entry(order: Order) -> dict[str, Any]:
    entry = {"order_id": order["id"], "location_id": order["location_id"]}
    if "version" in order:
        entry["version"] = order["version"]
    return entry


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/orders/search", search_orders)
    app.router.add_post("/v2/orders/batch-retrieve", batch_retrieve_orders)
    app.router.add_get("/v2/orders/{order_id}", retrieve_order)
