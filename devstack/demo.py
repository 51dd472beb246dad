"""`make demo`: start the local stack, run the customer scenario, print what reached the CRM, exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.sales_scenario import STACK_ENV, SalesPlan, run_sales, sales_summary
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
    print()
    print(summary(result))
    print(sales_summary(sales))
    print("  Next:      `make serve-demo` serves this stack with the same data: it prints the console address,")
    print("             the function key and ready-to-paste `tillbridge` commands (docs/operations.md)")
    return 0 if result.ok and not sales.unconverged else 1


if __name__ == "__main__":
    sys.exit(main())
