"""Benchmark the backfill against the local emulators with Dataverse's service protection and cost model
on, and the per-record pattern next to it (not a test; prints the figures).

  python -m bench.bench_backfill [--customers 100000] [--per-record 4000] [--cost realistic|off]
                                 [--chunk 1000] [--request-size 1000] [--crm-contacts 1000]

1. Square gets `--customers` made-up customers of the past (no webhooks); the CRM gets `--crm-contacts`
   contacts that share an email with one of them (they must be linked, not duplicated).
2. `tillbridge backfill customers` runs as its own process with the app's settings: wall time,
   records/s, Dataverse requests per record, 429s, the process's peak RSS; then the CRM is checked (every
   customer exactly once, the seeded contacts linked).
3. The per-record pattern — look the customer up by email, then create or update it: 2 requests per
   record — runs for `--per-record` more customers against the same emulator, limits and cost model, through
   the same rate gate (a fresh 5-minute window for each run), and the ratio is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from typing import Any

from devstack.stack import PROJECT_DIR, Stack, StackOptions
from shared.adapters.dataverse_auth import StaticToken
from shared.adapters.dataverse_http import DataverseClient, make_http_client
from shared.adapters.rate_gate import Budget, RateGate
from shared.flows.matching import odata_string

KEY = "tb_squarecustomerid"


def limits(cost: str) -> dict[str, Any]:
    """Service protection on (6,000 requests, 1,200 s, 52 concurrent per 5 minutes); the published cost
    model (40 ms a request + 10 ms a record, spent on the wall clock) or none ("off": latency off)."""
    base: dict[str, Any] = {"profile": "realistic"} if cost == "realistic" else {"profile": "default"}
    return base


def prepare(stack: Stack, customers: int, crm_contacts: int) -> list[dict[str, Any]]:
    square, dataverse = stack.client("square", timeout=600), stack.client("dataverse", timeout=600)
    square.post("/_control/history/generate", json={"customers": customers, "seed": 10}).raise_for_status()
    listed = square.get("/_control/customers").json()["customers"]
    seeded = [
        {"emailaddress1": c["email_address"].upper(), "lastname": "FromCRM"}
        for c in listed[:: max(1, len(listed) // max(1, crm_contacts))][:crm_contacts]
        if c.get("email_address")
    ]
    for start in range(0, len(seeded), 1000):
        dataverse.post("/_control/tables/contacts", json=seeded[start : start + 1000]).raise_for_status()
    return seeded


def run_backfill(stack: Stack, chunk: int, request_size: int) -> dict[str, Any]:
    dataverse = stack.client("dataverse")
    dataverse.delete("/_control/stats")
    env = {
        **os.environ,
        **stack.env,
        "BACKFILL_CHUNK_SIZE": str(chunk),
        "BULK_REQUEST_SIZE": str(request_size),
        "TRACE_SNAPSHOTS": "failures",
    }
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "tillbridge_cli", "backfill", "customers"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"backfill failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stats = dataverse.get("/_control/stats").json()
    return {"seconds": seconds, "stats": stats, "peak_rss_mb": peak_kib / 1024, "summary": completed.stdout[-2500:]}


def check_crm(stack: Stack, customers: int, seeded: list[dict[str, Any]]) -> dict[str, int]:
    rows = stack.client("dataverse", timeout=600).get("/_control/tables/contacts").json()
    keys = [r[KEY] for r in rows if r.get(KEY)]
    linked = sum(1 for r in rows if r.get("lastname") != "FromCRM" and r.get(KEY) and r.get("emailaddress1"))
    seeded_linked = sum(
        1
        for r in rows
        if r.get(KEY) and str(r.get("emailaddress1", "")).upper() in {s["emailaddress1"] for s in seeded}
    )
    return {
        "keyed": len(keys),
        "distinct": len(set(keys)),
        "rows": len(rows),
        "seeded_linked": seeded_linked,
        "linked": linked,
    }


async def per_record(stack: Stack, people: list[dict[str, Any]]) -> dict[str, Any]:
    """The pattern bulk replaces: for each customer, a query by email, then a create or an update."""
    gate = RateGate(52, budget=Budget())
    client = DataverseClient(
        base_url=stack.env["DATAVERSE_URL"],
        api_version="v9.2",
        tokens=StaticToken(stack.env["DATAVERSE_TOKEN"]),
        gate=gate,
        http=make_http_client(60),
        max_inline_wait_seconds=600,
    )
    done = 0

    async def one(person: dict[str, Any]) -> None:
        nonlocal done
        rows = await client.query(
            "contacts", f"emailaddress1 eq {odata_string(person['email_address'])}", ["contactid"]
        )
        payload = {
            "firstname": person.get("given_name"),
            "lastname": person.get("family_name"),
            "emailaddress1": person["email_address"],
        }
        if rows:
            await client.update("contacts", rows[0]["contactid"], {**payload, KEY: person["id"]})
        else:
            await client.upsert_by_key("contacts", {KEY: person["id"]}, payload)
        done += 1

    slots = asyncio.Semaphore(46)

    async def bounded(person: dict[str, Any]) -> None:
        async with slots:
            await one(person)

    started = time.monotonic()
    await asyncio.gather(*(bounded(p) for p in people))
    return {"records": done, "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--per-record", type=int, default=4000)
    parser.add_argument("--crm-contacts", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--request-size", type=int, default=200)
    parser.add_argument("--cost", choices=("realistic", "off"), default="realistic")
    args = parser.parse_args()
    options = StackOptions(start_host=False, log_dir=PROJECT_DIR / "artifacts" / "stack-logs" / "bench-backfill")
    with Stack(options) as stack:
        dataverse = stack.client("dataverse")
        dataverse.post("/_control/limits", json=limits(args.cost)).raise_for_status()
        started = time.monotonic()
        seeded = prepare(stack, args.customers, args.crm_contacts)
        prepared = time.monotonic() - started
        bulk = run_backfill(stack, args.chunk, args.request_size)
        crm = check_crm(stack, args.customers, seeded)
        result: dict[str, Any] = {}
        if args.per_record:
            square = stack.client("square", timeout=600)
            square.post(
                "/_control/history/generate",
                json={"customers": args.per_record, "seed": 11, "first_number": args.customers + 10},
            ).raise_for_status()
            listed = square.get("/_control/customers").json()["customers"]
            keyed = {r[KEY] for r in dataverse.get("/_control/tables/contacts", timeout=600).json() if r.get(KEY)}
            fresh = [c for c in listed if c["id"] not in keyed][: args.per_record]
            dataverse.post("/_control/limits", json=limits(args.cost)).raise_for_status()  # a fresh window
            dataverse.delete("/_control/stats")
            result = asyncio.run(per_record(stack, fresh))
            result["stats"] = dataverse.get("/_control/stats").json()
    report(args, prepared, bulk, crm, result)


def report(args: Any, prepared: float, bulk: dict[str, Any], crm: dict[str, int], single: dict[str, Any]) -> None:
    stats = bulk["stats"]
    requests = int(stats.get("requests", 0))
    throttled = int(stats.get("status 429", 0))
    rate = args.customers / bulk["seconds"]
    print(f"Tillbridge backfill benchmark (local emulators, cost model {args.cost}, service protection on)")
    print(f"  prepared {args.customers} Square customers and {args.crm_contacts} CRM contacts in {prepared:.1f} s")
    print(
        f"  backfill customers: {bulk['seconds']:.1f} s, {rate:.0f} records/s, {requests} Dataverse requests "
        f"({requests / args.customers:.4f} per record, target <= 0.01), 429s {throttled} "
        f"({100 * throttled / max(1, requests):.2f} % of requests, target < 1 %), peak RSS {bulk['peak_rss_mb']:.0f} MB"
    )
    print(
        f"  CRM after: {crm['keyed']} keyed contacts, {crm['distinct']} distinct keys, {crm['rows']} rows, "
        f"{crm['seeded_linked']} of the seeded contacts linked (not duplicated)"
    )
    print(f"  Dataverse stats: { {k: v for k, v in stats.items() if not isinstance(v, dict)} }")
    if single:
        single_rate = single["records"] / single["seconds"]
        s_stats = single["stats"]
        print(
            f"  per-record pattern (query by email, then create/update): {single['records']} records in "
            f"{single['seconds']:.1f} s = {single_rate:.1f} records/s, {s_stats.get('requests', 0)} requests, "
            f"429s {s_stats.get('status 429', 0)}"
        )
        print(f"  ratio bulk / per-record: {rate / single_rate:.1f}x (target >= 50x)")
    print(bulk["summary"])


if __name__ == "__main__":
    main()
