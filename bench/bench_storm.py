"""A storm on the local stack, measured at the CRM (not a test; tests/integration/test_storm.py runs a small one).

  python -m bench.bench_storm [--customers 2000 --updates 2 --delete-share 0.1 --kills 3 --seed 9]

Square customers are created, edited and deleted through the emulator's control API while webhooks are
duplicated, delayed and reordered, Dataverse answers injected 429s and 503s, and the function host is
killed (SIGKILL) and restarted. At the end one webhook of each kind (create, update, delete) is lost: the
emulator delivers them to a sink that acknowledges and drops them, so only reconcile can repair them.

Prints events, duplicates, faults, kills, and at the end: lost (live in Square, no contact), stale (a
field differs from Square's last state), duplicated (two contacts for one customer), undeleted (deleted in
Square, active in the CRM) and the time to converge. The expected contact is stated by EXPECTED below,
not computed with the product's mapping code.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from devstack.stack import Stack, StackOptions

# What a contact holds for a Square customer (the README's mapping table, stated here by hand).
EXPECTED = {
    "given_name": "firstname",
    "family_name": "lastname",
    "email_address": "emailaddress1",
    "phone_number": "mobilephone",
}
KEY = "tb_squarecustomerid"
ACTIVE = 0
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Johnson", "Hamilton", "Liskov", "Perlman", "Ritchie"]
STACK_ENV = {
    "RECONCILE_SCHEDULE": "*/10 * * * * *",  # the host's reconcile timer repairs what the lost webhooks missed
    "RECONCILE_LAG_SECONDS": "60",
    "RECONCILE_FIRST_LOOKBACK_HOURS": "1",
    "TRACE_SNAPSHOTS": "failures",
}


@dataclass
class StormPlan:
    customers: int = 300
    updates: int = 2  # edits per customer, on average
    delete_share: float = 0.1
    kills: int = 1
    duplicate_rate: float = 0.3
    reorder_window: int = 25
    delay_ms_max: float = 200.0
    throttles: int = 40  # injected 429 (Retry-After 1 s)
    server_errors: int = 20  # injected 503
    converge_timeout: float = 240.0
    flush_timeout: float = 300.0  # for Square's deliveries to drain (each waits for the host's acknowledgement)
    lost_delete_timeout: float = 60.0  # reconcile runs every 10 s
    seed: int = 9


@dataclass
class StormReport:
    customer_ids: list[str] = field(default_factory=list)
    lost_webhooks: dict[str, str] = field(default_factory=dict)  # kind → customer id
    kills: int = 0
    seconds_to_converge: float | None = None
    problems: dict[str, str] = field(default_factory=dict)
    lost_delete_problem: str | None = None
    delivery: dict[str, Any] = field(default_factory=dict)
    dataverse: dict[str, Any] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for problem in self.problems.values() if problem.startswith(kind))


def expected_problems(
    customer_ids: list[str], square: dict[str, Any], contacts: list[dict[str, Any]]
) -> dict[str, str]:
    """Each customer's problem in the CRM against Square's final state ({} when the CRM equals Square)."""
    live = {c["id"]: c for c in square["customers"]}
    keyed: dict[str, list[dict[str, Any]]] = {}
    for contact in contacts:
        keyed.setdefault(str(contact.get(KEY) or ""), []).append(contact)
    problems = {}
    for customer_id in customer_ids:
        rows = keyed.get(customer_id, [])
        active = [row for row in rows if row.get("statecode") == ACTIVE]
        if customer_id not in live:
            if active:
                problems[customer_id] = "undeleted: deleted in Square, active in the CRM"
        elif not rows:
            problems[customer_id] = "lost: no contact"
        elif len(rows) > 1:
            problems[customer_id] = f"duplicated: {len(rows)} contacts"
        elif not active:
            problems[customer_id] = "stale: contact inactive"
        else:
            differing = sorted(
                col for name, col in EXPECTED.items() if active[0].get(col) != live[customer_id].get(name)
            )
            if differing:
                problems[customer_id] = f"stale: {', '.join(differing)}"
    return problems


class _Sink(BaseHTTPRequestHandler):
    """Acknowledges and drops: a webhook that 'arrived' somewhere that is not Tillbridge."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@contextlib.contextmanager
