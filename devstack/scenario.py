"""A realistic customer scenario driven through the Square emulator, measured at the CRM.

Shared by `make demo` (a few hundred customers) and the end-to-end test (fewer): customers are
created, edited, deleted and merged; webhooks are duplicated, delayed and reordered; a few records
carry data the CRM cannot take, and some match contacts that already exist in the CRM.
"""

from __future__ import annotations

import asyncio
import io
import random
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.crm_check import differences
from devstack.progress import PhaseProgress
from devstack.stack import Stack
from shared.adapters.table_state import table_state_store

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Radia",
    "Tim",
    "Frances",
]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Perlman"]
CITIES = [
    ("Oakland", "CA", "94608"),
    ("New York", "NY", "10003"),
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97201"),
]


# How often the CRM is compared with Square while the scenario runs (the latency figures' resolution): each
# poll reads every customer and contact from the emulators, which compete with the host for the CPU.
POLL_SECONDS = 0.25


@dataclass
class ScenarioPlan:
    customers: int = 300
    edit_share: float = 0.4
    delete_share: float = 0.05
    merges: int = 5
    bad_records: int = 4
    crm_matches: int = 10
    ambiguous: int = 2
    duplicate_rate: float = 0.2
    reorder_window: int = 20
    delay_ms_max: float = 300.0
    seed: int = 2026


@dataclass
class ScenarioResult:
    square: dict[str, Any]
    crm: dict[str, Any]
    delivery: dict[str, Any]
    failures: list[dict[str, Any]]
    unconverged: dict[str, str]
    expected_failures: set[str]
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0  # from the last webhook delivered until the CRM matched Square
    throughput: str = ""

    @property
    def ok(self) -> bool:
        failed_ids = {f["record_id"] for f in self.failures if f["status"] == "open"}
        return not self.unconverged and failed_ids == self.expected_failures


def _person(rng: random.Random, index: int) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, postal = rng.choice(CITIES)
    padded = index % 5 == 0  # as typed at a till: stray spaces the CRM must not keep
    return {
        "given_name": f"  {first} " if padded else first,
        "family_name": f"{last} " if padded else last,
        "email_address": f"{first}.{last}.{index}@Example.com",
        "phone_number": f"+1 (212) 555-{index:04d}" if index % 3 else f"212.555.{index:04d}",
        "address": {
            "address_line_1": f"{100 + index} Market St",
            "locality": city,
            "administrative_district_level_1": state,
            "postal_code": postal,
            "country": "US",
        },
        "birthday": f"{1950 + index % 50}-0{1 + index % 9}-1{index % 9}" if index % 4 else "0000-05-17",
    }


class Driver:
    """Talks to the emulators' control APIs and remembers when each customer last changed."""

    def __init__(self, stack: Stack) -> None:
        self.square = stack.client("square")
        self.dataverse = stack.client("dataverse")
        self.changed_at: dict[str, float] = {}

    def create_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        created: list[dict[str, Any]] = self.square.post("/_control/customers", json=items).json()
        now = time.monotonic()
        self.changed_at.update({c["id"]: now for c in created})
        return created

    def update(self, customer_id: str, **changes: Any) -> None:
        self.square.patch(f"/_control/customers/{customer_id}", json=changes).raise_for_status()
        self.changed_at[customer_id] = time.monotonic()

    def delete(self, customer_id: str) -> None:
        self.square.delete(f"/_control/customers/{customer_id}").raise_for_status()
        self.changed_at[customer_id] = time.monotonic()

    def merge(self, first: str, second: str) -> str:
        survivor: dict[str, Any] = self.square.post("/_control/merge", json={"customer_ids": [first, second]}).json()
        now = time.monotonic()
        for customer_id in (first, second, survivor["id"]):
            self.changed_at[customer_id] = now
        return str(survivor["id"])


def _seed_crm(driver: Driver, plan: ScenarioPlan, people: list[dict[str, Any]]) -> None:
    """Contacts that already exist in the CRM: some match one customer, some are ambiguous twins."""
    rows = []
    for person in people[: plan.crm_matches]:
        rows.append(
            {
                "emailaddress1": person["email_address"].lower(),
                "lastname": person["family_name"],
                "firstname": "(from CRM)",
            }
        )
    for person in people[plan.crm_matches : plan.crm_matches + plan.ambiguous]:
        rows += [
            {"emailaddress1": person["email_address"], "lastname": "Twin A"},
            {"emailaddress1": person["email_address"], "lastname": "Twin B"},
        ]
    driver.dataverse.post("/_control/tables/contacts", json=rows).raise_for_status()


