"""Square's history reads (ListLocations, SearchCustomers, SearchOrders, ListPayments, ListPaymentRefunds)
with the same names and signatures as the Square client gets them on helper A2's branch: once that client
is merged, this subclass goes and the composition root uses the client itself (shapes: SPEC api.json;
reference/square.md §3). Each pages with Square's cursor, which must resend the original query."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from shared.adapters.square_http import SquareClient, classify

Page = tuple[list[dict[str, Any]], str | None]


def _page(response: httpx.Response, name: str) -> Page:
    if response.status_code != 200:
        raise classify(response)
    document = response.json()
    return list(document.get(name, [])), document.get("cursor") or None


class SquareHistoryClient(SquareClient):
    async def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        query = {k: str(v) for k, v in params.items() if v is not None}
        return await self._request("GET", f"{path}?{urlencode(query)}" if query else path)

    async def search_customers(self, query: dict[str, Any], cursor: str | None = None, *, limit: int = 100) -> Page:
        body: dict[str, Any] = {"limit": limit, "query": query}
        if cursor:
            body["cursor"] = cursor
        return _page(await self._request("POST", "/v2/customers/search", body), "customers")

    async def search_orders(
        self, location_ids: list[str], query: dict[str, Any], cursor: str | None = None, *, limit: int = 500
    ) -> Page:
        if not 1 <= len(location_ids) <= 10:
            raise ValueError("SearchOrders takes 1 to 10 location ids per request")
        body: dict[str, Any] = {"location_ids": location_ids, "query": query, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        return _page(await self._request("POST", "/v2/orders/search", body), "orders")

    async def list_payments(self, cursor: str | None = None, **params: str | int | None) -> Page:
        return _page(await self._get("/v2/payments", {**params, "cursor": cursor}), "payments")

    async def list_refunds(self, cursor: str | None = None, **params: str | int | None) -> Page:
        return _page(await self._get("/v2/refunds", {**params, "cursor": cursor}), "refunds")

    async def list_locations(self) -> list[dict[str, Any]]:
        locations, _ = _page(await self._request("GET", "/v2/locations"), "locations")
        return locations