def webhooks_lost(square: httpx.Client, flush_timeout: float) -> Iterator[None]:
    """While inside, Square's deliveries are acknowledged by a sink and never reach the host."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    target = square.get("/_control/delivery").json()["config"]["target_url"]
    _flush(square, flush_timeout)
    square.post("/_control/delivery", json={"target_url": f"http://127.0.0.1:{sink.server_port}/"})
    try:
        yield
        _flush(square, flush_timeout)
    finally:
        square.post("/_control/delivery", json={"target_url": target})
        sink.shutdown()


def _flush(square: httpx.Client, timeout: float) -> None:
    response = square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=timeout + 10)
    assert response.json()["idle"], "webhook delivery did not finish"


def _person(index: int, version: int, rng: random.Random) -> dict[str, Any]:
    area = "212" if version % 2 == 0 else "646"
    return {
        "given_name": f"Storm{index}" if version < 2 else f"Storm{index} v{version}",
        "family_name": rng.choice(LAST_NAMES),
        "email_address": f"storm{index}.v{version}@example.com",
        "phone_number": f"+1{area}555{index:04d}",
    }


def _operations(plan: StormPlan, rng: random.Random, ids: list[str]) -> list[tuple[str, str, int]]:
    """Edits in a random order, each delete somewhere after its customer's last edit: (action, id, index)."""
    operations = [
        ("update", cid, index) for index, cid in enumerate(ids) for _ in range(rng.randint(0, 2 * plan.updates))
    ]
    rng.shuffle(operations)
    for index in rng.sample(range(len(ids)), int(len(ids) * plan.delete_share)):
        after = max((pos for pos, (_, cid, _) in enumerate(operations) if cid == ids[index]), default=-1) + 1
        operations.insert(rng.randint(after, len(operations)), ("delete", ids[index], index))
    return operations


def _kill_and_restart(stack: Stack) -> None:
    stack.stop_host(kill=True)  # SIGKILL: locked queue messages wait out their visibility timeout
    time.sleep(2)  # Square's deliveries fail meanwhile and are retried
    stack.start_host()


