"""Benchmark the customer spine on the local stack and print the figures (not a test).

  python -m bench.bench_customers [--rate 200 --seconds 5 --customers 200 --latency-ms 25]

Prints: cold import time of function_app; webhook acknowledgements per second and p50/p99 latency
through the local host at a fixed offered load; Dataverse and Square requests per customer event
(first sight, and once linked); worker throughput (events/s end to end) against a Dataverse emulator
with the given latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from devstack.crm_check import differences
from devstack.stack import PROJECT_DIR, Stack, StackOptions
from shared.pipeline.signature import sign


def import_time(runs: int = 7) -> list[float]:
    code = "import time; t = time.perf_counter(); import function_app; print(time.perf_counter() - t)"
    return sorted(
        float(subprocess.check_output([sys.executable, "-c", code], cwd=PROJECT_DIR, text=True)) for _ in range(runs)
    )


def _event(customer_id: str, version: int) -> bytes:
    event = {
        "merchant_id": "BENCH",
        "type": "customer.updated",
        "event_id": str(uuid.uuid4()),
        "created_at": "2026-11-22T10:00:00Z",
        "data": {
            "type": "customer",
            "id": customer_id,
            "object": {
                "customer": {
                    "id": customer_id,
                    "version": version,
                    "given_name": "Bench",
                    "family_name": f"Load {version}",
                    "email_address": f"{customer_id.lower()}@bench.example",
                    "updated_at": "2026-11-22T10:00:00Z",
                }
            },
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


async def offered_load(stack: Stack, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: a request every 1/rate s regardless of replies; latency measured per request."""
    url = stack.env["SQUARE_WEBHOOK_URL"]
    key = stack.env["SQUARE_WEBHOOK_SIGNATURE_KEY"]
    total = int(rate * seconds)
    bodies = [_event(f"BENCHLOAD{index % 50:017d}", index) for index in range(total)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(body: bytes) -> None:
            started = time.perf_counter()
            response = await client.post(
                url,
                content=body,
                headers={"x-square-hmacsha256-signature": sign(body, signature_key=key, notification_url=url)},
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        tasks = []
        for index, body in enumerate(bodies):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "offered_rps": rate,
        "requests": total,
        "acked_per_s": statuses.get(200, 0) / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[int(len(ordered) * 0.99) - 1],
        "statuses": statuses,
    }


def _converge(stack: Stack, ids: set[str], timeout: float = 300) -> float:
    square, dataverse = stack.client("square"), stack.client("dataverse")
    started = time.monotonic()
    square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=timeout + 10)
    while time.monotonic() - started < timeout:
        if not differences(
            ids, square.get("/_control/customers").json(), dataverse.get("/_control/tables/contacts").json()
        ):
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError("the CRM did not converge")


def wait_queue_empty(stack: Stack, timeout: float = 300) -> float:
    """Seconds until the events queue holds nothing (visible or in flight)."""
    from azure.storage.queue import QueueClient

    queue = QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], stack.env["SQUARE_EVENTS_QUEUE"])
    started = time.monotonic()
    while queue.get_queue_properties().approximate_message_count:
        if time.monotonic() - started > timeout:
            raise TimeoutError("the queue did not drain")
        time.sleep(0.1)
    return time.monotonic() - started


def _reset_stats(stack: Stack) -> None:
    stack.client("square").delete("/_control/stats")
    stack.client("dataverse").delete("/_control/stats")


def _stats(stack: Stack) -> tuple[int, int]:
    return stack.client("dataverse").get("/_control/stats").json().get("requests", 0), stack.client("square").get(
        "/_control/stats"
    ).json().get("requests", 0)


