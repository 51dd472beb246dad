"""Benchmark two-way contact sync on the local stack and print the figures (not a test).

  python -m bench.bench_two_way [--contacts 20 --schedule "0 * * * * *" --idle-polls 2]

The phone is given to the CRM (`owner: crm` in a copy of the shipped configuration file); the poll runs
on CRM_CHANGES_SCHEDULE (default: the app's default, every minute). Prints:
- Square requests per CRM edit (CRM users fix phones at random moments; target 1.0), and the CRM edit →
  Square latency at that schedule (p50 / p90 / max);
- Square requests per echo: Square edits of a Square-owned field reach the CRM as Tillbridge's writes, which
  the next poll reads back; none may cause a Square request (target 0);
- Dataverse requests per change poll when nothing changed (target 1).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from devstack.stack import PROJECT_DIR, Stack, StackOptions
from shared.config.settings import BINDING_DEFAULTS

API = "/api/data/v9.2/"


def config_file(directory: Path) -> Path:
    text = (PROJECT_DIR / "config" / "tillbridge.yaml").read_text(encoding="utf-8")
    line = "\n    mobilephone: {from: phone_number, transforms: [trim, e164]}\n"
    assert line in text, "the shipped contact mapping changed: update the bench"
    path = directory / "bench-two-way.yaml"
    path.write_text(text.replace(line, line.replace("e164]}", "e164], owner: crm}")), encoding="utf-8")
    return path


def wait(check: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("the stack did not get there in time")
        time.sleep(interval)


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.square = stack.client("square")
        self.dataverse = stack.client("dataverse")
        self.host = stack.client("host")
        person = self.dataverse.post("/_control/users", json={"fullname": "Bench (sales)"}).json()
        self.person = {"Authorization": f"Bearer {person['token']}", "OData-Version": "4.0", "If-Match": "*"}

    def customers(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.square.get("/_control/customers").json()["customers"]}

    def contacts(self) -> dict[str, dict[str, Any]]:
        rows = self.dataverse.get("/_control/tables/contacts").json()
        return {r["tb_squarecustomerid"]: r for r in rows if r.get("tb_squarecustomerid")}

    def square_stats(self, reset: bool = False) -> dict[str, int]:
        return dict(self.square.request("DELETE" if reset else "GET", "/_control/stats").json())

    def dataverse_stats(self, reset: bool = False) -> dict[str, int]:
        return dict(self.dataverse.request("DELETE" if reset else "GET", "/_control/stats").json())

    def polls(self) -> int:
        return int(self.host.get("/admin/host/status").json()["timers"].get("crm_changes", 0))

    def crm_edit(self, contact_id: str, phone: str) -> None:
        response = self.dataverse.patch(
            f"{API}contacts({contact_id})", json={"mobilephone": phone}, headers=self.person
        )
        response.raise_for_status()


def setup(bench: Bench, count: int) -> dict[str, str]:
    people = [
        {"given_name": f"Two{i}", "family_name": "Way", "email_address": f"two{i}@bench.example"} for i in range(count)
    ]
    created = bench.square.post("/_control/customers", json=people).json()
    ids = [c["id"] for c in created]

    def all_linked() -> dict[str, dict[str, Any]] | None:
        found = bench.contacts()
        return found if all(i in found for i in ids) else None

    contacts = wait(all_linked, 120)
    start = bench.polls()
    wait(lambda: bench.polls() > start, 120, 0.5)  # the first poll takes the change-tracking token
    time.sleep(2)
    return {i: contacts[i]["contactid"] for i in ids}


def crm_edits(bench: Bench, contacts: dict[str, str], spread: float) -> tuple[list[float], dict[str, int]]:
    """Each contact's phone fixed by a person at a random moment; seconds until Square has it."""
    bench.square_stats(reset=True)
    rng = random.Random(12)
    edited: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()

    def edit(customer_id: str, contact_id: str, index: int) -> None:
        time.sleep(rng.uniform(0, spread))
        phone = f"+1 212 555 {1000 + index:04d}"
        bench.crm_edit(contact_id, phone)
        with lock:
            edited[customer_id] = (f"+1212555{1000 + index:04d}", time.monotonic())

    threads = [
        threading.Thread(target=edit, args=(cid, contact, i)) for i, (cid, contact) in enumerate(contacts.items())
    ]
    for thread in threads:
        thread.start()
    latencies: dict[str, float] = {}
    while len(latencies) < len(contacts):
        now = time.monotonic()
        customers = bench.customers()
        with lock:
            for customer_id, (phone, at) in edited.items():
                if customer_id not in latencies and customers[customer_id].get("phone_number") == phone:
                    latencies[customer_id] = now - at
        if now - max((at for _, at in edited.values()), default=now) > 180:
            raise TimeoutError("CRM edits did not reach Square within 3 minutes")
        time.sleep(0.25)
    for thread in threads:
        thread.join()
    return sorted(latencies.values()), bench.square_stats()


