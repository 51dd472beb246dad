"""Benchmark the real-time path under a burst and at a steady rate (not a test; prints the figures).

  python -m bench.bench_burst [--customers 2000 --updates 4] [--rate 20 --seconds 60] [--latency-ms 25]
                              [--max-batch 250] [--cost off|realistic]

A. Burst into a cold queue: `customers` new customers and `updates` edits of each (customers × (1 + updates)
   events) are queued while the worker is off; then the worker starts and the time until the queue is empty
   and the CRM matches Square is measured, with Dataverse requests per event (target ≤ 0.05 under backlog).
B. Idle: edits of linked customers one at a time (Dataverse requests per event, target 1.0).
C. Steady `rate` edits a second for `seconds`: change in Square → visible in CRM, p50/p95 (target p95 ≤ 1 s),
   and where the time goes: Square change → webhook acknowledged (enqueued) → dequeued by the worker → written.
`--max-batch 1` delivers one message per call (what per-entity sessions would force: no batches).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime
from typing import Any

import httpx

from bench.bench_customers import wait_queue_empty
from devstack.crm_check import differences
from devstack.stack import PROJECT_DIR, Stack, StackOptions
from shared.core.times import parse_time


def _dataverse_requests(stack: Stack) -> int:
    return int(stack.client("dataverse").get("/_control/stats").json().get("requests", 0))


def converge(stack: Stack, ids: set[str], timeout: float = 1800) -> float:
    square, dataverse = stack.client("square", timeout=300), stack.client("dataverse", timeout=300)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not differences(
            ids, square.get("/_control/customers").json(), dataverse.get("/_control/tables/contacts").json()
        ):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError("the CRM did not converge")


def burst(stack: Stack, customers: int, updates: int) -> dict[str, Any]:
    square = stack.client("square", timeout=600)
    stack.stop_host()
    stack.env["AzureWebJobs.process_event.Disabled"] = "true"
    stack.start_host()
    people = [
        {
            "given_name": f"Burst{i}",
            "family_name": "Load",
            "email_address": f"burst{i}@bench.example",
            "phone_number": f"+1 303 555 {i % 10000:04d}",
        }
        for i in range(customers)
    ]
    created: list[dict[str, Any]] = []
    for start in range(0, len(people), 500):
        created += square.post("/_control/customers", json=people[start : start + 500]).json()
    for round_number in range(updates):
        for customer in created:
            square.patch(f"/_control/customers/{customer['id']}", json={"nickname": f"round {round_number}"})
    square.post("/_control/flush", params={"timeout": "600"}, timeout=610)
    events = customers * (1 + updates)
    stack.stop_host()
    del stack.env["AzureWebJobs.process_event.Disabled"]
    stack.client("dataverse").delete("/_control/stats")
    started = time.monotonic()
    stack.start_host()
    drained = wait_queue_empty(stack, timeout=1800)
    converged = converge(stack, {c["id"] for c in created})
    requests = _dataverse_requests(stack)
    return {
        "events": events,
        "drained": drained,
        "converged": time.monotonic() - started,
        "after_drain": converged,
        "requests": requests,
        "ids": [c["id"] for c in created],
    }


def idle(stack: Stack, ids: list[str], count: int = 40) -> dict[str, Any]:
    square = stack.client("square")
    stack.client("dataverse").delete("/_control/stats")
    for customer_id in ids[:count]:
        square.patch(f"/_control/customers/{customer_id}", json={"note": f"idle {time.time()}"})
        time.sleep(0.5)
    square.post("/_control/flush", params={"timeout": "60"}, timeout=70)
    wait_queue_empty(stack)
    converge(stack, set(ids[:count]))
    return {"events": count, "requests": _dataverse_requests(stack)}


def steady(stack: Stack, ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    square = stack.client("square")
    chosen = random.Random(5).sample(ids, min(len(ids), int(rate * seconds)))
    changed: dict[str, datetime] = {}
    started = time.perf_counter()
    for index, customer_id in enumerate(chosen):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        answer = square.patch(f"/_control/customers/{customer_id}", json={"nickname": f"steady {index}"}).json()
        moment = parse_time(answer.get("updated_at"))
        if moment is not None:
            changed[customer_id] = moment
    square.post("/_control/flush", params={"timeout": "120"}, timeout=130)
    wait_queue_empty(stack)
    converge(stack, set(chosen))
    found = stages(stack, list(changed)[:400], changed)
    return {"events": len(chosen), "visible": sorted(found.pop("visible")), "stages": found}


def stages(stack: Stack, ids: list[str], changed: dict[str, datetime]) -> dict[str, list[float]]:
    """From each record's trace: Square change → webhook acknowledged (the command's received_at, right after
    it was queued) → dequeued (the attempt's start) → written (the outcome step: the CRM has it then; the
    emulator's modifiedon has whole seconds only)."""
    ops = httpx.Client(
        base_url=f"{stack.urls['host']}/api/ops/",
        headers={"x-functions-key": stack.env["LOCAL_FUNCTION_KEY"]},
        timeout=60,
    )
    found: dict[str, list[float]] = {"to_enqueued": [], "in_queue": [], "processing": [], "visible": []}
    for customer_id in ids:
        timeline = ops.get(f"records/customers/{customer_id}").json().get("attempts", [])
        if not timeline:
            continue
        last = max(timeline, key=lambda t: t["started_at"])
        received = next((s for s in last["steps"] if s["stage"] == "received"), None)
        done = next((s for s in reversed(last["steps"]) if s["stage"] in ("written", "unchanged")), None)
        enqueued = parse_time((received or {}).get("detail", {}).get("received_at"))
        dequeued, written = parse_time(last["started_at"]), parse_time((done or {}).get("at"))
        if enqueued and dequeued and written:
            found["to_enqueued"].append((enqueued - changed[customer_id]).total_seconds())
            found["in_queue"].append((dequeued - enqueued).total_seconds())
            found["processing"].append((written - dequeued).total_seconds())
            found["visible"].append((written - changed[customer_id]).total_seconds())
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--max-batch", type=int, default=0, help="override maxMessageBatchSize (1: no batches)")
    parser.add_argument("--cost", choices=("off", "realistic"), default="off")
    parser.add_argument("--skip-steady", action="store_true")
    args = parser.parse_args()
    extra = {"TRACE_SNAPSHOTS": "failures", "LOCAL_QUEUE_LOCK_SECONDS": "120"}  # the queue's lock is PT2M
    if args.max_batch:
        extra["LOCAL_QUEUE_MAX_BATCH"] = str(args.max_batch)
    options = StackOptions(
        dataverse_latency_ms=args.latency_ms,
        dataverse_jitter_ms=args.latency_ms,
        log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / "bench-burst",
        extra_env=extra,
        host_log_level="WARNING",
    )
    with Stack(options) as stack:
        if args.cost == "realistic":
            stack.client("dataverse").post(
                "/_control/limits",
                json={"profile": "realistic", "latency_ms": args.latency_ms, "jitter_ms": args.latency_ms},
            ).raise_for_status()
        a = burst(stack, args.customers, args.updates)
        b = idle(stack, a["ids"])
        c = None if args.skip_steady else steady(stack, a["ids"], args.rate, args.seconds)
    report(args, a, b, c)


def report(args: Any, a: dict[str, Any], b: dict[str, Any], c: dict[str, Any] | None) -> None:
    print(
        f"Tillbridge real-time benchmark (local host, Dataverse {args.latency_ms:.0f}±{args.latency_ms:.0f} ms, "
        f"cost model {args.cost}, max batch {args.max_batch or 'host.json'})"
    )
    print(
        f"  A. burst of {a['events']} customer events ({args.customers} new customers × {1 + args.updates} versions) "
        f"into a cold queue: drained in {a['drained']:.1f} s, CRM converged {a['converged']:.1f} s after the worker "
        f"started ({a['events'] / a['converged']:.0f} events/s); {a['requests']} Dataverse requests = "
        f"{a['requests'] / a['events']:.3f} per event (target <= 0.05)"
    )
    print(
        f"  B. idle, one edit every 0.5 s: {b['requests']} Dataverse requests for {b['events']} events = "
        f"{b['requests'] / b['events']:.2f} per event (target 1.0)"
    )
    if c is not None:
        visible, st = c["visible"], c["stages"]
        print(
            f"  C. steady {args.rate:.0f} edits/s for {args.seconds:.0f} s ({c['events']} events): change in Square → "
            f"visible in CRM p50 {pct(visible, 0.5):.2f} s, p95 {pct(visible, 0.95):.2f} s, max {max(visible or [0]):.2f} s "
            f"(target p95 <= 1 s)"
        )
        for name, label in (
            ("to_enqueued", "Square change → webhook acknowledged (queued)"),
            ("in_queue", "queued → dequeued by the worker"),
            ("processing", "dequeued → written"),
        ):
            values = st[name]
            print(f"     {label}: p50 {pct(values, 0.5):.3f} s, p95 {pct(values, 0.95):.3f} s (n={len(values)})")


if __name__ == "__main__":
    main()
