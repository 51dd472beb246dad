"""The store side of the demo: three stores (one without an owner mapping, one selling in yen), a
catalog, sales to known customers and to guests with discounts, tax and tips, refunds (large ones
open a case), and a catalog change — then a check that the CRM holds exactly what Square holds."""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.commerce_check import catalog_from, commerce_differences
from devstack.progress import PhaseProgress
from devstack.scenario import labelled
from devstack.stack import Stack

WEST_TEAM = "33333333-3333-3333-3333-333333333333"
DEFAULT_OWNER = "00000000-0000-0000-0000-0000000000a1"
STORES = [
    ("STOREWEST0001", "Grant Park", "USD"),
    ("STOREEAST0002", "Midtown", "USD"),
    ("STORETOKYO003", "Shibuya", "JPY"),
]
UNMAPPED = "STOREEAST0002"
OWNERS = (
    f'{{"default_owner": "systemusers/{DEFAULT_OWNER}", "locations": {{'
    f'"STOREWEST0001": {{"owner": "teams/{WEST_TEAM}", "business_unit": "West", "territory": "Bay Area"}}, '
    f'"STORETOKYO003": {{"owner": "teams/{WEST_TEAM}", "territory": "Kanto"}}}}}}'
)
# What the CRM must show for each store under OWNERS (an unmapped store takes the default owner).
EXPECTED_OWNERS = {
    "STOREWEST0001": {"owner": WEST_TEAM, "business_unit": "West", "territory": "Bay Area"},
    "STOREEAST0002": {"owner": DEFAULT_OWNER},
    "STORETOKYO003": {"owner": WEST_TEAM, "territory": "Kanto"},
}
CASE_THRESHOLD = 25
STACK_ENV = {"LOCATION_OWNERS": OWNERS, "REFUND_CASE_THRESHOLD": str(CASE_THRESHOLD)}
CRM_TABLES = ("tb_transactions", "tb_transactionlines", "tb_payments", "tb_refunds", "tb_locations", "incidents")
MENU = [
    ("Tea", "Drinks", 350),
    ("Latte", "Drinks", 475),
    ("Scone", "Bakery", 425),
    ("Croissant", "Bakery", 395),
    ("Mug", "Merch", 1800),
]


@dataclass
class SalesPlan:
    sales: int = 60
    guest_share: float = 0.25
    refunds: int = 8
    seed: int = 11


@dataclass
class SalesResult:
    orders: int = 0
    refunds: int = 0
    crm: dict[str, int] = field(default_factory=dict)
    unconverged: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # from the last webhook delivered until the CRM matched Square
    in_step: tuple[int, int] = (0, 0)  # (Square objects the CRM holds exactly, objects checked) at the last check
    throughput: str = ""


def prepare(dataverse: httpx.Client) -> None:
    """The team that owns the mapped stores' records."""
    if not any(t["teamid"] == WEST_TEAM for t in dataverse.get("/_control/tables/teams").json()):
        dataverse.post("/_control/tables/teams", json=[{"teamid": WEST_TEAM, "name": "West"}]).raise_for_status()


