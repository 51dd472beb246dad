"""Follow-up rules through the sales and refund flows over fakes: each trigger and action, owner routing,
idempotency under replays, duplicates and reordering, outcomes in the timeline. Expected writes are
written out literally from the Square data of each test."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from shared.config.file import load_config
from shared.config.followup import Condition, Group
from shared.flows.context import SalesOptions
from shared.flows.refunds import sync_refund
from shared.flows.sales import sync_payment
from shared.monitoring import tracing
from shared.monitoring.tracing import AttemptTrace
from shared.rules.conditions import check
from shared.rules.engine import period_label
from shared.rules.facts import Facts
from tests.unit.test_sales_flows import command, order, payment, run, setup

CONTACT = "/contacts(c0ffee00-0000-0000-0000-000000000001)"
STORE_OWNER = "/systemusers(22222222-2222-2222-2222-222222222222)"
DEFAULT_OWNER = "/teams(11111111-1111-1111-1111-111111111111)"
RULES = """\
version: 1
rules:
  - id: guest-lead
    on: sale
    when: {all: [{guest_without_contact: true}, {order_total: {gte: 10}}]}
    action: {lead: {subject: "Guest spent {order_total} {currency}", description: "receipt {receipt_number}"}}
  - id: first-buy
    on: sale
    when: {first_purchase: true, is_contact: true}
    action: {task: {subject: "Welcome {receipt_number}", due_in_days: 2}}
  - id: big-basket
    on: sale
    when: {order_total: {gte: 10, currency: USD}}
    action: {opportunity: {name: "Basket {order_id}"}}
    once_per: order
  - id: third-visit
    on: sale
    when: {visits: {gte: 3, within_days: 30}}
    action: {task: {subject: "Visit {visits}"}}
    once_per: month
  - id: second-store
    on: sale
    when: {store: L2}
    action: {task: {subject: "Seen at L2"}}
  - id: big-refund
    on: refund
    when: {refund_amount: {gte: 5}}
    action: {task: {subject: "Refund {refund_amount} {currency}", due_in_days: 1}}
    once_per: order
