"""Thin async Square REST client (httpx) for the endpoints Tillbridge calls.

Chosen over the `squareup` SDK for import time and size (docs/decisions/0002-square-client.md).
Shapes: square/connect-api-specification api.json (operation and schema names in each method); error body
`{"errors":[{"category","code","detail","field"}]}` per Square's "Handling errors" page. Ids go into paths
quoted as one segment, so an id like `../payments/X` can never address another resource.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from shared.adapters.dataverse_http import exchange_record, retry_after_seconds
from shared.core.errors import (
    ConcurrencyError,
    FieldProblem,
    InvalidDataError,
    TerminalError,
    ThrottledError,
    TransientError,
)
from shared.monitoring import tracing

Page = tuple[list[dict[str, Any]], str | None]
# Square's write validation codes (SPEC UpdateCustomer/CreateCustomer `x-endpoint-errors`, ErrorCode): a field
# of the record is wrong, so the write fails for that record with the field named.
FIELD_CODES = {
    "INVALID_EMAIL_ADDRESS",
    "INVALID_PHONE_NUMBER",
    "INVALID_TIME",
    "VALUE_TOO_LONG",
    "EXPECTED_STRING",
    "INVALID_ENUM_VALUE",
}


def classify(response: httpx.Response) -> Exception:
    """The one table for Square: status + error code → Transient or Terminal."""
    try:
        errors = response.json().get("errors", [])
        code = str(errors[0].get("code", "")) if errors else ""
    except ValueError:
        code = ""
    text = f"Square {response.status_code} {code}".strip()
    if response.status_code == 429 or code == "RATE_LIMITED":
        return ThrottledError(text, retry_after=retry_after_seconds(response.headers.get("Retry-After"), 10.0))
    if response.status_code >= 500 or response.status_code in (401, 408):
        return TransientError(text)
    return TerminalError(text, reason_code="square_rejected")


def classify_write(response: httpx.Response) -> Exception:
    """Writes: a stale `version` is a concurrency conflict (re-read, decide again, retry); a refused field is
    invalid data naming that field; the rest as `classify`."""
    try:
        errors = response.json().get("errors", [])
        first = errors[0] if errors else {}
    except (ValueError, AttributeError):
        first = {}
    code = str(first.get("code", ""))
    if code == "VERSION_MISMATCH":
        return ConcurrencyError(f"Square {response.status_code} VERSION_MISMATCH")
    if code in FIELD_CODES and first.get("field"):
        return InvalidDataError([FieldProblem(str(first["field"]), f"{code}: {first.get('detail', '')}".strip())])
    return classify(response)


def object_path(prefix: str, object_id: str) -> str | None:
    """`prefix` + the id as one quoted path segment; None for ids no Square object has ('', '.', '..')."""
    if object_id in ("", ".", ".."):
        return None
    return prefix + quote(object_id, safe="")


def _page(response: httpx.Response, name: str) -> Page:
    if response.status_code != 200:
        raise classify(response)
    document = response.json()
    return list(document.get(name, [])), document.get("cursor") or None


class SquareClient:
    def __init__(self, *, base_url: str, access_token: str, api_version: str, http: httpx.AsyncClient) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Square-Version": api_version,
            "Accept": "application/json",
        }
        self._http = http

    async def _request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if query:
            path = f"{path}?{httpx.QueryParams(query)}"
        try:
            response = await self._http.request(method, self._base + path, json=body, headers=self._headers)
        except httpx.TransportError as error:
            raise TransientError(f"Square unreachable: {type(error).__name__}") from error
        tracing.exchange(exchange_record("square", method, path, body, response))
        return response

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        return await self._get_object("/v2/customers/", customer_id, "customer")

    async def search_customers_updated_since(
        self, start_at: str, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        body: dict[str, Any] = {"limit": 100, "query": {"filter": {"updated_at": {"start_at": start_at}}}}
        if cursor:
            body["cursor"] = cursor
        response = await self._request("POST", "/v2/customers/search", body)
        if response.status_code != 200:
            raise classify(response)
        document = response.json()
        return list(document.get("customers", [])), document.get("cursor")

    async def _get_object(self, prefix: str, object_id: str, name: str) -> dict[str, Any] | None:
        path = object_path(prefix, object_id)
        if path is None:
            return None
        response = await self._request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json()[name])

    async def retrieve_order(self, order_id: str) -> dict[str, Any] | None:
        return await self._get_object("/v2/orders/", order_id, "order")

    async def batch_retrieve_orders(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Orders by id (≤ 100 per call); ids Square does not know are simply absent."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(order_ids), 100):
            response = await self._request(
                "POST", "/v2/orders/batch-retrieve", {"order_ids": order_ids[start : start + 100]}
            )
            if response.status_code != 200:
                raise classify(response)
            found.update({str(order["id"]): order for order in response.json().get("orders", [])})
        return found

    async def get_payment(self, payment_id: str) -> dict[str, Any] | None:
        return await self._get_object("/v2/payments/", payment_id, "payment")

    async def get_refund(self, refund_id: str) -> dict[str, Any] | None:
        return await self._get_object("/v2/refunds/", refund_id, "refund")

    async def retrieve_location(self, location_id: str) -> dict[str, Any] | None:
        return await self._get_object("/v2/locations/", location_id, "location")

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """Items and categories modified after `begin_time` (exclusive), deleted ones included."""
        body: dict[str, Any] = {"object_types": ["ITEM", "CATEGORY"], "include_deleted_objects": True, "limit": 1000}
        if begin_time:
            body["begin_time"] = begin_time
        if cursor:
            body["cursor"] = cursor
        response = await self._request("POST", "/v2/catalog/search", body)
        if response.status_code != 200:
            raise classify(response)
        document = response.json()
        return list(document.get("objects", [])), document.get("cursor"), document.get("latest_time")

    async def batch_retrieve_catalog(self, object_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Catalog objects by id with their related objects (a variation's item, an item's categories)."""
        body = {"object_ids": object_ids, "include_related_objects": True}
        response = await self._request("POST", "/v2/catalog/batch-retrieve", body)
        if response.status_code != 200:
            raise classify(response)
        document = response.json()
        return list(document.get("objects", [])), list(document.get("related_objects", []))

    # ---- history and reconcile reads (backfill streams these; every one pages with Square's cursor)

    async def list_customers(
        self, cursor: str | None = None, *, limit: int = 100, sort_field: str = "CREATED_AT", sort_order: str = "ASC"
    ) -> Page:
        """ListCustomers (SPEC ListCustomers): every profile with public information, `limit` 1–100."""
        params = {"limit": limit, "sort_field": sort_field, "sort_order": sort_order, "cursor": cursor}
        return _page(await self._request("GET", "/v2/customers", params=params), "customers")

    async def search_customers(self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100) -> Page:
        """SearchCustomers (SPEC SearchCustomersRequest/CustomerQuery); the cursor needs the same `query`."""
        body: dict[str, Any] = {"limit": limit, "query": query}
        if cursor:
            body["cursor"] = cursor
        return _page(await self._request("POST", "/v2/customers/search", body), "customers")

    async def bulk_retrieve_customers(self, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        """BulkRetrieveCustomers in chunks of 100 (docs retrieve-profiles); ids Square does not know are absent.
        A merged-away id maps to its surviving profile."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(customer_ids), 100):
            chunk = customer_ids[start : start + 100]
            response = await self._request("POST", "/v2/customers/bulk-retrieve", {"customer_ids": chunk})
            if response.status_code != 200:
                raise classify(response)
            for customer_id, answer in (response.json().get("responses") or {}).items():
                if "customer" in answer:
                    found[customer_id] = dict(answer["customer"])
                elif any(e.get("code") != "NOT_FOUND" for e in answer.get("errors", [])):
                    raise TransientError(f"Square bulk-retrieve: customer {customer_id} answered an error")
        return found

    async def search_orders(
        self, location_ids: list[str], query: dict[str, Any], cursor: str | None = None, *, limit: int = 500
    ) -> Page:
        """SearchOrders (SPEC SearchOrdersRequest): 1–10 locations per call; the cursor needs the same query."""
        if not 1 <= len(location_ids) <= 10:
            raise ValueError("SearchOrders takes 1 to 10 location ids per request")
        body: dict[str, Any] = {"location_ids": location_ids, "query": query, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        return _page(await self._request("POST", "/v2/orders/search", body), "orders")

    async def list_payments(self, cursor: str | None = None, **params: str | int | None) -> Page:
        """ListPayments (SPEC ListPayments): begin_time (default now − 1 year!), end_time,
        updated_at_begin_time/updated_at_end_time, sort_field, sort_order, location_id (default: the MAIN
        location only, so iterate locations), limit ≤ 100."""
        return _page(await self._request("GET", "/v2/payments", params={**params, "cursor": cursor}), "payments")

    async def list_refunds(self, cursor: str | None = None, **params: str | int | None) -> Page:
        """ListPaymentRefunds (SPEC ListPaymentRefunds): like ListPayments but all locations by default."""
        return _page(await self._request("GET", "/v2/refunds", params={**params, "cursor": cursor}), "refunds")

    async def list_locations(self) -> list[dict[str, Any]]:
        """ListLocations (SPEC): every location, inactive ones too, no paging."""
        locations, _ = _page(await self._request("GET", "/v2/locations"), "locations")
        return locations

    async def search_events(self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100) -> Page:
        """SearchEvents (SPEC SearchEventsRequest, BETA): events of the last 28 days, fired while events were
        enabled (PUT /v2/events/enable); the cursor needs the same query."""
        body: dict[str, Any] = {"limit": limit, "query": query}
        if cursor:
            body["cursor"] = cursor
        return _page(await self._request("POST", "/v2/events", body), "events")

    # ---- customer writes (two-way sync)

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any], *, version: int | None = None
    ) -> dict[str, Any] | None:
        """UpdateCustomer (SPEC UpdateCustomerRequest): sparse, `None` removes a field, `version` for optimistic
        concurrency (a stale one raises ConcurrencyError). None when the customer does not exist (deleted, or
        merged away: updates need the surviving id)."""
        path = object_path("/v2/customers/", customer_id)
        if path is None:
            return None
        body = {**changes, **({"version": version} if version is not None else {})}
        response = await self._request("PUT", path, body)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify_write(response)
        return dict(response.json()["customer"])

    async def create_customer(self, fields: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """CreateCustomer (SPEC CreateCustomerRequest) with an idempotency key: a retry with the same key and
        body answers the customer created the first time, never a duplicate."""
        response = await self._request("POST", "/v2/customers", {**fields, "idempotency_key": idempotency_key})
        if response.status_code != 200:
            raise classify_write(response)
        return dict(response.json()["customer"])