def echoes(bench: Bench, contacts: dict[str, str]) -> tuple[dict[str, int], int]:
    """Square edits of a Square-owned field: the CRM gets Tillbridge's writes; the polls after read them back."""
    bench.square_stats(reset=True)
    for index, customer_id in enumerate(contacts):
        bench.square.patch(
            f"/_control/customers/{customer_id}", json={"note": f"bench note {index}"}
        ).raise_for_status()
    wait(lambda: all(c.get("description", "").startswith("bench note") for c in bench.contacts().values()), 120)
    edits_by_square = bench.square_stats()  # the control edits are not API requests: this is Tillbridge's
    start = bench.polls()
    wait(lambda: bench.polls() >= start + 2, 180, 0.5)  # the echo rows read, queued and handled
    time.sleep(3)
    return bench.square_stats(), int(edits_by_square.get("requests", 0))


def idle_polls(bench: Bench, runs: int) -> float:
    time.sleep(3)
    start = bench.polls()
    bench.dataverse_stats(reset=True)
    wait(lambda: bench.polls() >= start + runs, 90 * runs, 0.5)
    stats = bench.dataverse_stats()
    done = bench.polls() - start
    return int(stats.get("requests", 0)) / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--schedule", default=BINDING_DEFAULTS["CRM_CHANGES_SCHEDULE"])
    parser.add_argument("--spread", type=float, default=55.0, help="seconds over which the CRM edits are made")
    parser.add_argument("--idle-polls", type=int, default=2)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-two-way-"))
    options = StackOptions(
        log_dir=directory / "logs",
        extra_env={"TILLBRIDGE_CONFIG": str(config_file(directory)), "CRM_CHANGES_SCHEDULE": args.schedule},
    )
    with Stack(options) as stack:
        bench = Bench(stack)
        contacts = setup(bench, args.contacts)
        latencies, square = crm_edits(bench, contacts, args.spread)
        n = len(contacts)
        print(f"schedule {args.schedule!r}, {n} contacts, phone owned by the CRM")
        print(f"CRM edits → Square: {square.get('requests', 0) / n:.2f} Square requests per CRM edit")
        print(f"  by kind: { {k: v for k, v in square.items() if k != 'requests'} }")
        print(
            f"  latency p50 {statistics.median(latencies):.1f} s, p90 {latencies[int(0.9 * (n - 1))]:.1f} s, "
            f"max {latencies[-1]:.1f} s"
        )
        after_echo, during_edits = echoes(bench, contacts)
        print(f"echoes: {n} Square edits written to the CRM by Tillbridge and read back by the poll")
        print(
            f"  Square requests per echo: {after_echo.get('requests', 0) / n:.2f} (while the CRM was written: {during_edits})"
        )
        print(f"Dataverse requests per change poll with nothing changed: {idle_polls(bench, args.idle_polls):.2f}")
        for client in (bench.square, bench.dataverse, bench.host):
            client.close()


if __name__ == "__main__":
    main()


__all__ = ["httpx"]