def drive_sales(square: httpx.Client, customer_ids: list[str], plan: SalesPlan) -> SalesResult:
    rng = random.Random(plan.seed)
    for store_id, name, currency in STORES:
        square.post("/_control/locations", json={"id": store_id, "name": name, "currency": currency}).raise_for_status()
    items = square.post(
        "/_control/catalog",
        json={
            "items": [
                {"name": n, "category": c, "variations": [{"name": "Regular", "price": p, "sku": f"{n[:3].upper()}-1"}]}
                for n, c, p in MENU
            ]
        },
    ).json()["objects"]
    variations = [item["item_data"]["variations"][0]["id"] for item in items]
    payments = []
    for index in range(plan.sales):
        store = STORES[index % len(STORES)][0]
        sale: dict[str, Any] = {
            "location_id": store,
            "lines": [
                {"variation_id": rng.choice(variations), "quantity": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 3))
            ],
        }
        if rng.random() < plan.guest_share:
            sale["buyer_email_address"] = f"guest{index % 7}@example.com"
        elif customer_ids:
            sale["customer_id"] = rng.choice(customer_ids)
        if index % 4 == 0:
            sale.update(discount_percent=10, tax_percent=8.5, tip=rng.choice([0, 100, 200]))
        if index == plan.sales // 2:  # the menu changes mid-day: a new name and category for one item
            square.post(
                "/_control/catalog",
                json={
                    "items": [
                        {
                            "id": items[0]["id"],
                            "name": "Green Tea",
                            "category": "Drinks",
                            "variations": [{"id": variations[0], "name": "Regular", "price": 350, "sku": "GRE-1"}],
                        }
                    ]
                },
            )
        payments.append(square.post("/_control/sales", json=sale).json()["payment"])
    for payment in rng.sample(payments, min(plan.refunds, len(payments))):
        amount = None if rng.random() < 0.5 else max(1, payment["total_money"]["amount"] // 3)
        square.post(
            "/_control/refunds", json={"payment_id": payment["id"], "amount": amount, "reason": "Customer request"}
        )
    return SalesResult(orders=plan.sales, refunds=plan.refunds)


def crm_commerce(dataverse: httpx.Client) -> dict[str, list[dict[str, Any]]]:
    return {name: dataverse.get(f"/_control/tables/{name}").json() for name in (*CRM_TABLES, "contacts")}


def square_commerce(square: httpx.Client) -> dict[str, Any]:
    """Square's commerce state, with which customers were merged into which (buyers follow merges)."""
    state: dict[str, Any] = square.get("/_control/commerce").json()
    state["merged_into"] = square.get("/_control/customers").json()["merged_into"]
    return state


def check_sales(square: httpx.Client, dataverse: httpx.Client) -> tuple[dict[str, str], dict[str, int]]:
    """What differs between Square's commerce state and the CRM's, and the CRM's row counts."""
    state, crm = square_commerce(square), crm_commerce(dataverse)
    problems = commerce_differences(state, crm, catalog_from(state["catalog"]), EXPECTED_OWNERS, CASE_THRESHOLD)
    return problems, {name: len(crm[name]) for name in CRM_TABLES}


def wait_for_sales(square: httpx.Client, dataverse: httpx.Client, result: SalesResult, timeout: float) -> SalesResult:
    started = time.monotonic()
    while True:
        result.unconverged, result.crm = check_sales(square, dataverse)
        checked = sum(result.crm.get(name, 0) for name in ("tb_transactions", "tb_payments", "tb_refunds"))
        result.in_step = (max(0, checked - len(result.unconverged)), checked)
        if not result.unconverged or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    result.seconds = time.monotonic() - started
    return result


def run_sales(stack: Stack, plan: SalesPlan, timeout: float, *, show_progress: bool = False) -> SalesResult:
    """Ring up the store day on the Square emulator (to its live customers) and wait until the CRM matches."""
    result = SalesResult()
    started = time.monotonic()
    out = None if show_progress else io.StringIO()
    with (
        stack.client("square") as square,
        stack.client("dataverse") as dataverse,
        PhaseProgress(stack, "sales", lambda: result.in_step, out=out) as progress,
    ):
        prepare(dataverse)
        live = [c["id"] for c in square.get("/_control/customers").json()["customers"]]
        result = drive_sales(square, live, plan)
        square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=timeout + 10)
        result = wait_for_sales(square, dataverse, result, timeout)
    result.throughput = progress.throughput(time.monotonic() - started)
    return result


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def sales_summary(result: SalesResult) -> str:
    crm = result.crm
    if result.unconverged:
        examples = "; ".join(f"{oid}: {problem}" for oid, problem in list(result.unconverged.items())[:3])
        status = f"NOT CONVERGED: {len(result.unconverged)} objects differ, e.g. {examples}"
    else:
        status = "OK — every sale, line, payment, refund, store, buyer link, contact total and case matches Square"
    return "\n".join(
        [
            *labelled(
                "Sales:",
                f"{result.orders} sales rung up in 3 stores (one unmapped, one in JPY), {result.refunds} refunds, "
                "one catalog change",
            ),
            *labelled(
                "CRM:",
                f"{crm.get('tb_transactions', 0)} transactions, {crm.get('tb_transactionlines', 0)} lines, "
                f"{crm.get('tb_payments', 0)} payments, {crm.get('tb_refunds', 0)} refunds, "
                f"{_count(crm.get('incidents', 0), 'case')}, {crm.get('tb_locations', 0)} stores",
            ),
            *(labelled("Throughput:", result.throughput) if result.throughput else []),
            *labelled("Result:", f"{status} ({result.seconds:.1f} s after the last webhook was delivered)"),
        ]
    )
