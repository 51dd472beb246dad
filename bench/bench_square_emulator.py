"""How fast the Square emulator serves a seller's history (not a test; prints figures).

  python -m bench.bench_square_emulator [--customers 100000 --sales 30000]

Starts the emulator alone, generates the history server-side (no webhooks), then streams it the way a
backfill does: ListCustomers (limit 100), SearchCustomers by updated_at, SearchOrders per location (limit 500),
ListPayments per location (limit 100). Prints seconds, pages and records per second for each, and the
emulator's resident memory (VmRSS) after loading and after paging.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stream(name: str, fetch: Callable[[str | None], httpx.Response], key: str) -> tuple[int, int, float]:
    started = time.perf_counter()
    cursor: str | None = None
    pages = records = 0
    while True:
        response = fetch(cursor)
        response.raise_for_status()
        body = response.json()
        pages += 1
        records += len(body.get(key, []))
        cursor = body.get("cursor")
        if not cursor:
            break
    seconds = time.perf_counter() - started
    print(
        f"{name:<34} {records:>8} records {pages:>6} pages {seconds:7.2f} s {records / seconds:9.0f} rec/s {pages / seconds:7.1f} pages/s"
    )
    return records, pages, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sales", type=int, default=30_000)
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.square_emulator",
            "--port",
            "0",
            f"--token={token}",
            "--signature-key=bench",
            "--notification-url=http://127.0.0.1:9/unused",
        ],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as square:
            _run(square, process.pid, args.customers, args.sales)
    finally:
        process.terminate()
        try:
            process.wait(60)  # freeing a few hundred MB of objects takes a moment
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run(square: httpx.Client, pid: int, customers: int, sales: int) -> None:
    print(f"emulator RSS at start: {_rss_mb(pid):.0f} MB")
    started = time.perf_counter()
    made = square.post("/_control/history/generate", json={"customers": customers, "sales": sales, "seed": 1}).json()
    print(
        f"generated {made['customers']} customers, {made['sales']} sales, {made['refunds']} refunds "
        f"in {time.perf_counter() - started:.1f} s; RSS {_rss_mb(pid):.0f} MB"
    )
    _stream(
        "ListCustomers (limit 100)",
        lambda c: square.get(
            "/v2/customers", params={"limit": 100, "sort_field": "CREATED_AT", **({"cursor": c} if c else {})}
        ),
        "customers",
    )
    query: dict[str, Any] = {"filter": {"updated_at": {"start_at": "2000-01-01T00:00:00Z"}}}
    _stream(
        "SearchCustomers updated_at",
        lambda c: square.post(
            "/v2/customers/search", json={"limit": 100, "query": query, **({"cursor": c} if c else {})}
        ),
        "customers",
    )
    locations = [loc["id"] for loc in square.get("/v2/locations").json()["locations"]]
    orders_query = {"sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}}
    _stream(
        "SearchOrders (limit 500)",
        lambda c: square.post(
            "/v2/orders/search",
            json={"location_ids": locations, "query": orders_query, "limit": 500, **({"cursor": c} if c else {})},
        ),
        "orders",
    )
    for location in locations:
        _stream(
            f"ListPayments {location[:6]}… (limit 100)",
            lambda c, loc=location: square.get(
                "/v2/payments",
                params={"location_id": loc, "begin_time": "2000-01-01T00:00:00Z", **({"cursor": c} if c else {})},
            ),
            "payments",
        )
    print(f"emulator RSS after paging: {_rss_mb(pid):.0f} MB")


if __name__ == "__main__":
    main()
