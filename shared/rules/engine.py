"""Rules → outcomes: for each rule on this event, whether it matched and why, and — when it matched and
was not acted on before — the upsert of its lead, opportunity or task, keyed by (rule, buyer, period) in
the `<prefix>_rulekey` alternate key: a replay, a duplicate or a retry writes the same row again, never
a second one; a rule that stops matching leaves what it created alone (pure)."""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from shared.config.columns import ColumnCatalog
from shared.config.file import TillbridgeConfig
from shared.config.followup import Action, Rule
from shared.core.errors import FieldProblem
from shared.core.keys import composite_key, key_segment
from shared.core.ports import BatchOperation
from shared.flows.mapping_engine import apply_mapping
from shared.rules.conditions import check
from shared.rules.facts import Facts

ENTITY_SETS = {"lead": "leads", "opportunity": "opportunities", "task": "tasks"}
TITLE_COLUMN = {"lead": "subject", "opportunity": "name", "task": "subject"}


@dataclass(frozen=True)
class RuleOutcome:
    rule_id: str
    matched: bool
    why: str
    action: str = ""  # lead | opportunity | task
    status: str = "not_matched"  # not_matched | upsert | already_done | skipped | disabled
    key: str | None = None
    operation: BatchOperation | None = None

    def trace_detail(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "matched": self.matched, "status": self.status, "why": self.why, "key": self.key}


def rule_key_column(prefix: str) -> str:
    return f"{prefix}_rulekey"


def period_label(rule: Rule, facts: Facts) -> str:
    if rule.once_per == "customer":
        return "once"
    if rule.once_per == "order":
        return facts.refund_id or facts.order_id or facts.payment_id or facts.at.date().isoformat()
    if rule.once_per == "day":
        return facts.at.date().isoformat()
    if rule.once_per == "week":
        year, week, _ = facts.at.isocalendar()
        return f"{year}-W{week:02d}"
    return facts.at.strftime("%Y-%m")


def rule_key(rule: Rule, facts: Facts) -> str:
    return composite_key(rule.id, facts.subject_id, period_label(rule, facts))


def _render(template: str | None, values: dict[str, Any], limit: int | None) -> str | None:
    if template is None:
        return None
    text = string.Formatter().vformat(template, (), {k: "" if v is None else v for k, v in values.items()})
    return text[:limit] if limit else text


def _body(rule: Rule, facts: Facts, config: TillbridgeConfig, catalog: ColumnCatalog) -> dict[str, Any]:
    action = rule.action
    table = action.kind
    values = facts.template_values(rule.id)
    title_column = TITLE_COLUMN[table]
    title = catalog.column(table, title_column)
    body: dict[str, Any] = {title_column: _render(action.title, values, title.max_length if title else None)}
    if action.description is not None:
        body["description"] = _render(action.description, values, 2000)
    if table == "lead" and facts.buyer_email:
        body["emailaddress1"] = facts.buyer_email
    if table == "lead" and facts.contact_bind:
        body["parentcontactid@odata.bind"] = facts.contact_bind
    if table == "opportunity":
        body["customerid_contact@odata.bind"] = facts.contact_bind
        body["estimatedvalue"] = float(facts.order_total or facts.refund_amount or Decimal(0))
    if table == "task":
        body["scheduledend"] = (facts.at + timedelta(days=action.due_in_days)).isoformat()
        if facts.contact_bind:
            body["regardingobjectid_contact_task@odata.bind"] = facts.contact_bind
    if facts.owner_bind:
        body["ownerid@odata.bind"] = facts.owner_bind
    problems: list[FieldProblem] = []
    extra = apply_mapping(config.mapping(table), {}, computed=values, problems=problems)
    if not problems:  # a custom column that does not fit is left out rather than failing the sale
        body.update(extra)
    return body


def _skip_reason(action: Action, facts: Facts) -> str | None:
    if action.kind == "lead" and action.who == "not_contacts" and facts.contact_bind:
        return "the buyer is already a contact (lead who: not_contacts)"
    if action.kind == "opportunity" and not facts.contact_bind:
        return "an opportunity needs a contact; the buyer is not one"
    if action.kind == "lead" and not facts.contact_bind and not facts.buyer_email:
        return "nobody to follow up: no contact and no email"
    return None


def evaluate(
    rules: Iterable[Rule],
    facts: Facts,
    *,
    config: TillbridgeConfig,
    catalog: ColumnCatalog,
    prefix: str,
    fired: Iterable[str] = (),
) -> list[RuleOutcome]:
    """Every rule on this event, in file order, with its outcome; `fired` holds keys acted on before."""
    done = set(fired)
    outcomes = []
    for rule in rules:
        if rule.on != facts.event:
            continue
        if not rule.enabled:
            outcomes.append(RuleOutcome(rule.id, False, "the rule is disabled", rule.action.kind, "disabled"))
            continue
        matched, why = check(rule.when, facts)
        if not matched:
            outcomes.append(RuleOutcome(rule.id, False, why, rule.action.kind))
            continue
        key = rule_key(rule, facts)
        skip = _skip_reason(rule.action, facts)
        if skip is not None:
            outcomes.append(RuleOutcome(rule.id, True, f"{why}; skipped: {skip}", rule.action.kind, "skipped", key))
        elif key in done:
            outcomes.append(
                RuleOutcome(rule.id, True, f"{why}; already acted on", rule.action.kind, "already_done", key)
            )
        else:
            path = ENTITY_SETS[rule.action.kind] + key_segment({rule_key_column(prefix): key})
            operation = BatchOperation("PATCH", path, _body(rule, facts, config, catalog))
            outcomes.append(RuleOutcome(rule.id, True, why, rule.action.kind, "upsert", key, operation))
            done.add(key)
    return outcomes
