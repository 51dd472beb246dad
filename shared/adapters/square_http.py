"""Thin async Square REST client (httpx) for the endpoints Tillbridge calls.

Chosen over the `squareup` SDK for import time and size (docs/decisions/0002-square-client.md).
Shapes: square/connect-api-specification api.json (RetrieveCustomer, SearchCustomers); error body
`{"errors":[{"category","code","detail"}]}` per Square's "Handling errors" page.
"""

from __future__ import annotations

from typing import Any

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
        except httpx.TransportError as error:
            raise TransientError(f"Square unreachable: {type(error).__name__}") from error
        tracing.exchange(exchange_record("square", method, path, body, response))
        return response

    async def retrieve_customer(self, customer_id: str) -> dict[str, Any] | None:
        response = await self._request("GET", f"/v2/customers/{customer_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json()["customer"])

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

    async def bulk_retrieve_customers(self, customer_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """BulkRetrieveCustomers, ≤ 100 ids a call; per-id NOT_FOUND errors become None."""
        found: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(customer_ids), 100):
            chunk = customer_ids[start : start + 100]
            response = await self._request("POST", "/v2/customers/bulk-retrieve", {"customer_ids": chunk})
            if response.status_code != 200:
                raise classify(response)
            for customer_id, answer in (response.json().get("responses") or {}).items():
                errors = answer.get("errors") or []
                if any(error.get("code") == "NOT_FOUND" for error in errors):
                    found[customer_id] = None
                elif "customer" in answer:
                    found[customer_id] = dict(answer["customer"])
                else:  # another per-id error: not evidence of a delete, so it is left out
                    continue
        return found

    async def _get_object(self, path: str, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json()[name])

    async def retrieve_order(self, order_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/orders/{order_id}", "order")

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
        return await self._get_object(f"/v2/payments/{payment_id}", "payment")

    async def get_refund(self, refund_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/refunds/{refund_id}", "refund")

    async def retrieve_location(self, location_id: str) -> dict[str, Any] | None:
        return await self._get_object(f"/v2/locations/{location_id}", "location")

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

    # ---- writes (two-way contact sync) ----

    async def _write(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.request(
                method, self._base + path, json=body, headers={**self._headers, **(headers or {})}
            )
        except httpx.TransportError as error:
            raise TransientError(f"Square unreachable: {type(error).__name__}") from error
        tracing.exchange(exchange_record("square", method, path, body, response))
        if response.status_code != 200:
            raise write_error(response)
        return response.json()

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any], *, version: int | None = None
    ) -> dict[str, Any] | None:
        """UpdateCustomer (sparse; a field sent as null is cleared) with `version` for optimistic concurrency:
        a stale version raises ConcurrencyError, a rejected field InvalidDataError naming Square's field; None
        when the customer no longer exists."""
        body = {**changes, **({"version": version} if version is not None else {})}
        try:
            document = await self._write("PUT", f"/v2/customers/{customer_id}", body, {"X-Clear-Null": "true"})
        except TerminalError as error:
            if error.reason_code == "square_not_found":
                return None
            raise
        return dict(document["customer"])

    async def create_customer(self, fields: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """CreateCustomer; the same idempotency key returns the first customer instead of a second one."""
        document = await self._write("POST", "/v2/customers", {**fields, "idempotency_key": idempotency_key})
        return dict(document["customer"])

    async def delete_customer(self, customer_id: str, *, version: int | None) -> bool:
        """DeleteCustomer; False when Square no longer has the customer."""
        query = f"?version={version}" if version is not None else ""
        try:
            await self._write("DELETE", f"/v2/customers/{customer_id}{query}")
        except TerminalError as error:
            if error.reason_code == "square_not_found":
                return False
            raise
        return True


# Square's field-level validation codes (UpdateCustomer/CreateCustomer "Errors" in the API reference)
FIELD_ERROR_CODES = {
    "INVALID_EMAIL_ADDRESS",
    "INVALID_PHONE_NUMBER",
    "INVALID_TIME",
    "VALUE_TOO_LONG",
    "VALUE_TOO_SHORT",
    "INVALID_VALUE",
    "INVALID_ENUM_VALUE",
    "INVALID_COUNTRY",
    "INVALID_POSTAL_CODE",
    "EXPECTED_STRING",
}


def write_error(response: httpx.Response) -> Exception:
    """A failed Square write: a stale version → ConcurrencyError (re-read and decide again), bad fields →
    InvalidDataError with Square's field and message, 404 → terminal square_not_found, else classify()."""
    try:
        errors = [e for e in (response.json().get("errors") or []) if isinstance(e, dict)]
    except (ValueError, AttributeError):
        errors = []
    codes = {str(e.get("code", "")) for e in errors}
    if "VERSION_MISMATCH" in codes or (response.status_code == 409 and "CONFLICT" in codes):
        return ConcurrencyError(f"Square {response.status_code} VERSION_MISMATCH")
    field_errors = [e for e in errors if str(e.get("code", "")) in FIELD_ERROR_CODES]
    if response.status_code == 400 and field_errors:
        return InvalidDataError(
            [
                FieldProblem(
                    str(e.get("field") or "customer"), f"Square {e.get('code')}: {e.get('detail') or ''}".strip()
                )
                for e in field_errors
            ]
        )
    if response.status_code == 404:
        return TerminalError(f"Square 404 {', '.join(sorted(codes))}".strip(), reason_code="square_not_found")
    return classify(response)
