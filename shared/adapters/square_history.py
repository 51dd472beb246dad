"""Square's history endpoints for the backfill and reconcile (shapes: square/connect-api-specification
api.json; notes in reference/square.md §3): customers by creation time, locations, orders, payments and
refunds by time range, each page by page with Square's cursor (which must resend the original query).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from shared.adapters.square_http import SquareClient, classify

Page = tuple[list[dict[str, Any]], str | None]


def _time_range(start_at: str | None) -> dict[str, str]:
    return {"start_at": start_at} if start_at else {}


class SquareHistoryClient(SquareClient):
    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = await self._request(method, path, body)
        if response.status_code != 200:
            raise classify(response)
        return dict(response.json())

    async def search_customers_by_creation(
        self, created_from: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page:
        """SearchCustomers oldest first (sort CREATED_AT ascending: a resume point that never moves back),
        created at or after `created_from`, optionally updated at or after `updated_since` (filters AND)."""
        query_filter: dict[str, Any] = {}
        if created_from:
            query_filter["created_at"] = _time_range(created_from)
        if updated_since:
            query_filter["updated_at"] = _time_range(updated_since)
        body: dict[str, Any] = {"limit": 100, "query": {"sort": {"field": "CREATED_AT", "order": "ASC"}}}
        if query_filter:
            body["query"]["filter"] = query_filter
        if cursor:
            body["cursor"] = cursor
        document = await self._json("POST", "/v2/customers/search", body)
        return list(document.get("customers", [])), document.get("cursor")

    async def count_customers(self, updated_since: str | None) -> int | None:
        """How many customers a backfill will read (SearchCustomers `count`), for the progress bar's ETA."""
        body: dict[str, Any] = {"limit": 1, "count": True}
        if updated_since:
            body["query"] = {"filter": {"updated_at": _time_range(updated_since)}}
        count = (await self._json("POST", "/v2/customers/search", body)).get("count")
        return int(count) if isinstance(count, int) else None

    async def list_locations(self) -> list[dict[str, Any]]:
        """ListLocations: every location, inactive ones too, in one answer (no paging)."""
        return list((await self._json("GET", "/v2/locations")).get("locations", []))

    async def search_orders(
        self, location_ids: list[str], time_field: str, start_at: str | None, cursor: str | None = None
    ) -> Page:
        """SearchOrders for ≤ 10 locations, oldest first by `time_field` (CREATED_AT or UPDATED_AT: the sort
        field must be the filtered one)."""
        query: dict[str, Any] = {"sort": {"sort_field": time_field, "sort_order": "ASC"}}
        if start_at:
            query["filter"] = {"date_time_filter": {time_field.lower(): _time_range(start_at)}}
        body: dict[str, Any] = {"location_ids": location_ids[:10], "limit": 500, "query": query}
        if cursor:
            body["cursor"] = cursor
        document = await self._json("POST", "/v2/orders/search", body)
        return list(document.get("orders", [])), document.get("cursor")

    async def _list(self, path: str, key: str, params: dict[str, str], cursor: str | None) -> Page:
        if cursor:
            params["cursor"] = cursor
        document = await self._json("GET", f"{path}?{urlencode(params)}")
        return list(document.get(key, [])), document.get("cursor")

    async def list_payments(
        self, location_id: str, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page:
        """ListPayments of one location (the default is the main location only), oldest first."""
        params = {"location_id": location_id, "sort_order": "ASC", "limit": "100"}
        if begin_time:
            params["begin_time"] = begin_time
        if updated_since:
            params["updated_at_begin_time"] = updated_since
        return await self._list("/v2/payments", "payments", params, cursor)

    async def list_refunds(self, begin_time: str | None, updated_since: str | None, cursor: str | None = None) -> Page:
        """ListPaymentRefunds of every location, oldest first."""
        params = {"sort_order": "ASC", "limit": "100"}
        if begin_time:
            params["begin_time"] = begin_time
        if updated_since:
            params["updated_at_begin_time"] = updated_since
        return await self._list("/v2/refunds", "refunds", params, cursor)