def run_storm(stack: Stack, plan: StormPlan, log: Any = print) -> StormReport:
    rng, report, began = random.Random(plan.seed), StormReport(), time.monotonic()
    with stack.client("square", timeout=120) as square, stack.client("dataverse") as dataverse:
        square.post(
            "/_control/delivery",
            json={
                "duplicate_rate": plan.duplicate_rate,
                "reorder_window": plan.reorder_window,
                "delay_ms_max": plan.delay_ms_max,
                "concurrency": 8,
                "paused": False,
            },
        )
        faults = [
            {"status": 429, "count": plan.throttles, "retry_after": 1},
            {"status": 503, "count": plan.server_errors, "code": "0x80040216"},
        ]
        dataverse.post("/_control/faults", json=faults).raise_for_status()
        versions: dict[str, int] = {}
        for start in range(0, plan.customers, 100):
            batch = [_person(index, 0, rng) for index in range(start, min(start + 100, plan.customers))]
            created = square.post("/_control/customers", json=batch)
            created.raise_for_status()
            report.customer_ids += [c["id"] for c in created.json()]
        operations = _operations(plan, rng, report.customer_ids)
        kill_points = {len(operations) * (k + 1) // (plan.kills + 1) for k in range(plan.kills)}
        log(f"storm: {plan.customers} customers, {len(operations)} edits and deletes, {plan.kills} host kill(s)")
        for position, (action, customer_id, index) in enumerate(operations):
            if position in kill_points:
                _kill_and_restart(stack)
                report.kills += 1
                log(f"  host killed and restarted after {position} operations")
            if action == "update":
                versions[customer_id] = versions.get(customer_id, 0) + 1
                square.patch(f"/_control/customers/{customer_id}", json=_person(index, versions[customer_id], rng))
            else:
                square.delete(f"/_control/customers/{customer_id}")
        log(f"  changes made in {time.monotonic() - began:.0f} s; waiting for Square's deliveries to drain")
        report.lost_webhooks = _lose_one_of_each(square, rng, report, versions, plan.flush_timeout)
        log(f"  lost on purpose: {report.lost_webhooks} ({time.monotonic() - began:.0f} s)")
        _flush(square, plan.flush_timeout)
        report.delivery = square.get("/_control/delivery").json()["stats"]
    return report


def converge(stack: Stack, customer_ids: list[str], timeout: float) -> tuple[dict[str, str], float | None]:
    """Wait until the CRM equals Square for these customers: the problems left (by id) and the seconds it took."""
    started = time.monotonic()
    with stack.client("square") as square, stack.client("dataverse") as dataverse:
        while True:
            problems = expected_problems(
                customer_ids,
                square.get("/_control/customers").json(),
                dataverse.get("/_control/tables/contacts").json(),
            )
            if not problems:
                return problems, round(time.monotonic() - started, 1)
            if time.monotonic() - started > timeout:
                return problems, None
            time.sleep(2)


def _lose_one_of_each(
    square: httpx.Client, rng: random.Random, report: StormReport, versions: dict[str, int], flush_timeout: float
) -> dict[str, str]:
    ids = set(report.customer_ids)
    live = [c["id"] for c in square.get("/_control/customers").json()["customers"] if c["id"] in ids]
    updated, deleted = rng.sample(live, 2)
    index = report.customer_ids.index(updated)
    with webhooks_lost(square, flush_timeout):
        created = square.post("/_control/customers", json=_person(len(report.customer_ids), 0, rng)).json()
        versions[updated] = versions.get(updated, 0) + 1
        square.patch(f"/_control/customers/{updated}", json=_person(index, versions[updated], rng))
        square.delete(f"/_control/customers/{deleted}")
    report.customer_ids.append(created["id"])
    return {"created": created["id"], "updated": updated, "deleted": deleted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--delete-share", type=float, default=0.1)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--throttles", type=int, default=150)
    parser.add_argument("--server-errors", type=int, default=75)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    plan = StormPlan(
        args.customers,
        args.updates,
        args.delete_share,
        args.kills,
        throttles=args.throttles,
        server_errors=args.server_errors,
        converge_timeout=args.timeout,
        flush_timeout=args.timeout,
        seed=args.seed,
    )
    began = time.monotonic()
    with Stack(StackOptions(extra_env=STACK_ENV, host_log_level="WARNING")) as stack:
        report = run_storm(stack, plan)
        lost_delete = report.lost_webhooks["deleted"]
        others = [cid for cid in report.customer_ids if cid != lost_delete]
        report.problems, report.seconds_to_converge = converge(stack, others, plan.converge_timeout)
        left, _ = converge(stack, [lost_delete], plan.lost_delete_timeout)
        report.lost_delete_problem = left.get(lost_delete)
        with stack.client("dataverse") as dataverse:
            report.dataverse = dataverse.get("/_control/stats").json()
    print_report(report, time.monotonic() - began)


def print_report(report: StormReport, seconds: float) -> None:
    delivery, dataverse = report.delivery, report.dataverse
    print(
        f"customers {len(report.customer_ids)}; webhooks queued {delivery.get('queued')}, duplicates sent "
        f"{delivery.get('duplicates_sent')}, failed delivery attempts {delivery.get('failed_attempts')}"
    )
    print(
        f"Dataverse injected faults: 429 × {dataverse.get('status 429', 0)}, 503 × {dataverse.get('status 503', 0)}; "
        f"host kills {report.kills}; webhooks lost on purpose: {', '.join(sorted(report.lost_webhooks))}"
    )
    for kind in ("lost", "stale", "duplicated", "undeleted"):
        print(f"{kind}: {report.count(kind)}")
    took = report.seconds_to_converge
    print(f"time to converge after the last change: {took if took is not None else 'not within the timeout'} s")
    print(
        f"lost delete repaired by reconcile: {'yes' if report.lost_delete_problem is None else 'no — ' + report.lost_delete_problem}"
    )
    print(f"whole run: {seconds:.0f} s")
    for customer_id, problem in sorted(report.problems.items())[:20]:
        print(f"  {customer_id}: {problem}")


if __name__ == "__main__":
    main()