"""


def context(tmp_path: Path, text: str = RULES, guest_checkout: str = "match_or_create") -> tuple[Any, Any, Any, Any]:
    ctx, dv, state, square = setup()
    path = tmp_path / "rules.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    ctx.config = load_config(path, prefix="tb")
    ctx.sales = SalesOptions(guest_checkout, ctx.sales.owners, None)
    return ctx, dv, state, square


def pay(ctx: Any, payment_id: str, order_id: str, event_id: str = "", **extra: Any) -> Any:
    found = payment(payment_id, order_id, **extra)
    return run(
        sync_payment(command("payment", "payment.updated", payment_id, found, "payment", event_id or payment_id), ctx)
    )


def rule_ops(batch: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (op.path, dict(op.body or {})) for op in batch if op.path.split("(")[0] in ("leads", "tasks", "opportunities")
    ]


def test_a_contacts_first_sale_gets_its_task_and_opportunity_in_the_sales_own_batch(tmp_path: Path) -> None:
    ctx, dv, _, _ = context(tmp_path)
    pay(ctx, "P1", "O1")
    (batch,) = dv.batches  # one Dataverse request for the sale and its follow-up
    assert rule_ops(batch) == [
        (
            "tasks(tb_rulekey='first-buy.C1.once')",
            {
                "subject": "Welcome P1",
                "scheduledend": "2026-11-24T10:00:01+00:00",
                "regardingobjectid_contact_task@odata.bind": CONTACT,
                "ownerid@odata.bind": STORE_OWNER,
            },
        ),
        (
            "opportunities(tb_rulekey='big-basket.C1.O1')",
            {
                "name": "Basket O1",
                "customerid_contact@odata.bind": CONTACT,
                "estimatedvalue": 11.0,
                "ownerid@odata.bind": STORE_OWNER,
            },
        ),
    ]


def test_replays_duplicates_and_a_later_version_of_the_payment_add_nothing(tmp_path: Path) -> None:
    ctx, dv, _, _ = context(tmp_path)
    pay(ctx, "P1", "O1")
    pay(ctx, "P1", "O1", event_id="dup")  # the same event again: the gate stops it
    pay(ctx, "P1", "O1", event_id="newer", updated="2026-11-22T10:05:00.000Z")  # a newer payment version
    assert len(dv.batches) == 2 and rule_ops(dv.batches[1]) == []


def test_a_second_sale_makes_only_the_per_order_opportunity(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    square.orders["O2"] = order("O2", updated="2026-11-23T10:00:00.000Z")
    pay(ctx, "P1", "O1")
    pay(ctx, "P2", "O2", updated="2026-11-23T10:00:01.000Z")
    assert [path for path, _ in rule_ops(dv.batches[-1])] == ["opportunities(tb_rulekey='big-basket.C1.O2')"]


def test_reordered_sales_still_act_once_per_key(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    square.orders["O2"] = order("O2", updated="2026-11-23T10:00:00.000Z")
    pay(ctx, "P2", "O2", updated="2026-11-23T10:00:01.000Z")  # the later sale arrives first
    pay(ctx, "P1", "O1")
    keys = [path for batch in dv.batches for path, _ in rule_ops(batch)]
    assert keys == [
        "tasks(tb_rulekey='first-buy.C1.once')",
        "opportunities(tb_rulekey='big-basket.C1.O2')",
        "opportunities(tb_rulekey='big-basket.C1.O1')",
    ]


def test_a_guest_with_an_email_and_no_contact_becomes_one_lead(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path, guest_checkout="match")
    square.orders["O5"] = order("O5", customer=None)
    square.orders["O6"] = order("O6", customer=None)
    pay(ctx, "P5", "O5", buyer_email_address="Guest@Example.com")
    pay(ctx, "P6", "O6", buyer_email_address="guest@example.com")  # same guest, another sale
    assert rule_ops(dv.batches[0]) == [
        (
            "leads(tb_rulekey='guest-lead.guest-" + _guest_hash("guest@example.com") + ".once')",
            {
                "subject": "Guest spent 11.00 USD",
                "description": "receipt P5",
                "emailaddress1": "Guest@Example.com",
                "ownerid@odata.bind": STORE_OWNER,
            },
        )
    ]
    assert rule_ops(dv.batches[1]) == []  # once per guest: acted on already


def _guest_hash(email: str) -> str:
    import hashlib

    return hashlib.sha256(email.encode()).hexdigest()[:24]


def test_third_visit_within_30_days_and_not_when_spread_out(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    for index, day in enumerate(("2026-11-01", "2026-11-10", "2026-11-20")):
        square.orders[f"V{index}"] = order(f"V{index}", updated=f"{day}T09:00:00.000Z")
        pay(ctx, f"PV{index}", f"V{index}", updated=f"{day}T09:00:01.000Z")
    assert ("tasks(tb_rulekey='third-visit.C1.2026-11')", "Visit 3") in [
        (path, body.get("subject")) for path, body in rule_ops(dv.batches[-1])
    ]
    ctx, dv, _, square = context(tmp_path)
    for index, day in enumerate(("2026-08-01", "2026-09-10", "2026-11-20")):
        square.orders[f"V{index}"] = order(f"V{index}", updated=f"{day}T09:00:00.000Z")
        pay(ctx, f"PV{index}", f"V{index}", updated=f"{day}T09:00:01.000Z")
    assert not any("third-visit" in path for batch in dv.batches for path, _ in rule_ops(batch))


def test_store_condition_and_owner_routing_to_the_default_owner(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    square.orders["O7"] = {**order("O7"), "location_id": "L2"}
    pay(ctx, "P7", "O7", location_id="L2")
    ops = dict(rule_ops(dv.batches[0]))
    assert ops["tasks(tb_rulekey='second-store.C1.once')"]["ownerid@odata.bind"] == DEFAULT_OWNER


def test_a_big_refund_makes_a_task_once(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    pay(ctx, "P1", "O1")
    square.orders["O1"] = {
        **order(),
        "refunds": [{"status": "COMPLETED", "amount_money": {"amount": 600, "currency": "USD"}}],
    }
    refund = {
        "id": "P1_R1",
        "payment_id": "P1",
        "order_id": "O1",
        "location_id": "L1",
        "status": "COMPLETED",
        "amount_money": {"amount": 600, "currency": "USD"},
        "created_at": "2026-11-22T11:00:00Z",
        "updated_at": "2026-11-22T11:00:00Z",
    }
    run(sync_refund(command("refund", "refund.updated", "P1_R1", refund, "refund", "r1"), ctx))
    run(sync_refund(command("refund", "refund.updated", "P1_R1", refund, "refund", "r1-again"), ctx))
    assert len(dv.batches) == 2
    assert rule_ops(dv.batches[1]) == [
        (
            "tasks(tb_rulekey='big-refund.C1.P1_R1')",
            {
                "subject": "Refund 6.00 USD",
                "scheduledend": "2026-11-23T11:00:00+00:00",
                "regardingobjectid_contact_task@odata.bind": CONTACT,
                "ownerid@odata.bind": STORE_OWNER,
            },
        )
    ]


def test_rules_flow_off_writes_no_follow_up(tmp_path: Path) -> None:
    ctx, dv, _, _ = context(tmp_path, RULES.replace("version: 1\n", "version: 1\nflows: {rules: false}\n"))
    pay(ctx, "P1", "O1")
    assert rule_ops(dv.batches[0]) == []


def test_every_outcome_is_in_the_timeline_with_its_reason(tmp_path: Path) -> None:
    ctx, _, _, _ = context(tmp_path)
    trace = AttemptTrace("sales", "P1", "e", "payment.updated", 1, 1, "")
    token = tracing.begin(trace)
    try:
        pay(ctx, "P1", "O1")
    finally:
        tracing.end(token)
    rules = {step.detail["rule"]: step.detail for step in trace.steps if step.stage == "rule"}
    assert set(rules) == {"guest-lead", "first-buy", "big-basket", "third-visit", "second-store"}
    assert (
        rules["guest-lead"]["matched"] is False and "✗ guest_without_contact: a contact" in rules["guest-lead"]["why"]
    )
    assert rules["first-buy"]["status"] == "upsert" and "✓ first_purchase: visit 1" in rules["first-buy"]["why"]
    assert "order_total: 11.00 USD meets ≥ 10 USD" in rules["big-basket"]["why"]
    assert rules["third-visit"]["why"] == "✗ visits in 30 days: 1 misses ≥ 3"


def facts(**values: Any) -> Facts:
    return Facts(event="sale", at=datetime(2026, 11, 22, 10, tzinfo=UTC), subject_id="C1", **values)


def test_all_any_nesting() -> None:
    tea = Condition("category", ("Tea",))
    big = Condition("order_total", _cmp("gte", "50"))
    group = Group("any", (Group("all", (tea, big)), Condition("sku", ("S9",))))
    assert check(group, facts(categories=("Tea",), order_total=Decimal(60), currency="USD"))[0]
    assert not check(group, facts(categories=("Tea",), order_total=Decimal(20), currency="USD"))[0]
    assert check(group, facts(skus=("S9",)))[0]


def _cmp(op: str, value: str) -> Any:
    from shared.config.followup import Comparison

    return Comparison(((op, Decimal(value)),))


@pytest.mark.parametrize(
    ("once_per", "label"),
    [("customer", "once"), ("order", "O1"), ("day", "2026-11-22"), ("week", "2026-W47"), ("month", "2026-11")],
)
def test_periods(once_per: str, label: str) -> None:
    from shared.config.followup import Action, Rule

    rule = Rule("r", "sale", Group("all", ()), Action("task", "t"), once_per)
    assert period_label(rule, facts(order_id="O1")) == label


def test_order_total_by_the_currency_exponent() -> None:
    condition = Condition("order_total", _cmp("gte", "1000"))
    yen = facts(order_total=Decimal(1500), currency="JPY")  # ¥1,500 (exponent 0), not ¥15
    assert check(Group("all", (condition,)), yen)[0]


def test_guest_means_no_square_customer_whether_or_not_the_crm_knows_the_email() -> None:
    guest = Group("all", (Condition("guest", True),))
    assert check(guest, facts(guest=True, contact_bind=CONTACT))[1] == "✓ guest: bought as a guest"
    assert not check(guest, facts(guest=False, contact_bind=CONTACT))[0]


def test_third_visit_is_found_whatever_order_the_sales_are_processed_in(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path)
    days = ("2026-11-01", "2026-11-10", "2026-11-20")
    for index, day in enumerate(days):
        square.orders[f"V{index}"] = order(f"V{index}", updated=f"{day}T09:00:00.000Z")
    for index in (2, 0, 1):  # the newest sale is processed first, the middle one last
        pay(ctx, f"PV{index}", f"V{index}", updated=f"{days[index]}T09:00:01.000Z")
    found = [path for batch in dv.batches for path, _ in rule_ops(batch) if "third-visit" in path]
    assert found == ["tasks(tb_rulekey='third-visit.C1.2026-11')"]
