"""`make demo`: start the local stack, run the customer scenario, the store day and its follow-up (leads,
opportunities, tasks, marketing lists), print what reached the CRM against the expectations, exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.followup_scenario import STACK_ENV, drive_followup, followup_summary, wait_for_followup
from devstack.sales_scenario import SalesPlan, run_sales, sales_summary
from devstack.scenario import ScenarioPlan, run_scenario, summary
from devstack.stack import PROJECT_DIR, Stack, StackOptions


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Tillbridge demo scenario on the local stack")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--sales", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=25.0, help="Dataverse emulator latency per request")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    logs = PROJECT_DIR / "artifacts" / "stack-logs" / "demo"
    print("Starting Azurite, the Square and Dataverse emulators and the local function host")
    print(f"  (logs: {logs.relative_to(PROJECT_DIR)})")
    options = StackOptions(
        dataverse_latency_ms=args.latency_ms,
        dataverse_jitter_ms=args.latency_ms,
        log_dir=Path(logs),
        extra_env=STACK_ENV,
    )
    with Stack(options) as stack:
        urls = stack.urls
        print(f"Host {urls['host']}  Square emulator {urls['square']}  Dataverse emulator {urls['dataverse']}")
        print(
            f"Driving {args.customers} customers through the Square emulator (duplicated, delayed, reordered webhooks)"
        )
        result = run_scenario(stack, ScenarioPlan(customers=args.customers), timeout=args.timeout, show_progress=True)
        print(f"Ringing up {args.sales} sales at the tills, with refunds and a catalog change")
        sales = run_sales(stack, SalesPlan(sales=args.sales), args.timeout, show_progress=True)
        print("Follow-up: rules and segments from devstack/followup.yaml on a few more sales and a refund")
        with stack.client("square") as square, stack.client("dataverse") as dataverse:
            expected = drive_followup(square, dataverse)
            square.post("/_control/flush", params={"timeout": str(args.timeout)}, timeout=args.timeout + 10)
            followup = wait_for_followup(dataverse, expected, args.timeout)
    print()
    print(summary(result))
    print(sales_summary(sales))
    print(followup_summary(followup))
    print("  Next:      `make serve-demo` serves this stack with the same data: it prints the console address,")
    print("             the function key and ready-to-paste `tillbridge` commands (docs/operations.md)")
    return 0 if result.ok and not sales.unconverged and not followup.differences else 1


if __name__ == "__main__":
    sys.exit(main())
