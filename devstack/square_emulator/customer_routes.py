"""Square's Customers API on the emulator's customer book (SPEC paths `/v2/customers*`).

Reads: RetrieveCustomer (a merged-away id answers the surviving profile, reference/square.md §2),
BulkRetrieveCustomers (1–100 ids, per-id NOT_FOUND inside a 200, docs retrieve-profiles), ListCustomers and
SearchCustomers (limits 1–100 → 400 VALUE_TOO_LOW/HIGH, cursors bound to the original query).
Writes: CreateCustomer (idempotency key: same key and body → the first response, same key with another body →
IDEMPOTENCY_KEY_REUSED, docs common-api-patterns/idempotency), UpdateCustomer (sparse; `version` must match
or 400 VERSION_MISMATCH, docs optimistic-concurrency and general-troubleshooting; +1 per committed update),
DeleteCustomer (`?version=` optional, same check). Update/Delete need the surviving id after a merge (SPEC
UpdateCustomer / DeleteCustomer). Every write fires customer.created/updated/deleted like a Dashboard edit.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devstack.square_emulator.customer_search import listable, search_predicate, sort_choice, sort_key
from devstack.square_emulator.customers import CustomerBook
from devstack.square_emulator.keys import BOOK, CURSORS, DELIVERER
from devstack.square_emulator.paging import fingerprint, integer, strict_limit
from devstack.square_emulator.responses import SquareFault, json_object, ok
from devstack.square_emulator.validation import customer_changes, merged_address, require_public_field


def _not_found(customer_id: str) -> SquareFault:
    return SquareFault(404, "NOT_FOUND", f"Customer with ID `{customer_id}` not found.")


def _live(book: CustomerBook, customer_id: str) -> dict[str, Any]:
    """The customer an Update/Delete may address: not deleted, not merged away."""
    customer: dict[str, Any] | None = book.customers.get(customer_id)
    if customer is None:
        raise _not_found(customer_id)
    return customer


def _check_version(given: Any, customer: dict[str, Any], name: str) -> None:
    version = integer(given, name)
    if version is not None and version != customer["version"]:
        raise SquareFault(
            400,
            "VERSION_MISMATCH",
            f"Version mismatch: customer `{customer['id']}` is at version {customer['version']}, not {version}.",
            name,
        )


async def retrieve_customer(request: web.Request) -> web.Response:
    customer = request.app[BOOK].get(request.match_info["customer_id"])
    if customer is None:
        raise _not_found(request.match_info["customer_id"])
    return ok({"customer": customer})


async def bulk_retrieve(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    ids = (await json_object(request)).get("customer_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise SquareFault(400, "EXPECTED_ARRAY", "`customer_ids` must be an array of ids.", "customer_ids")
    if not ids:
        raise SquareFault(400, "ARRAY_EMPTY", "`customer_ids` must hold 1 to 100 ids.", "customer_ids")
    if len(ids) > 100:
        raise SquareFault(400, "ARRAY_LENGTH_TOO_LONG", "`customer_ids` must hold 1 to 100 ids.", "customer_ids")
    responses: dict[str, Any] = {}
    for customer_id in ids:
        customer = book.get(customer_id)
        responses[customer_id] = {"customer": customer} if customer else {"errors": [_not_found(customer_id).error()]}
    return ok({"responses": responses})


def _page_of_customers(
    request: web.Request, *, endpoint: str, query: Any, body: dict[str, Any], predicate: Any, sort: tuple[str, bool]
) -> web.Response:
    book = request.app[BOOK]
    limit = strict_limit(body.get("limit"), low=1, high=100, default=100)

    def build() -> list[str]:
        found = [c for c in book.customers.values() if predicate(c)]
        found.sort(key=sort_key(sort[0]), reverse=sort[1])
        return [c["id"] for c in found]

    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint(endpoint, query), cursor=body.get("cursor"), limit=limit, build=build
    )
    customers = [book.customers[str(k)] for k in keys if str(k) in book.customers]
    result: dict[str, Any] = {"customers": customers} if customers else {}
    if cursor:
        result["cursor"] = cursor
    if body.get("count") in (True, "true"):
        result["count"] = sum(1 for c in book.customers.values() if predicate(c))
    return ok(result)


async def list_customers(request: web.Request) -> web.Response:
    params = dict(request.query)
    sort = sort_choice(params.get("sort_field"), params.get("sort_order"), "sort_")
    query = {"sort_field": sort[0], "descending": sort[1]}
    return _page_of_customers(
        request, endpoint="ListCustomers", query=query, body=params, predicate=listable, sort=sort
    )


async def search_customers(request: web.Request) -> web.Response:
    body = await json_object(request)
    query = body.get("query") or {}
    if not isinstance(query, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", "`query` must be an object.", "query")
    predicate = search_predicate(query.get("filter"))
    wanted_sort = query.get("sort") or {}
    sort = sort_choice(wanted_sort.get("field"), wanted_sort.get("order"), "query.sort.")
    return _page_of_customers(
        request, endpoint="SearchCustomers", query=query, body=body, predicate=predicate, sort=sort
    )


def _canonical_body(body: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in body.items() if k != "idempotency_key"}, sort_keys=True)


async def create_customer(request: web.Request) -> web.Response:
    body = await json_object(request)
    book = request.app[BOOK]
    key = body.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise SquareFault(400, "EXPECTED_STRING", "`idempotency_key` must be a string.", "idempotency_key")
    if key and key in book.idempotency:
        first_body, first_response = book.idempotency[key]
        if first_body["request"] != _canonical_body(body):
            raise SquareFault(400, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another request.")
        return ok(first_response)
    changes = customer_changes(body)
    require_public_field(changes)
    customer, events = book.create(changes, source="THIRD_PARTY")
    request.app[DELIVERER].enqueue(events)
    response = {"customer": json.loads(json.dumps(customer))}
    if key:
        book.idempotency[key] = ({"request": _canonical_body(body)}, response)
    return ok(response)


async def update_customer(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer = _live(book, request.match_info["customer_id"])
    body = await json_object(request)
    _check_version(body.get("version"), customer, "version")
    changes = customer_changes(body)
    if "address" in changes:
        changes["address"] = merged_address(customer.get("address"), changes["address"])
    updated, events = book.update(customer["id"], changes)
    request.app[DELIVERER].enqueue(events)
    return ok({"customer": updated})


async def delete_customer(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    customer = _live(book, request.match_info["customer_id"])
    _check_version(request.query.get("version"), customer, "version")
    request.app[DELIVERER].enqueue(book.delete(customer["id"]))
    return ok({})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/customers", list_customers)
    app.router.add_post("/v2/customers", create_customer)
    app.router.add_post("/v2/customers/search", search_customers)
    app.router.add_post("/v2/customers/bulk-retrieve", bulk_retrieve)
    app.router.add_get("/v2/customers/{customer_id}", retrieve_customer)
    app.router.add_put("/v2/customers/{customer_id}", update_customer)
    app.router.add_delete("/v2/customers/{customer_id}", delete_customer)
