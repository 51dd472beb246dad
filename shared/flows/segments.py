"""behaviour → segments: a timer keeps one static marketing list per segment in step with the purchase
aggregates — adds who entered, removes who left, nothing else — and runs the inactivity rules.

Only contacts whose aggregates changed since they were last looked at are evaluated: a sale or refund
marks the buyer's aggregates due (`due_at`), and each evaluation sets the next due time to when a
time-based condition could flip. Membership changes use Dataverse's list actions (AddListMembersList,
one per list for everyone who entered; RemoveMemberList per leaver), sent in $batch requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from shared.config.columns import load_catalog
from shared.config.followup import Segment
from shared.core.errors import ConcurrencyError
from shared.core.ports import BatchOperation
from shared.flows.commerce_support import STATS_DOC
from shared.flows.context import FlowContext
from shared.flows.purchase_stats import PurchaseStats
from shared.monitoring.tracing import AttemptTrace, TraceStore
from shared.rules.engine import RuleOutcome, evaluate
from shared.rules.facts import Facts, aggregate_facts
from shared.rules.segments import membership, next_due, timed_groups

CURSOR = "segments"
LIST_DOC = "segmentlist"
MAX_BATCH = 1000  # operations per $batch (reference/dataverse.md §4)
CONTACT_TYPE = "Microsoft.Dynamics.CRM.contact"


@dataclass
class SegmentReport:
    run_at: str
    evaluated: int = 0
    entered: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    rule_actions: int = 0
    requests: int = 0
    skipped: str = ""

    def to_document(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def segment_key_column(prefix: str) -> str:
    return f"{prefix}_segmentid"


async def ensure_list(ctx: FlowContext, segment: Segment) -> str:
    """The segment's static contact list (created once, keyed by <prefix>_segmentid); its id is cached."""
    document, etag = await ctx.state.get_doc(LIST_DOC, segment.id)
    if document and document.get("list_id"):
        return str(document["list_id"])
    key = {segment_key_column(ctx.columns.prefix): segment.id}
    found = await ctx.dataverse.get_by_key("lists", key, ["listid"])
    if found is None:  # list.createdfromcode 2 = contact, type false = static (both create-only)
        body = {"listname": segment.name, "createdfromcode": 2, "type": False, "description": segment.description}
        list_id = (await ctx.dataverse.upsert_by_key("lists", key, body)).entity_id
    else:
        list_id = str(found["listid"])
    await ctx.state.put_doc(LIST_DOC, segment.id, {"list_id": list_id}, etag)
    return list_id


def membership_operations(
    lists: dict[str, str], adds: dict[str, list[str]], removes: dict[str, list[str]]
) -> list[BatchOperation]:
    operations = []
    for segment_id, contact_ids in adds.items():
        for start in range(0, len(contact_ids), MAX_BATCH):
            members = [{"@odata.type": CONTACT_TYPE, "contactid": c} for c in contact_ids[start : start + MAX_BATCH]]
            body = {
                "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": lists[segment_id]},
                "Members": members,
            }
            operations.append(BatchOperation("POST", "AddListMembersList", body))
    for segment_id, contact_ids in removes.items():
        path = f"lists({lists[segment_id]})/Microsoft.Dynamics.CRM.RemoveMemberList"
        operations += [BatchOperation("POST", path, {"EntityId": c}) for c in contact_ids]
    return operations


@dataclass
class _Due:
    doc_id: str
    stats: PurchaseStats
    etag: str
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    outcomes: list[RuleOutcome] = field(default_factory=list)


def _evaluate(ctx: FlowContext, item: _Due, now: datetime, operations: list[BatchOperation]) -> None:
    config = ctx.configuration
    facts = Facts(event="segment", at=now, subject_id=item.doc_id, **aggregate_facts(item.stats, now))
    moved = membership(config.segments, facts, item.stats.segments)
    item.entered, item.left, item.reasons = moved.entered, moved.left, moved.reasons
    item.stats.segments = list(moved.members)
    if config.flow_enabled("rules"):
        owner = ctx.sales.owners.for_location(facts.home_store)[0].owner  # the home store's owner
        contact = f"/contacts({item.stats.contact_id})"
        inactivity = replace(facts, event="inactivity", contact_bind=contact, owner_bind=owner)
        item.outcomes = evaluate(
            config.rules,
            inactivity,
            config=config,
            catalog=load_catalog(ctx.columns.prefix),
            prefix=ctx.columns.prefix,
            fired=item.stats.fired,
        )
        for outcome in item.outcomes:
            if outcome.operation is not None and outcome.key is not None:
                operations.append(outcome.operation)
                item.stats.remember_fired(outcome.key)
    due = next_due(timed_groups(config.segments, config.rules), facts)
    item.stats.due_at = due.isoformat() if due else None