def _plant_bad_data(people: list[dict[str, Any]], plan: ScenarioPlan) -> list[int]:
    start = plan.crm_matches + plan.ambiguous
    planted = list(range(start, start + plan.bad_records))
    for number, index in enumerate(planted):
        if number % 2 == 0:
            people[index]["email_address"] = f"broken.{index}@@example..com"
        else:
            people[index]["given_name"] = "Bartholomew-Maximilian-Alexander-Fitzgerald-Montgomery"
    return planted


def drive(driver: Driver, plan: ScenarioPlan) -> tuple[set[str], set[str]]:
    """Run the Square side of the scenario; returns every customer id and the ids expected to fail."""
    rng = random.Random(plan.seed)
    driver.square.post(
        "/_control/delivery",
        json={
            "duplicate_rate": plan.duplicate_rate,
            "reorder_window": plan.reorder_window,
            "delay_ms_max": plan.delay_ms_max,
            "seed": plan.seed,
            "paused": False,
            "concurrency": 16,
        },
    )
    people = [_person(rng, index) for index in range(plan.customers)]
    _seed_crm(driver, plan, people)
    planted = _plant_bad_data(people, plan)
    created = driver.create_many(people)
    ids = {c["id"] for c in created}
    expected_failures = {created[i]["id"] for i in planted}
    expected_failures |= {created[i]["id"] for i in range(plan.crm_matches, plan.crm_matches + plan.ambiguous)}
    editable = [c for i, c in enumerate(created) if i >= plan.crm_matches + plan.ambiguous + plan.bad_records]
    rng.shuffle(editable)
    edits = editable[: int(len(created) * plan.edit_share)]
    for customer in edits:
        driver.update(customer["id"], nickname=rng.choice(["VIP", "Regular", "Weekend"]), note="edited at the till")
    for customer in edits[: len(edits) // 4]:
        driver.update(customer["id"], family_name=customer["family_name"] + "-Smith")
    rest = editable[len(edits) :]
    deletions = rest[: int(len(created) * plan.delete_share)]
    for customer in deletions:
        driver.delete(customer["id"])
    pairs = rest[len(deletions) : len(deletions) + 2 * plan.merges]
    for first, second in zip(pairs[0::2], pairs[1::2], strict=False):
        ids.add(driver.merge(first["id"], second["id"]))
    return ids, expected_failures


def _failures(stack: Stack) -> list[dict[str, Any]]:
    store = table_state_store(stack.env["AzureWebJobsStorage"], "", "", "tillbridge")
    return [
        {
            "record_id": f.record_id,
            "reason": f.reason_code,
            "field": f.field,
            "message": f.message,
            "status": f.status,
            "candidates": list(f.candidates),
        }
        for f in asyncio.run(store.list_failures("customers"))
    ]


class Observer:
    """Polls the CRM while the scenario runs; a customer's latency is from its last change in Square
    to the first poll at which the CRM holds exactly that state."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.converged_at: dict[str, float] = {}
        self.excluded: set[str] = set()  # customers expected to fail (not counted as in step or not)
        self.in_step = (0, 0)  # (customers whose contact matches Square, customers checked) at the last poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._square = httpx.Client(base_url=driver.square.base_url, timeout=30)
        self._dataverse = httpx.Client(base_url=driver.dataverse.base_url, timeout=30)

    def start(self) -> Observer:
        self._thread.start()
        return self

    def poll(self, ids: set[str]) -> dict[str, str]:
        square_state = self._square.get("/_control/customers").json()
        contacts = self._dataverse.get("/_control/tables/contacts").json()
        now = time.monotonic()
        problems = differences(ids, square_state, contacts)
        self.in_step = (len(ids) - len(problems), len(ids))
        for customer_id in ids - set(problems):
            if self.converged_at.get(customer_id, -1.0) < self.driver.changed_at.get(customer_id, 0.0):
                self.converged_at[customer_id] = now
        return problems

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll(set(self.driver.changed_at) - self.excluded)
            self._stop.wait(POLL_SECONDS)

    def wait(self, ids: set[str], timeout: float) -> dict[str, str]:
        """Poll (in this thread from now on) until the CRM matches Square for `ids` or `timeout` passes."""
        self._stop.set()
        self._thread.join(30)
        deadline = time.monotonic() + timeout
        problems = self.poll(ids)
        while problems and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            problems = self.poll(ids)
        return problems

    def latencies(self, ids: set[str]) -> list[float]:
        return [
            self.converged_at[cid] - self.driver.changed_at[cid]
            for cid in ids
            if cid in self.converged_at and cid in self.driver.changed_at
        ]


def observe(
    stack: Stack, observer: Observer, ids: set[str], expected_failures: set[str], timeout: float
) -> ScenarioResult:
    driver = observer.driver
    started = time.monotonic()
    pending = set(ids) - expected_failures
    problems = observer.wait(pending, timeout)
    square_state = driver.square.get("/_control/customers").json()
    contacts = driver.dataverse.get("/_control/tables/contacts").json()
    delivery = driver.square.get("/_control/delivery").json()["stats"]
    keyed = [c for c in contacts if c.get("tb_squarecustomerid")]
    return ScenarioResult(
        square={
            "live": len(square_state["customers"]),
            "deleted": len(square_state["deleted"]) - len(square_state["merged_into"]),
            "merged_away": len(square_state["merged_into"]),
        },
        crm={
            "contacts": len(contacts),
            "active_linked": sum(1 for c in keyed if c["statecode"] == 0),
            "deactivated": sum(1 for c in keyed if c["statecode"] == 1),
            "merged": sum(1 for c in contacts if c.get("merged")),
            "requests": driver.dataverse.get("/_control/stats").json().get("requests", 0),
        },
        delivery=delivery,
        failures=_failures(stack),
        unconverged=problems,
        expected_failures=expected_failures,
        latencies=observer.latencies(pending),
        seconds=time.monotonic() - started,
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def failure_line(open_failures: list[dict[str, Any]]) -> str:
    by_reason: dict[str, int] = {}
    for failure in open_failures:
        by_reason[failure["reason"]] = by_reason.get(failure["reason"], 0) + 1
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(by_reason.items())) or "none"
    return f"Failures to review: {len(open_failures)} open ({reasons})"


def labelled(label: str, text: str, width: int = 100) -> list[str]:
    """`  Label:    text`, wrapped at `width` under the text (words, ids and URLs are never split)."""
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=f"  {label:<10} ",
        subsequent_indent=" " * 13,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _failure_lines(failure: dict[str, Any]) -> list[str]:
    detail = f"field {failure['field']}" if failure["field"] else f"candidates {', '.join(failure['candidates'])}"
    head = f"- {failure['record_id']}  {failure['reason']}  {detail}"

    def wrap(text: str, first: int) -> list[str]:
        return textwrap.wrap(text, 100, initial_indent=" " * first, subsequent_indent=" " * 6, break_long_words=False)

    return [*wrap(head, 4), *wrap(failure["message"], 6)]


def summary(result: ScenarioResult) -> str:
    square, crm, delivery = result.square, result.crm, result.delivery
    open_failures = [f for f in result.failures if f["status"] == "open"]
    lines = [
        "Tillbridge demo — Square customers → Dataverse contacts (local stack)",
        *labelled(
            "Square:",
            f"{square['live']} live customers, {square['deleted']} deleted, {square['merged_away']} merged away",
        ),
        *labelled(
            "Webhooks:",
            f"{delivery['delivered']} events delivered, {delivery['duplicates_sent']} duplicates sent, "
            f"{delivery['attempts']} attempts",
        ),
        *labelled(
            "CRM:",
            f"{crm['active_linked']} active linked contacts, {crm['deactivated']} deactivated, {crm['merged']} "
            f"merged, {crm['contacts']} contacts in all; {crm['requests']} Dataverse requests",
        ),
        *labelled(
            "Latency:",
            f"change in Square → visible in CRM: p50 {percentile(result.latencies, 0.5):.2f} s, "
            f"p95 {percentile(result.latencies, 0.95):.2f} s over {len(result.latencies)} customers "
            f"(CRM polled every {POLL_SECONDS} s while the scenario ran)",
        ),
        *(labelled("Throughput:", result.throughput) if result.throughput else []),
        *labelled("Failures:", f"{len(open_failures)} open (expected {len(result.expected_failures)}):"),
    ]
    for failure in sorted(open_failures, key=lambda f: (f["reason"], f["record_id"])):
        lines += _failure_lines(failure)
    if result.unconverged:
        examples = "; ".join(f"{cid}: {problem}" for cid, problem in list(result.unconverged.items())[:3])
        lines += labelled("NOT CONVERGED:", f"{len(result.unconverged)} customers, e.g. {examples}")
    verdict = "OK — the CRM matches Square" if result.ok else "FAILED — the CRM does not match Square"
    lines += labelled("Result:", f"{verdict} ({result.seconds:.1f} s after the last webhook was delivered)")
    lines.append(f"  {failure_line(open_failures)}")
    return "\n".join(lines)


def run_scenario(
    stack: Stack, plan: ScenarioPlan, timeout: float = 300, *, show_progress: bool = False
) -> ScenarioResult:
    driver = Driver(stack)
    observer = Observer(driver).start()
    started = time.monotonic()
    with PhaseProgress(stack, "customers", lambda: observer.in_step, out=None if show_progress else io.StringIO()) as p:
        ids, expected_failures = drive(driver, plan)
        observer.excluded = expected_failures
        driver.square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=httpx.Timeout(timeout + 10))
        result = observe(stack, observer, ids, expected_failures, timeout)
    result.throughput = p.throughput(time.monotonic() - started)
    return result
