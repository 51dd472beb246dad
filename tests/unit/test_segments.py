"""Segments over fakes: contacts enter and leave marketing lists as their aggregates and time move; only
contacts that are due are looked at; inactivity rules run from the same timer; moves in the timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.flows.segments import run_segments
from tests.unit.test_rules import context, pay
from tests.unit.test_sales_flows import order, run

CONTACT_ID = "c0ffee00-0000-0000-0000-000000000001"
CONFIG = """\
version: 1
segments:
  - id: regulars
    name: "Regulars: three visits in 30 days"
    when: {visits: {gte: 3, within_days: 30}}
  - id: big-spenders
    name: Big spenders
    when: {lifetime_value: {gte: 20}}
rules:
  - id: lapsed
    on: inactivity
    when: {days_since_last_visit: {gte: 60}}
    action: {task: {subject: "No visit for {days_since_last_visit} days"}}
    once_per: month
"""


class Traces:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    async def save(self, trace: Any) -> None:
        self.saved.append(trace)


def three_sales(tmp_path: Path) -> tuple[Any, Any, Any]:
    ctx, dv, state, square = context(tmp_path, CONFIG)
    for index, day in enumerate(("2026-11-01", "2026-11-10", "2026-11-20")):
        square.orders[f"V{index}"] = order(f"V{index}", updated=f"{day}T09:00:00.000Z")
        pay(ctx, f"PV{index}", f"V{index}", updated=f"{day}T09:00:01.000Z")
    return ctx, dv, state


def list_ids(dv: Any) -> dict[str, str]:
    return {row["tb_segmentid"]: row["contactid"] for row in dv.rows.values() if row.get("tb_segmentid")}


def test_contacts_enter_lists_with_one_add_per_list_in_one_batch(tmp_path: Path) -> None:
    ctx, dv, state = three_sales(tmp_path)
    sales = len(dv.batches)
    traces = Traces()
    report = run(run_segments(ctx, traces))  # type: ignore[arg-type]
    lists = list_ids(dv)
    assert sorted(lists) == ["big-spenders", "regulars"]
    (batch,) = dv.batches[sales:]
    assert [(op.method, op.path, op.body) for op in batch] == [
        (
            "POST",
            "AddListMembersList",
            {
                "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": lists["regulars"]},
                "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": CONTACT_ID}],
            },
        ),
        (
            "POST",
            "AddListMembersList",
            {
                "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": lists["big-spenders"]},
                "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": CONTACT_ID}],
            },
        ),
    ]
    assert (report.evaluated, report.entered, report.left, report.sizes) == (
        1,
        {"regulars": 1, "big-spenders": 1},
        {},
        {"regulars": 1, "big-spenders": 1},
    )
    (trace,) = traces.saved
    assert (trace.flow, trace.record_id) == ("customers", "C1")
    assert [(s.detail["segment"], s.detail["move"]) for s in trace.steps if s.stage == "segment"] == [
        ("regulars", "entered"),
        ("big-spenders", "entered"),
    ]
    rows = [r for r in dv.rows.values() if r.get("tb_segmentid") == "regulars"]
    assert rows[0]["listname"] == "Regulars: three visits in 30 days" and rows[0]["createdfromcode"] == 2
    assert json.loads(state.cursors["segments"])["sizes"] == {"regulars": 1, "big-spenders": 1}


def test_nothing_changed_means_nobody_is_evaluated_and_nothing_is_sent(tmp_path: Path) -> None:
    ctx, dv, _ = three_sales(tmp_path)
    run(run_segments(ctx))
    before = len(dv.batches)
    report = run(run_segments(ctx))
    assert report.evaluated == 0 and len(dv.batches) == before


def test_leaving_when_a_visit_ages_out_and_the_inactivity_rule(tmp_path: Path) -> None:
    ctx, dv, _ = three_sales(tmp_path)
    run(run_segments(ctx))
    lists = list_ids(dv)
    ctx.clock.moment = datetime(2026, 12, 2, 12, tzinfo=UTC)  # the 1 November visit left the 30-day window
    before = len(dv.batches)
    report = run(run_segments(ctx))
    (batch,) = dv.batches[before:]
    assert [(op.path, op.body) for op in batch] == [
        (f"lists({lists['regulars']})/Microsoft.Dynamics.CRM.RemoveMemberList", {"EntityId": CONTACT_ID})
    ]
    assert report.left == {"regulars": 1} and report.sizes == {"regulars": 0, "big-spenders": 1}
    ctx.clock.moment = datetime(2027, 1, 20, 12, tzinfo=UTC)  # 61 days after the last visit
    before = len(dv.batches)
    report = run(run_segments(ctx))
    (batch,) = dv.batches[before:]
    assert [(op.path, op.body) for op in batch] == [
        (
            "tasks(tb_rulekey='lapsed.C1.2027-01')",
            {
                "subject": "No visit for 61 days",
                "scheduledend": "2027-01-21T12:00:00+00:00",
                "regardingobjectid_contact_task@odata.bind": f"/contacts({CONTACT_ID})",
                "ownerid@odata.bind": "/systemusers(22222222-2222-2222-2222-222222222222)",
            },
        )
    ]
    assert report.rule_actions == 1
    ctx.clock.moment = datetime(2027, 1, 21, 12, tzinfo=UTC)  # due again (the next day count) — same month
    before = len(dv.batches)
    run(run_segments(ctx))
    assert len(dv.batches) == before  # already acted on this month: no second task


def test_a_new_sale_makes_the_contact_due_and_re_enter(tmp_path: Path) -> None:
    ctx, dv, _ = three_sales(tmp_path)
    run(run_segments(ctx))
    ctx.clock.moment = datetime(2026, 12, 2, 12, tzinfo=UTC)
    run(run_segments(ctx))  # left regulars
    square = ctx.square
    square.orders["V9"] = order("V9", updated="2026-12-02T09:00:00.000Z")
    pay(ctx, "PV9", "V9", updated="2026-12-02T09:00:01.000Z")
    before = len(dv.batches)
    report = run(run_segments(ctx))
    assert report.entered == {"regulars": 1} and len(dv.batches) == before + 1


def test_segments_flow_off(tmp_path: Path) -> None:
    ctx, dv, _, _ = context(tmp_path, CONFIG.replace("version: 1\n", "version: 1\nflows: {segments: false}\n"))
    report = run(run_segments(ctx))
    assert report.skipped and dv.batches == []
