"""The `rules` and `segments` sections: conditions (all/any, nestable) over a sale, a refund or a contact's
purchase aggregates; rule actions (lead, opportunity, task); segment definitions (marketing lists)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.config.mapping_kinds import FACT_FIELDS
from shared.config.yaml_source import Path, Problems, expect_mapping, type_name

EVENTS = ("sale", "refund", "inactivity")
PERIODS = ("customer", "order", "day", "week", "month")
ACTIONS = ("lead", "opportunity", "task")
COMPARISONS = ("gte", "gt", "lte", "lt")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

# condition → (what its value is, the events it can be used on; "segment" = segment definitions)
CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "first_purchase": ("flag", ("sale",)),
    "guest_without_contact": ("flag", ("sale",)),
    "guest": ("flag", ("sale",)),  # bought with no Square customer attached (whether or not the CRM knows the email)
    "is_contact": ("flag", ("sale", "refund")),
    "order_total": ("money", ("sale",)),
    "refund_amount": ("money", ("refund",)),
    "lifetime_value": ("compare", ("sale", "refund", "inactivity", "segment")),
    "visits": ("visits", ("sale", "inactivity", "segment")),
    "days_since_last_visit": ("compare", ("inactivity", "segment")),
    "category": ("names", ("sale", "segment")),
    "sku": ("names", ("sale",)),
    "store": ("names", ("sale", "refund")),
    "home_store": ("names", ("segment",)),
}
ACTION_KEYS = {
    "lead": ("subject", "description", "who"),
    "opportunity": ("name", "description"),
    "task": ("subject", "description", "due_in_days"),
}
REQUIRED_TEXT = {"lead": "subject", "opportunity": "name", "task": "subject"}
LEAD_WHO = ("not_contacts", "everyone")


@dataclass(frozen=True)
class Comparison:
    bounds: tuple[tuple[str, Decimal], ...]  # (gte|gt|lte|lt, value)
    currency: str | None = None
    within_days: int | None = None  # visits only: count the visits of the last N days

    def holds(self, value: Decimal) -> bool:
        return all(_compare(op, value, bound) for op, bound in self.bounds)

    def describe(self) -> str:
        signs = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}
        text = " and ".join(f"{signs[op]} {bound}" for op, bound in self.bounds)
        return text + (f" {self.currency}" if self.currency else "")


def _compare(op: str, value: Decimal, bound: Decimal) -> bool:
    return {"gte": value >= bound, "gt": value > bound, "lte": value <= bound, "lt": value < bound}[op]


@dataclass(frozen=True)
class Condition:
    name: str  # a key of CONDITIONS
    value: bool | Comparison | tuple[str, ...]


@dataclass(frozen=True)
class Group:
    mode: str  # all | any
    items: tuple[Condition | Group, ...]


@dataclass(frozen=True)
class Action:
    kind: str  # lead | opportunity | task
    title: str  # template: lead/task subject, opportunity name
    description: str | None = None
    who: str = "not_contacts"  # lead: only buyers that are not contacts yet, or everyone
    due_in_days: int = 1  # task


@dataclass(frozen=True)
class Rule:
    id: str
    on: str
    when: Group
    action: Action
    once_per: str = "customer"
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    when: Group
    description: str = ""


def _decimal(value: Any, path: Path, problems: Problems) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        problems.add(path, f"must be a number, found {type_name(value)}", "a number ≥ 0")
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        problems.add(path, f"{value!r} is not a number", "a number ≥ 0")
        return None
    if not number.is_finite() or number < 0:
        problems.add(path, f"{value!r} is not a number ≥ 0", "a number ≥ 0")
        return None
    return number


def _comparison(value: Any, path: Path, problems: Problems, shape: str) -> Comparison | None:
    extra = {"money": ("currency",), "visits": ("within_days",)}.get(shape, ())
    found = expect_mapping(value, path, problems, (*COMPARISONS, *extra))
    if found is None:
        return None
    bounds = []
    for op in COMPARISONS:
        if op in found:
            number = _decimal(found[op], (*path, op), problems)
            if number is not None:
                bounds.append((op, number))
    if not any(op in found for op in COMPARISONS):
        problems.add(path, "needs a bound", ", ".join(COMPARISONS))
    currency = found.get("currency")
    if currency is not None and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        problems.add((*path, "currency"), f"{currency!r} is not an ISO 4217 code", "e.g. USD, EUR, JPY")
        currency = None
    within = found.get("within_days")
    if within is not None and (isinstance(within, bool) or not isinstance(within, int) or not 1 <= within <= 3650):
        problems.add((*path, "within_days"), f"{within!r} is not a number of days", "a whole number 1–3650")
        within = None
    return Comparison(tuple(bounds), currency, within)


def _condition(name: str, value: Any, path: Path, problems: Problems, context: str) -> Condition | None:
    shape, contexts = CONDITIONS[name]
    if context not in contexts:
        problems.add(
            path,
            f"{name} cannot be used on {context}",
            ", ".join(c for c, (_, cs) in CONDITIONS.items() if context in cs),
        )
        return None
    if shape == "flag":
        if not isinstance(value, bool):
            problems.add(path, f"must be true or false, found {type_name(value)}", "true, false")
            return None
        return Condition(name, value)
    if shape == "names":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            problems.add(path, f"must be a name or a list of names, found {type_name(value)}")
            return None
        return Condition(name, tuple(names))
    comparison = _comparison(value, path, problems, shape)
    return Condition(name, comparison) if comparison is not None else None


def parse_when(value: Any, path: Path, problems: Problems, context: str) -> Group:
    """`{all: [...]}` or `{any: [...]}` of conditions or nested groups; a bare mapping of conditions = all."""
    if not isinstance(value, dict) or not value:
        problems.add(
            path, f"must be a mapping of conditions, found {type_name(value)}", "all, any, " + ", ".join(CONDITIONS)
        )
        return Group("all", ())
    if set(value) & {"all", "any"}:
        if len(value) != 1:
            problems.add(path, "all/any must be the only key of its mapping", "{all: [...]} or {any: [...]}")
            return Group("all", ())
        mode, items = next(iter(value.items()))
        if not isinstance(items, list) or not items:
            problems.add((*path, mode), f"must be a non-empty list of conditions, found {type_name(items)}")
            return Group(mode, ())
        parsed: list[Condition | Group] = []
        for index, item in enumerate(items):
            group = parse_when(item, (*path, mode, index), problems, context)
            parsed.extend(group.items if group.mode == "all" and len(group.items) == 1 else (group,))
        return Group(mode, tuple(parsed))
    conditions: list[Condition | Group] = []
    for name, condition_value in value.items():
        if name not in CONDITIONS:
            problems.add((*path, str(name)), "unknown condition", "all, any, " + ", ".join(CONDITIONS))
            continue
        parsed_condition = _condition(str(name), condition_value, (*path, str(name)), problems, context)
        if parsed_condition is not None:
            conditions.append(parsed_condition)
    return Group("all", tuple(conditions))


def _template(value: Any, path: Path, problems: Problems) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a text, found {type_name(value)}")
        return None
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as error:
        problems.add(path, f"not a valid template ({error})", "text with {placeholders}")
        return None
    for name in names:
        if name not in FACT_FIELDS:
            problems.add(path, f"unknown placeholder {{{name}}}", ", ".join(FACT_FIELDS))
    return value


def _action(value: Any, path: Path, problems: Problems) -> Action | None:
    found = expect_mapping(value, path, problems, ACTIONS)
    if not found:
        if found is not None:
            problems.add(path, "needs one action", ", ".join(ACTIONS))
        return None
    if len(found) != 1:
        problems.add(path, "holds more than one action (one rule, one action)", ", ".join(ACTIONS))
        return None
    kind, spec = next(iter(found.items()))
    if kind not in ACTIONS:
        return None
    fields = expect_mapping(spec, (*path, kind), problems, ACTION_KEYS[kind], required=(REQUIRED_TEXT[kind],))
    if fields is None:
        return None
    title = _template(fields.get(REQUIRED_TEXT[kind]), (*path, kind, REQUIRED_TEXT[kind]), problems)
    description = _template(fields.get("description"), (*path, kind, "description"), problems)
    who = fields.get("who", "not_contacts")
    if who not in LEAD_WHO:
        problems.add((*path, kind, "who"), f"{who!r} is not a choice", ", ".join(LEAD_WHO))
    due = fields.get("due_in_days", 1)
    if isinstance(due, bool) or not isinstance(due, int) or not 0 <= due <= 365:
        problems.add((*path, kind, "due_in_days"), f"{due!r} is not a number of days", "a whole number 0–365")
        due = 1
    return Action(kind, title or "", description, who if who in LEAD_WHO else "not_contacts", due)


def _identifier(value: Any, path: Path, problems: Problems, seen: set[str]) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        problems.add(path, f"{value!r} is not an id", "lower-case letters, digits and -, up to 40 characters")
        return ""
    if value in seen:
        problems.add(path, f"the id {value!r} is used twice", "each id once")
    seen.add(value)
    return value


def _entries(value: Any, name: str, problems: Problems) -> list[tuple[int, dict[str, Any]]]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add((name,), f"must be a list, found {type_name(value)}")
        return []
    return [(index, item) for index, item in enumerate(value)]


RULE_KEYS = ("id", "description", "on", "when", "action", "once_per", "enabled")


def parse_rules(value: Any, problems: Problems) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in _entries(value, "rules", problems):
        path: Path = ("rules", index)
        found = expect_mapping(item, path, problems, RULE_KEYS, required=("id", "on", "when", "action"))
        if found is None:
            continue
        rule_id = _identifier(found.get("id"), (*path, "id"), problems, seen)
        on = found.get("on")
        if on not in EVENTS:
            problems.add((*path, "on"), f"{on!r} is not an event", ", ".join(EVENTS))
            on = "sale"
        when = parse_when(found.get("when"), (*path, "when"), problems, str(on))
        action = _action(found.get("action"), (*path, "action"), problems)
        once_per = found.get("once_per", "customer")
        if once_per not in PERIODS:
            problems.add((*path, "once_per"), f"{once_per!r} is not a period", ", ".join(PERIODS))
        enabled = found.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.add((*path, "enabled"), f"must be true or false, found {type_name(enabled)}", "true, false")
        if action is not None and found.get("id") is not None:
            rules.append(
                Rule(rule_id, str(on), when, action, str(once_per), str(found.get("description", "")), enabled is True)
            )
    return tuple(rules)


def parse_segments(value: Any, problems: Problems) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    seen: set[str] = set()
    for index, item in _entries(value, "segments", problems):
        path: Path = ("segments", index)
        found = expect_mapping(
            item, path, problems, ("id", "name", "description", "when"), required=("id", "name", "when")
        )
        if found is None:
            continue
        segment_id = _identifier(found.get("id"), (*path, "id"), problems, seen)
        name = found.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            problems.add((*path, "name"), "must be a text of 1–128 characters (the marketing list's name)")
            name = segment_id
        when = parse_when(found.get("when"), (*path, "when"), problems, "segment")
        segments.append(Segment(segment_id, str(name), when, str(found.get("description", ""))))
    return tuple(segments)
