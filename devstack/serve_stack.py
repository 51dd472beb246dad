"""`make serve` / `make serve-demo`: start the whole local stack and keep it serving until Ctrl-C.

`--demo` first plays the demo's customers and store day through it (the same scenario as `make demo`,
smaller by default), so the console, the CLI and the record timelines have records to show.
"""

from __future__ import annotations

import argparse
import signal
import socket
import threading
from typing import Any

from devstack.sales_scenario import STACK_ENV, SalesPlan, run_sales
from devstack.scenario import ScenarioPlan, ScenarioResult, run_scenario
from devstack.stack import PROJECT_DIR, Stack, StackOptions, free_port

DEFAULT_PORT = 7071


def host_port() -> int:
    try:
        with socket.create_connection(("127.0.0.1", DEFAULT_PORT), timeout=0.2):
            return free_port()  # 7071 is taken (another host?): use a free one
    except OSError:
        return DEFAULT_PORT


def load_demo_data(stack: Stack, customers: int, sales: int) -> ScenarioResult:
    print(f"Loading the demo's data: {customers} customers, then {sales} sales with refunds (live progress below)")
    result = run_scenario(stack, ScenarioPlan(customers=customers), timeout=240, show_progress=True)
    day = run_sales(stack, SalesPlan(sales=sales), 240, show_progress=True)
    state = "the CRM matches Square" if result.ok and not day.unconverged else "the CRM does NOT match Square yet"
    print(f"Loaded: {result.square['live']} live customers, {day.crm.get('tb_transactions', 0)} sales; {state}")
    return result


def _example_record(result: ScenarioResult | None) -> tuple[str, str]:
    """A failure to look at (flow, Square id), or a placeholder when no data was loaded."""
    if result is not None:
        for failure in sorted(result.failures, key=lambda f: f["record_id"]):
            if failure["status"] == "open":
                return "customers", str(failure["record_id"])
    return "customers", "<square customer id>"


def banner(stack: Stack, result: ScenarioResult | None) -> str:
    urls, key = stack.urls, stack.env["LOCAL_FUNCTION_KEY"]
    flow, record = _example_record(result)
    azurite = stack.env["AzureWebJobsStorage"].split("QueueEndpoint=")[1].split(";")[0]
    return f"""
Tillbridge local stack is serving (Ctrl-C stops it; logs in {stack.options.log_dir})
  ops console        {urls["host"]}/api/console/
  function key       {key}    (the console asks for it; the admin API wants it as x-functions-key)
  admin API          {urls["host"]}/api/ops/health   OpenAPI: {urls["host"]}/api/ops/openapi.json
  webhooks           {urls["host"]}/api/square/webhooks
  Square emulator    {urls["square"]}   e.g. curl -X POST {urls["square"]}/_control/customers -d '{{"given_name":"Ada","email_address":"ada@example.com"}}'
  Dataverse emulator {urls["dataverse"]}   e.g. curl {urls["dataverse"]}/_control/tables/contacts
  Azurite            {azurite} (queues), tables and blobs beside it

The `tillbridge` CLI, in another terminal in {PROJECT_DIR} (.venv/bin is not on PATH until activated):
  source .venv/bin/activate
  export TILLBRIDGE_URL={urls["host"]} TILLBRIDGE_FUNCTION_KEY={key}
  tillbridge status
  tillbridge failures list --status any
  tillbridge failures show {flow} {record}
  tillbridge failures list --json          # for scripts: one JSON document, ids in full
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the local Tillbridge stack until Ctrl-C")
    parser.add_argument("--demo", action="store_true", help="load the demo's customers and store day first")
    parser.add_argument("--customers", type=int, default=120, help="customers the demo data creates (--demo)")
    parser.add_argument("--sales", type=int, default=40, help="sales the demo data rings up (--demo)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    name = "serve-demo" if args.demo else "serve"
    extra: dict[str, Any] = dict(STACK_ENV) if args.demo else {}
    options = StackOptions(
        host_port=host_port(),
        dataverse_latency_ms=25,
        dataverse_jitter_ms=25,
        log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / name,
        extra_env=extra,
    )
    print("Starting Azurite, the Square and Dataverse emulators and the local function host", flush=True)
    with Stack(options) as stack:
        result = load_demo_data(stack, args.customers, args.sales) if args.demo else None
        print(banner(stack, result), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
