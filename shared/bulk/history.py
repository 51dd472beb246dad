"""What the backfill asks of Square, in Square's terms: each stream oldest first with the resume point as
an inclusive lower bound (SearchCustomers sorted by CREATED_AT; SearchOrders sorted by the filtered field,
which Square requires; ListPayments/ListPaymentRefunds ascending with begin_time). reference/square.md §3."""

from __future__ import annotations

from typing import Any

from shared.core.ports import SquareApi

Page = tuple[list[dict[str, Any]], str | None]


def customers_query(created_from: str | None, updated_since: str | None) -> dict[str, Any]:
    """Oldest first (CREATED_AT ascending: a resume point that never moves back); filters AND together."""
    query: dict[str, Any] = {"sort": {"field": "CREATED_AT", "order": "ASC"}}
    query_filter: dict[str, Any] = {}
    if created_from:
        query_filter["created_at"] = {"start_at": created_from}
    if updated_since:
        query_filter["updated_at"] = {"start_at": updated_since}
    if query_filter:
        query["filter"] = query_filter
    return query


def orders_query(time_field: str, start_at: str | None) -> dict[str, Any]:
    """SearchOrders: the sort field must be the filtered one (CREATED_AT, UPDATED_AT or CLOSED_AT)."""
    query: dict[str, Any] = {"sort": {"sort_field": time_field, "sort_order": "ASC"}}
    if start_at:
        query["filter"] = {"date_time_filter": {time_field.lower(): {"start_at": start_at}}}
    return query


class SquareHistory:
    """The backfill's streams over the Square client."""

    def __init__(self, square: SquareApi) -> None:
        self._square = square

    async def search_customers_by_creation(
        self, created_from: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page:
        return await self._square.search_customers(customers_query(created_from, updated_since), cursor)

    async def list_locations(self) -> list[dict[str, Any]]:
        return await self._square.list_locations()

    async def search_orders(
        self, location_ids: list[str], time_field: str, start_at: str | None, cursor: str | None = None
    ) -> Page:
        return await self._square.search_orders(location_ids, orders_query(time_field, start_at), cursor)

    async def list_payments(
        self, location_id: str, begin_time: str | None, updated_since: str | None, cursor: str | None = None
    ) -> Page:
        return await self._square.list_payments(
            cursor,
            location_id=location_id,
            sort_order="ASC",
            limit=100,
            begin_time=begin_time,
            updated_at_begin_time=updated_since,
        )

    async def list_refunds(self, begin_time: str | None, updated_since: str | None, cursor: str | None = None) -> Page:
        return await self._square.list_refunds(
            cursor, sort_order="ASC", limit=100, begin_time=begin_time, updated_at_begin_time=updated_since
        )

    async def search_catalog_changed_since(
        self, begin_time: str | None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        return await self._square.search_catalog_changed_since(begin_time, cursor)
