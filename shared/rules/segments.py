"""Segment membership and when to look again (pure): who is in which segment now, and the earliest
moment a time-based condition (visits within d days, days since the last visit) could change that
without any new purchase — the contact is due again then."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config.followup import Comparison, Condition, Group, Rule, Segment
from shared.rules.conditions import check
from shared.rules.facts import Facts


@dataclass(frozen=True)
class Membership:
    members: tuple[str, ...]  # segment ids the contact belongs to now
    entered: tuple[str, ...]
    left: tuple[str, ...]
    reasons: dict[str, str]


def membership(segments: Iterable[Segment], facts: Facts, before: list[str]) -> Membership:
    old = set(before)
    members: list[str] = []
    reasons: dict[str, str] = {}
    for segment in segments:
        held, why = check(segment.when, facts)
        reasons[segment.id] = why
        if held:
            members.append(segment.id)
    entered = tuple(m for m in members if m not in old)  # in the file's order
    left = tuple(m for m in before_order(before) if m not in members)
    return Membership(tuple(members), entered, left, reasons)


def before_order(before: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(before))


def _conditions(group: Group) -> Iterable[Condition]:
    for item in group.items:
        if isinstance(item, Group):
            yield from _conditions(item)
        else:
            yield item


def next_due(groups: Iterable[Group], facts: Facts) -> datetime | None:
    """The earliest future moment any time-based condition of these groups can flip for this contact."""
    moments: list[datetime] = []
    for group in groups:
        for condition in _conditions(group):
            if not isinstance(condition.value, Comparison):
                continue
            if condition.name == "visits" and condition.value.within_days:
                window = timedelta(days=condition.value.within_days)
                moments += [t + window for t in facts.visit_times]  # a visit leaves the window
            elif condition.name == "days_since_last_visit" and facts.last_visit is not None:
                for _, bound in condition.value.bounds:  # the day count passes each bound
                    moments += [facts.last_visit + timedelta(days=int(bound) + extra) for extra in (0, 1)]
    future = [m for m in moments if m > facts.at]
    return min(future) if future else None


def timed_groups(segments: Iterable[Segment], rules: Iterable[Rule]) -> list[Group]:
    return [s.when for s in segments] + [r.when for r in rules if r.on == "inactivity" and r.enabled]