async def run_segments(ctx: FlowContext, traces: TraceStore | None = None, *, limit: int = 5000) -> SegmentReport:
    now = ctx.clock.now().astimezone(UTC)
    report = SegmentReport(run_at=now.isoformat())
    config = ctx.configuration
    previous = json.loads(await ctx.state.get_cursor(CURSOR) or "{}")
    report.sizes = {s.id: int(previous.get("sizes", {}).get(s.id, 0)) for s in config.segments}
    if not config.flow_enabled("segments"):
        report.skipped = "the segments flow is off in the configuration file"
        return report
    lists = {segment.id: await ensure_list(ctx, segment) for segment in config.segments}
    due = [
        _Due(doc_id, PurchaseStats.from_document(document), etag)
        for doc_id, document, etag in await ctx.state.due_docs(STATS_DOC, now.isoformat(), limit)
    ]
    operations: list[BatchOperation] = []
    adds: dict[str, list[str]] = {}
    removes: dict[str, list[str]] = {}
    for item in due:
        if not item.stats.contact_id:  # a guest with no contact cannot be a list member
            item.stats.due_at = None
            continue
        _evaluate(ctx, item, now, operations)
        for segment_id in item.entered:
            adds.setdefault(segment_id, []).append(item.stats.contact_id)
        for segment_id in item.left:
            removes.setdefault(segment_id, []).append(item.stats.contact_id)
    operations = membership_operations(lists, adds, removes) + operations
    for start in range(0, len(operations), MAX_BATCH):
        await ctx.dataverse.batch(operations[start : start + MAX_BATCH])
        report.requests += 1
    await _save(ctx, due, traces, report)
    report.evaluated = len(due)
    report.entered = {k: len(v) for k, v in adds.items()}
    report.left = {k: len(v) for k, v in removes.items()}
    report.rule_actions = sum(1 for i in due for o in i.outcomes if o.operation is not None)
    for segment_id in report.sizes:
        report.sizes[segment_id] += report.entered.get(segment_id, 0) - report.left.get(segment_id, 0)
    await ctx.state.set_cursor(CURSOR, json.dumps(report.to_document()))
    ctx.metrics.increment("segment_contacts_evaluated", float(report.evaluated))
    return report


async def _save(ctx: FlowContext, due: list[_Due], traces: TraceStore | None, report: SegmentReport) -> None:
    for item in due:
        try:
            await ctx.state.put_doc(STATS_DOC, item.doc_id, item.stats.to_document(), item.etag)
        except ConcurrencyError:  # a sale changed it meanwhile: it is due again, evaluated next run
            continue
        if traces is not None and (item.entered or item.left or any(o.operation for o in item.outcomes)):
            await traces.save(_trace(ctx, item, report.run_at))


def _trace(ctx: FlowContext, item: _Due, run_at: str) -> AttemptTrace:
    """The contact's record timeline (customers flow) shows each segment move and inactivity rule."""
    trace = AttemptTrace(
        flow="customers",
        record_id=item.doc_id,
        event_id=f"segments-{run_at}",
        event_type="segments.evaluated",
        attempt=1,
        delivery_count=1,
        started_at=run_at,
        outcome="written",
        clock=ctx.clock,
    )
    for segment_id in item.entered:
        trace.step("segment", segment=segment_id, move="entered", why=item.reasons.get(segment_id))
    for segment_id in item.left:
        trace.step("segment", segment=segment_id, move="left", why=item.reasons.get(segment_id))
    for outcome in item.outcomes:
        trace.step("rule", **outcome.trace_detail())
    return trace
