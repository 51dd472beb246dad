"""Square's Payments and Refunds reads on the emulator (SPEC paths `/v2/payments*`, `/v2/refunds*`).

ListPayments (SPEC ListPayments parameters): `begin_time` inclusive, default now − 1 year; `end_time` default
now; `updated_at_begin_time`/`updated_at_end_time`; `sort_field` CREATED_AT (default) | UPDATED_AT |
OFFLINE_CREATED_AT, `sort_order` DESC by default; `location_id` defaults to the seller's MAIN location only;
`total`, `last_4`, `card_brand` filters; `limit` above 100 is ignored (default 100 used).
ListPaymentRefunds (SPEC ListPaymentRefunds parameters): same times but `updated_at_begin_time` defaults to
`begin_time`; ALL locations by default; `status`, `source_type`; `limit` above 100 → at most 100.
Both: results are a cursor's snapshot; a cursor only with the original query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from devstack.square_emulator.clock import canonical, stamp
from devstack.square_emulator.keys import COMMERCE, CURSORS
from devstack.square_emulator.paging import fingerprint, integer, lenient_limit
from devstack.square_emulator.responses import SquareFault, not_found, ok

Row = dict[str, Any]
PAYMENT_SORTS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "OFFLINE_CREATED_AT": "created_at"}
REFUND_SORTS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at"}


async def get_payment(request: web.Request) -> web.Response:
    wanted = request.match_info["payment_id"]
    payment = request.app[COMMERCE].payments.get(wanted)
    if payment is None:
        raise not_found("payment", wanted)
    return ok({"payment": payment})


async def get_refund(request: web.Request) -> web.Response:
    wanted = request.match_info["refund_id"]
    refund = request.app[COMMERCE].refunds.get(wanted)
    if refund is None:
        raise not_found("refund", wanted)
    return ok({"refund": refund})


def _time(params: dict[str, str], name: str, default: str | None) -> str | None:
    if name not in params:
        return default
    value = canonical(params[name])
    if value is None:
        raise SquareFault(400, "INVALID_TIME", f"`{name}` is not an RFC 3339 time.", name)
    return value


def _range(
    params: dict[str, str], begin: str, end: str, defaults: tuple[str | None, str | None]
) -> Callable[[str], bool]:
    low, high = _time(params, begin, defaults[0]), _time(params, end, defaults[1])
    if low and high and low > high:
        raise SquareFault(400, "INVALID_TIME_RANGE", f"`{end}` is before `{begin}`.", end)
    return lambda value: (low is None or value >= low) and (high is None or value < high)


def _sort(params: dict[str, str], fields: dict[str, str]) -> tuple[str, bool]:
    field = params.get("sort_field", "CREATED_AT")
    if field not in fields:
        raise SquareFault(400, "INVALID_ENUM_VALUE", f"sort_field must be one of {sorted(fields)}.", "sort_field")
    order = params.get("sort_order", "DESC")
    if order not in ("ASC", "DESC"):
        raise SquareFault(400, "INVALID_SORT_ORDER", "sort_order must be ASC or DESC.", "sort_order")
    return fields[field], order == "DESC"


def _page(
    request: web.Request,
    endpoint: str,
    rows: dict[str, Row],
    matches: Callable[[Row], bool],
    *,
    sort: tuple[str, bool],
    limit: int,
) -> tuple[list[Row], str | None]:
    params = dict(request.query)

    def build() -> list[str]:
        found = [row for row in rows.values() if matches(row)]
        found.sort(key=lambda row: (row[sort[0]], row["id"]), reverse=sort[1])
        return [row["id"] for row in found]

    query = {k: v for k, v in params.items() if k not in ("cursor", "limit")}
    keys, cursor = request.app[CURSORS].page(
        bound_to=fingerprint(endpoint, query), cursor=params.get("cursor"), limit=limit, build=build
    )
    return [rows[str(k)] for k in keys], cursor


def _listing(name: str, rows: list[Row], cursor: str | None) -> web.Response:
    result: dict[str, Any] = {name: rows} if rows else {}
    if cursor:
        result["cursor"] = cursor
    return ok(result)


async def list_payments(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    params = dict(request.query)
    now = commerce.clock.now()
    created = _range(params, "begin_time", "end_time", (stamp(now - timedelta(days=365)), None))  # end: now
    updated = _range(params, "updated_at_begin_time", "updated_at_end_time", (None, None))
    location = params.get("location_id") or commerce.main_location_id()
    total = integer(params.get("total"), "total")
    last_4, brand = params.get("last_4"), params.get("card_brand")

    def matches(payment: Row) -> bool:
        card = payment.get("card_details", {}).get("card", {})
        return (
            payment["location_id"] == location
            and created(payment["created_at"])
            and updated(payment["updated_at"])
            and (total is None or payment["total_money"]["amount"] == total)
            and (last_4 is None or card.get("last_4") == last_4)
            and (brand is None or card.get("card_brand") == brand)
        )

    limit = lenient_limit(params.get("limit"), high=100, default=100, over="default")
    rows, cursor = _page(
        request, "ListPayments", commerce.payments, matches, sort=_sort(params, PAYMENT_SORTS), limit=limit
    )
    return _listing("payments", rows, cursor)


async def list_refunds(request: web.Request) -> web.Response:
    commerce = request.app[COMMERCE]
    params = dict(request.query)
    now = commerce.clock.now()
    begin = _time(params, "begin_time", stamp(now - timedelta(days=365)))
    created = _range(params, "begin_time", "end_time", (begin, None))  # end: now (nothing is later)
    updated = _range(params, "updated_at_begin_time", "updated_at_end_time", (begin, None))
    location, status, source = params.get("location_id"), params.get("status"), params.get("source_type")

    def matches(refund: Row) -> bool:
        payment = commerce.payments.get(refund["payment_id"], {})
        return (
            created(refund["created_at"])
            and updated(refund["updated_at"])
            and (location is None or refund["location_id"] == location)
            and (status is None or refund["status"] == status)
            and (source is None or payment.get("source_type") == source)
        )

    limit = lenient_limit(params.get("limit"), high=100, default=100, over="high")
    rows, cursor = _page(
        request, "ListPaymentRefunds", commerce.refunds, matches, sort=_sort(params, REFUND_SORTS), limit=limit
    )
    return _listing("refunds", rows, cursor)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/payments", list_payments)
    app.router.add_get("/v2/payments/{payment_id}", get_payment)
    app.router.add_get("/v2/refunds", list_refunds)
    app.router.add_get("/v2/refunds/{refund_id}", get_refund)
