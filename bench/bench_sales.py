"""Benchmark the store-activity flows on the local stack and print the figures (not a test).

  python -m bench.bench_sales [--customers 40 --sales 120 --refunds 20 --latency-ms 25]

Prints, per phase: Dataverse and Square requests per sale (first sales of the day with cold caches
and unseen stores; then warm), per refund, and how fast the CRM converged on exactly what Square holds.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from typing import Any

import httpx

from bench.bench_customers import _converge, _reset_stats
from devstack.commerce_check import catalog_from
from devstack.sales_scenario import STACK_ENV, SalesPlan, SalesResult, drive_sales, prepare, wait_for_sales
from devstack.stack import PROJECT_DIR, Stack, StackOptions


def _counters(stack: Stack) -> tuple[Counter[str], Counter[str]]:
    dataverse = Counter(stack.client("dataverse").get("/_control/stats").json())
    square = Counter(stack.client("square").get("/_control/stats").json())
    return dataverse, square


def _settle(stack: Stack, result: SalesResult, timeout: float) -> SalesResult:
    square, dataverse = stack.client("square"), stack.client("dataverse")
    square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=timeout + 10)
    settled = wait_for_sales(square, dataverse, result, timeout)
    if settled.unconverged:
        raise SystemExit(f"the CRM did not converge: {list(settled.unconverged.items())[:3]}")
    return settled


def _phase(stack: Stack, name: str, units: int, drive: Any, timeout: float) -> dict[str, Any]:
    _reset_stats(stack)
    started = time.monotonic()
    result = drive()
    _settle(stack, result, timeout)
    seconds = time.monotonic() - started
    dataverse, square = _counters(stack)
    return {"name": name, "units": units, "seconds": seconds, "dataverse": dataverse, "square": square}


def _warm_sales(square: httpx.Client, customer_ids: list[str], count: int, seed: int) -> SalesResult:
    rng = random.Random(seed)
    state = square.get("/_control/commerce").json()
    variations = sorted(catalog_from(state["catalog"]))
    stores = [location["id"] for location in state["locations"]]
    for index in range(count):
        sale: dict[str, Any] = {
            "location_id": stores[index % len(stores)],
            "lines": [{"variation_id": rng.choice(variations), "quantity": 1} for _ in range(rng.randint(1, 3))],
            "customer_id": rng.choice(customer_ids),
        }
        square.post("/_control/sales", json=sale).raise_for_status()
    return SalesResult(orders=count)


def _refunds(square: httpx.Client, count: int, seed: int) -> SalesResult:
    rng = random.Random(seed)
    state = square.get("/_control/commerce").json()
    refunded = {refund["payment_id"] for refund in state["refunds"]}
    payments = [p for p in state["payments"] if p["id"] not in refunded]
    for payment in rng.sample(payments, min(count, len(payments))):
        amount = max(1, payment["total_money"]["amount"] // 4)
        square.post("/_control/refunds", json={"payment_id": payment["id"], "amount": amount, "reason": "bench"})
    return SalesResult(refunds=count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--sales", type=int, default=120, help="sales per phase")
    parser.add_argument("--refunds", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=25.0, help="Dataverse emulator latency (+ same jitter)")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    options = StackOptions(
        dataverse_latency_ms=args.latency_ms,
        dataverse_jitter_ms=args.latency_ms,
        log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / "bench-sales",
        extra_env=STACK_ENV,
    )
    with Stack(options) as stack:
        square = stack.client("square")
        prepare(stack.client("dataverse"))
        people = [
            {"given_name": f"Buyer{i}", "family_name": "Bench", "email_address": f"buyer{i}@bench.example"}
            for i in range(args.customers)
        ]
        ids = [c["id"] for c in square.post("/_control/customers", json=people).json()]
        _converge(stack, set(ids))
        plan = SalesPlan(sales=args.sales, refunds=0, guest_share=0.25)
        phases = [
            _phase(
                stack,
                "first sales (cold caches, new stores)",
                args.sales,
                lambda: drive_sales(square, ids, plan),
                args.timeout,
            ),
            _phase(
                stack,
                "warm sales (known customers)",
                args.sales,
                lambda: _warm_sales(square, ids, args.sales, seed=5),
                args.timeout,
            ),
            _phase(stack, "refunds", args.refunds, lambda: _refunds(square, args.refunds, seed=9), args.timeout),
        ]
    report(phases, args)


def _top(counter: Counter[str], units: int) -> str:
    calls = [
        (k, v) for k, v in counter.items() if k not in ("requests", "writes_applied") and not k.startswith("status")
    ]
    return ", ".join(f"{k} {v / units:.2f}" for k, v in sorted(calls, key=lambda kv: -kv[1])[:5])


def report(phases: list[dict[str, Any]], args: Any) -> None:
    print("Tillbridge store-activity benchmark (local stack, 127.0.0.1)")
    print(
        f"  Dataverse latency {args.latency_ms:.0f}±{args.latency_ms:.0f} ms; {args.customers} customers linked first"
    )
    for phase in phases:
        units, dataverse, square = phase["units"], phase["dataverse"], phase["square"]
        print(f"  {phase['name']}: {units} in {phase['seconds']:.1f} s to converged ({units / phase['seconds']:.1f}/s)")
        print(f"    Dataverse requests per unit: {dataverse['requests'] / units:.2f}  [{_top(dataverse, units)}]")
        print(f"    Square requests per unit:    {square['requests'] / units:.2f}  [{_top(square, units)}]")
        throttled = dataverse.get("status 429", 0)
        print(f"    Dataverse 429s: {throttled}; records written: {dataverse.get('writes_applied', 0)}")


if __name__ == "__main__":
    main()
