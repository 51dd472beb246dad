"""Extra Dataverse requests per sale with follow-up rules and segments on (target ≤ 0.2): the same store day
(customers and guests, mixed baskets, duplicate deliveries) through the real sales flow over in-memory ports,
once with the shipped file (no rules) and once with bench/followup_rules.yaml; the segments timer runs once
per 100 sales (an hourly schedule at a busy store). Counts requests, not time: the emulator-based
`make bench-sales` measures latency.

    python -m bench.bench_followup [--sales 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path
from typing import Any

from shared.config.file import load_config
from shared.core.ports import LedgerRow
from shared.flows.context import SalesOptions
from shared.flows.sales import sync_payment
from shared.flows.segments import run_segments
from tests.fakes import FakeDataverse, FakeSquare, FakeState, flow_context
from tests.unit.test_sales_flows import command

RULES = Path(__file__).with_name("followup_rules.yaml")


def _day(sales: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    rng = random.Random(seed)
    day = []
    for index in range(sales):
        order_id, payment_id = f"O{index}", f"P{index}"
        amount = rng.choice([450, 1200, 3800, 6500, 12000])
        at = f"2026-11-{1 + index * 28 // sales:02d}T10:{index % 60:02d}:00.000Z"
        order: dict[str, Any] = {
            "id": order_id,
            "location_id": "L1",
            "state": "COMPLETED",
            "updated_at": at,
            "total_money": {"amount": amount, "currency": "USD"},
            "line_items": [],
        }
        payment: dict[str, Any] = {
            "id": payment_id,
            "order_id": order_id,
            "status": "COMPLETED",
            "location_id": "L1",
            "created_at": at,
            "updated_at": at,
            "total_money": {"amount": amount, "currency": "USD"},
            "amount_money": {"amount": amount, "currency": "USD"},
            "receipt_number": payment_id,
        }
        if rng.random() < 0.25:
            payment["buyer_email_address"] = f"guest{rng.randint(0, 40)}@example.com"
        else:
            order["customer_id"] = f"C{rng.randint(0, 150)}"
        day.append((order, payment))
    return day


async def _run(day: list[tuple[dict[str, Any], dict[str, Any]]], config_file: Path | None) -> dict[str, float]:
    dv, state = FakeDataverse(), FakeState()
    square = FakeSquare(orders={order["id"]: order for order, _ in day})
    for index in range(151):
        state.ledger[("customer", f"C{index}")] = LedgerRow(
            "customer", f"C{index}", dataverse_id=f"c-{index}", etag="1"
        )
    ctx = flow_context(dataverse=dv, state=state, square=square)
    ctx.sales = SalesOptions(guest_checkout="match")
    ctx.config = load_config(config_file) if config_file else None
    rule_rows = 0
    for index, (_, payment) in enumerate(day):
        deliveries = 2 if index % 5 == 0 else 1  # every fifth webhook delivered twice
        for copy in range(deliveries):
            await sync_payment(
                command("payment", "payment.updated", payment["id"], payment, "payment", f"e{index}.{copy}"), ctx
            )
        if config_file and index % 100 == 99:
            await run_segments(ctx)
    for batch in dv.batches:
        rule_rows += sum(1 for op in batch if op.path.split("(")[0] in ("leads", "opportunities", "tasks"))
    return {"requests": float(len(dv.calls)), "rule_rows": float(rule_rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=2000)
    args = parser.parse_args()
    day = _day(args.sales, seed=5)
    base = asyncio.run(_run(day, None))
    rules = asyncio.run(_run(day, RULES))
    extra = (rules["requests"] - base["requests"]) / args.sales
    print(f"sales: {args.sales} (every fifth webhook delivered twice), rules: {RULES.name}")
    print(f"Dataverse requests without rules: {base['requests']:.0f} ({base['requests'] / args.sales:.3f} per sale)")
    print(f"Dataverse requests with rules:    {rules['requests']:.0f} ({rules['requests'] / args.sales:.3f} per sale)")
    print(f"follow-up rows written (leads, opportunities, tasks): {rules['rule_rows']:.0f}")
    print(f"extra Dataverse requests per sale: {extra:.3f} (target ≤ 0.2)")


if __name__ == "__main__":
    main()