def requests_per_event(stack: Stack, customers: int) -> dict[str, Any]:
    square = stack.client("square")
    people = [
        {
            "given_name": f"Per{i}",
            "family_name": "Event",
            "email_address": f"per{i}@bench.example",
            "phone_number": f"+1 415 555 {i:04d}",
        }
        for i in range(customers)
    ]
    _reset_stats(stack)
    started = time.monotonic()
    created = square.post("/_control/customers", json=people).json()
    ids = {c["id"] for c in created}
    first_seconds = _converge(stack, ids)
    first = _stats(stack)
    _reset_stats(stack)
    started = time.monotonic()
    for customer in created:
        square.patch(f"/_control/customers/{customer['id']}", json={"nickname": "linked"})
    linked_seconds = _converge(stack, ids) + 0 * started
    linked = _stats(stack)
    return {
        "customers": customers,
        "first_sight_dataverse": first[0] / customers,
        "first_sight_square": first[1] / customers,
        "linked_dataverse": linked[0] / customers,
        "linked_square": linked[1] / customers,
        "first_sight_events_per_s": customers / first_seconds,
        "linked_events_per_s": customers / linked_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="100,200", help="offered webhook loads, requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=25.0, help="Dataverse emulator latency (+ same jitter)")
    parser.add_argument(
        "--trace-snapshots", default="all", choices=("all", "failures"), help="TRACE_SNAPSHOTS for the run"
    )
    args = parser.parse_args()
    imports = import_time()
    options = StackOptions(
        dataverse_latency_ms=args.latency_ms,
        dataverse_jitter_ms=args.latency_ms,
        log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / "bench",
        extra_env={"TRACE_SNAPSHOTS": args.trace_snapshots},
    )
    with Stack(options) as stack:
        # In Azure the webhook and the worker scale apart; locally they share one process, so the
        # webhook is measured with the worker disabled (AzureWebJobs.process_event.Disabled), then
        # the host restarts with the worker on and drains what was queued.
        stack.stop_host()
        stack.env["AzureWebJobs.process_event.Disabled"] = "true"
        stack.start_host()
        loads = [asyncio.run(offered_load(stack, float(rate), args.seconds)) for rate in args.rates.split(",")]
        stack.stop_host()
        del stack.env["AzureWebJobs.process_event.Disabled"]
        stack.start_host()
        drained = wait_queue_empty(stack)
        per_event = requests_per_event(stack, args.customers)
    report(imports, loads, drained, per_event, args)


def report(
    imports: list[float], loads: list[dict[str, Any]], drained: float, per_event: dict[str, Any], args: Any
) -> None:
    median = statistics.median(imports)
    print("Tillbridge customer spine benchmark (local stack, 127.0.0.1)")
    print(
        f"  import function_app (cold, {len(imports)} runs): median {median:.3f} s, max {imports[-1]:.3f} s (target <= 0.5 s)"
    )
    for load in loads:
        print(
            f"  webhook at {load['offered_rps']:.0f} req/s offered for {args.seconds:.0f} s ({load['requests']} requests): "
            f"{load['acked_per_s']:.1f} acks/s, p50 {load['p50_ms']:.1f} ms, p99 {load['p99_ms']:.1f} ms, "
            f"statuses {load['statuses']}"
        )
    queued = sum(load["requests"] for load in loads)
    print(
        f"  backlog: the {queued} queued webhook events drained in {drained:.1f} s "
        f"({queued / drained:.0f} events/s, 50 customers with many versions each)"
    )
    print(
        f"  Dataverse requests per customer event: linked {per_event['linked_dataverse']:.2f} (target 1.0), "
        f"first sight {per_event['first_sight_dataverse']:.2f} (match query + upsert)"
    )
    print(
        f"  Square requests per customer event: linked {per_event['linked_square']:.2f}, "
        f"first sight {per_event['first_sight_square']:.2f} (target 0)"
    )
    print(
        f"  worker throughput, Dataverse latency {args.latency_ms:.0f}±{args.latency_ms:.0f} ms: "
        f"{per_event['first_sight_events_per_s']:.1f} new customers/s, {per_event['linked_events_per_s']:.1f} updates/s "
        f"({per_event['customers']} customers, Square change to CRM converged)"
    )


if __name__ == "__main__":
    main()
