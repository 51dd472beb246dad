"""Thin async Square REST client (httpx) for the endpoints Tillbridge calls.

Chosen over the `squareup` SDK for import time and size (docs/decisions/0002-square-client.md).
Shapes: square/connect-api-specification api.json (RetrieveCustomer, SearchCustomers); error body
`{"errors":[{"category","code","detail"}]}` per Square's "Handling errors" page.
"""

from __future__ import annotations

import string
from typing import Any
from urllib.parse import quote

import httpx

from shared.adapters.dataverse_http import exchange_record, retry_after_seconds
from shared.core.errors import TerminalError, ThrottledError, TransientError
from shared.core.models import MAX_SQUARE_ID_LENGTH
from shared.monitoring import tracing

# RFC 3986 `pchar` without percent-encoding: everything a Square id is made of (ids are alphanumeric, some
# with "_", "-" or ":"), and nothing that could end, climb out of or re-route a path segment (/ \ ? # % ..)
_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@")


def segment(square_id: str) -> str:
    """A Square id as one URL path segment (percent-encoded), or TerminalError("invalid_id") for a value no
    Square id could be: retrying cannot make it one, and it must never address another object."""
    if (
        not square_id
        or square_id in (".", "..")
        or len(square_id) > MAX_SQUARE_ID_LENGTH
        or not _ID_CHARACTERS.issuperset(square_id)
    ):
        raise TerminalError(f"{square_id[:80]!r} cannot be a Square id", reason_code="invalid_id")
    return quote(square_id, safe="")


def named_object(response: httpx.Response, name: str) -> dict[str, Any]:
    """The object a 200 answer holds under `name`; a 200 without it is Square's mistake, not a passing one."""
    try:
        found = response.json()[name]
    except (ValueError, KeyError, TypeError):
        found = None
    if not isinstance(found, dict):
        raise TerminalError(f"Square {response.status_code} without a {name!r} object", reason_code="square_unexpected")
    return found


def classify(response: httpx.Response) -> Exception:
    """The one table for Square: status + error code → Transient or Terminal."""
    try:
        errors = response.json().get("errors", [])
        code = str(errors[0].get("code", "")) if errors else ""
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):  # no Square error body: the status decides
        code = ""
    text = f"Square {response.status_code} {code}".strip()
    if response.status_code == 429 or code == "RATE_LIMITED":
        return ThrottledError(text, retry_after=retry_after_seconds(response.headers.get("Retry-After"), 10.0))
    if response.status_code >= 500 or response.status_code in (401, 408):
        return TransientError(text)
    return TerminalError(text, reason_code="square_rejected")


class SquareClient:
    def __init__(self, *, base_url: str, access_token: str, api_version: str, http: httpx.AsyncClient) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Square-Version": api_version,
            "Accept": "application/json",
        }
        self._http = http

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            response = await self._http.request(method, self._base + path, json=body, headers=self._headers)
        except httpx.InvalidURL as error:  # not a passing trouble: the same URL is refused every time
            raise TerminalError(f"Square URL refused: {error}", reason_code="invalid_id") from error
        except httpx.TransportError as error:
            raise TransientError(f"Square unreachable: {type(error).__name__}") from error
        tracing.exchange(exchange_record("square", method, path, body, response))
        return response

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        response = await self._request("GET", f"/v2/customers/{segment(customer_id)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response)
        return named_object(response, "customer")

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

    async def _get_object(self, path: str, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response)
        return named_object(response, name)

    async def retrieve_order(self, order_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/orders/{segment(order_id)}", "order")

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
        return await self._get_object(f"/v2/payments/{segment(payment_id)}", "payment")

    async def get_refund(self, refund_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/refunds/{segment(refund_id)}", "refund")

    async def retrieve_location(self, location_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/locations/{segment(location_id)}", "location")

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
