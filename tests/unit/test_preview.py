"""`config preview`: the real flow against recording stand-ins — payloads, matched contact, rule and segment
outcomes with reasons — and nothing written. An invalid file holds every message and shows in health."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from shared.config.file import ConfigStatus
from shared.core.models import SyncCommand
from shared.flows.preview import preview
from shared.ops.api import handle
from shared.ops.service import OpsService
from shared.pipeline.worker import RetryPolicy, Worker
from tests.fakes import FakeQueue, FixedClock, NoTraces
from tests.unit.test_rules import context, pay
from tests.unit.test_sales_flows import order, payment, run
from tests.unit.test_segments import CONFIG as SEGMENTS

CONFIG = (
    SEGMENTS
    + """\
  - id: big-basket
    on: sale
    when: {order_total: {gte: 10}}
    action: {opportunity: {name: "Basket {order_id}"}}
    once_per: order
"""
)


def test_preview_of_a_payment_shows_everything_and_writes_nothing(tmp_path: Path) -> None:
    ctx, dv, state, square = context(tmp_path, CONFIG)
    square.payments["P1"] = payment()
    docs_before = dict(state.docs)
    result = run(preview(ctx, "payment", "P1"))
    assert dv.batches == [] and state.docs == docs_before and state.ledger.keys() == {("customer", "C1")}
    assert (
        result["outcome"] == "written"
        and result["matched_contact"] == "/contacts(c0ffee00-0000-0000-0000-000000000001)"
    )
    paths = [w["path"] for w in result["writes"]]
    assert paths == [
        "tb_locations(tb_squarelocationid='L1')",
        "tb_transactions(tb_squareorderid='O1')",
        "tb_transactionlines(tb_squarelinekey='O1.u1')",
        "tb_payments(tb_squarepaymentid='P1')",
        "contacts(c0ffee00-0000-0000-0000-000000000001)",
        "opportunities(tb_rulekey='big-basket.C1.O1')",
    ]
    assert [(r["rule"], r["status"]) for r in result["rules"]] == [("big-basket", "upsert")]
    assert [(s["segment"], s["member"], s["move"]) for s in result["segments"]] == [
        ("regulars", False, "none"),
        ("big-spenders", False, "none"),
    ]
    assert result["segments"][0]["why"] == "✗ visits in 30 days: 1 misses ≥ 3"


def test_preview_of_a_synced_payment_shows_it_as_new_and_keys_already_acted_on(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path, CONFIG)
    square.payments["P1"] = payment()
    pay(ctx, "P1", "O1")
    written = len(dv.batches)
    result = run(preview(ctx, "payment", "P1"))
    assert len(dv.batches) == written
    assert [(r["rule"], r["status"]) for r in result["rules"]] == [("big-basket", "already_done")]


def test_preview_of_a_customer_shows_the_contact_payload(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path, CONFIG)
    square.customers["C7"] = {"id": "C7", "version": 1, "given_name": "Ada", "email_address": "ada@example.com"}
    result = run(preview(ctx, "customer", "C7"))
    (write,) = result["writes"]
    assert write["body"]["firstname"] == "Ada" and write["body"]["emailaddress1"] == "ada@example.com"
    assert dv.rows == {} or all(r.get("tb_squarecustomerid") != "C7" for r in dv.rows.values())


def test_preview_route_and_unknown_kind(tmp_path: Path) -> None:
    ctx, _, state, square = context(tmp_path, CONFIG)
    square.payments["P1"] = payment()

    async def previewer(kind: str, square_id: str) -> dict[str, Any]:
        return await preview(ctx, kind, square_id)

    service = OpsService(state, NoTraces(), FakeQueue(), FixedClock(), previewer=previewer)  # type: ignore[arg-type]
    reply = run(handle(service, "GET", "preview/payment/P1", {}, b""))
    assert reply.status == 200 and reply.body["rules"][0]["rule"] == "big-basket"
    reply = run(handle(service, "GET", "preview/catalog/X", {}, b""))
    assert reply.status == 400 and "cannot preview 'catalog'" in reply.body["error"]["message"]


def test_an_invalid_file_shows_in_health_and_blocks_preview() -> None:
    status = ConfigStatus(
        "config/tillbridge.yaml", False, ("config/tillbridge.yaml:3: flows.sales: must be true or false",)
    )
    service = OpsService(_state(), NoTraces(), FakeQueue(), FixedClock(), config_status=status)  # type: ignore[arg-type]
    health = run(handle(service, "GET", "health", {}, b"")).body
    assert health["status"] == "invalid_configuration"
    assert health["configuration"]["problems"] == ["config/tillbridge.yaml:3: flows.sales: must be true or false"]
    assert run(handle(service, "GET", "preview/payment/P1", {}, b"")).status == 503


def _state() -> Any:
    from tests.fakes import FakeState

    return FakeState()


def test_an_invalid_file_holds_every_message_and_writes_nothing(tmp_path: Path) -> None:
    ctx, dv, _, square = context(tmp_path, CONFIG)
    square.orders["O1"] = order()
    queue = FakeQueue()
    worker = Worker(ctx=ctx, retry_queue=queue, policy=RetryPolicy(), blocked="the configuration file x is invalid")
    body = SyncCommand(
        message_id="e1",
        event_id="e1",
        event_type="payment.updated",
        entity_kind="payment",
        entity_id="P1",
        received_at="2026-11-22T10:00:02+00:00",
        event={"type": "payment.updated", "data": {"id": "P1", "object": {"payment": payment()}}},
    ).model_dump_json()
    assert asyncio.run(worker.handle(body.encode())) is None
    assert dv.batches == [] and len(queue.sent) == 1 and queue.sent[0].delay_seconds > 0
    assert json.loads(queue.sent[0].body)["event_id"] == "e1"


def test_a_disabled_flow_ignores_its_events(tmp_path: Path) -> None:
    ctx, dv, _, _ = context(tmp_path, CONFIG.replace("version: 1\n", "version: 1\nflows: {sales: false}\n"))
    worker = Worker(ctx=ctx, retry_queue=FakeQueue(), policy=RetryPolicy())
    body = SyncCommand(
        message_id="e1",
        event_id="e1",
        event_type="payment.updated",
        entity_kind="payment",
        entity_id="P1",
        received_at="2026-11-22T10:00:02+00:00",
        event={"type": "payment.updated", "data": {"id": "P1", "object": {"payment": payment()}}},
    ).model_dump_json()
    outcome = asyncio.run(worker.handle(body.encode()))
    assert outcome is not None and outcome.value == "ignored" and dv.batches == []
