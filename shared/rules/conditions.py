"""Conditions (all/any, nested) evaluated against Facts, each answer with the reason people read in the
record's timeline and in `tillbridge config preview` (pure)."""

from __future__ import annotations

from decimal import Decimal

from shared.config.followup import Comparison, Condition, Group
from shared.rules.facts import Facts


def _flag(name: str, wanted: bool, actual: bool, said: str) -> tuple[bool, str]:
    return actual == wanted, f"{name}: {said}" + ("" if actual == wanted else f" (wanted {str(wanted).lower()})")


def _money(name: str, comparison: Comparison, amount: Decimal | None, currency: str | None) -> tuple[bool, str]:
    if amount is None:
        return False, f"{name}: no amount"
    if comparison.currency and comparison.currency != currency:
        return False, f"{name}: {amount} {currency} is not in {comparison.currency}"
    held = comparison.holds(amount)
    return held, f"{name}: {amount} {currency or ''} {'meets' if held else 'misses'} {comparison.describe()}".replace(
        "  ", " "
    )


def _number(name: str, comparison: Comparison, value: Decimal | int | None) -> tuple[bool, str]:
    if value is None:
        return False, f"{name}: unknown"
    held = comparison.holds(Decimal(value))
    return held, f"{name}: {value} {'meets' if held else 'misses'} {comparison.describe()}"


def _names(name: str, wanted: tuple[str, ...], actual: tuple[str, ...]) -> tuple[bool, str]:
    hits = sorted(set(wanted) & set(actual))
    if hits:
        return True, f"{name}: {', '.join(hits)}"
    return False, f"{name}: none of {', '.join(wanted)} (has {', '.join(actual) or 'none'})"


def _flag_condition(name: str, value: bool, facts: Facts) -> tuple[bool, str]:
    if name == "first_purchase":
        return _flag(name, value, facts.visits == 1, f"visit {facts.visits}")
    if name == "guest_without_contact":
        actual = facts.contact_bind is None and bool(facts.buyer_email)
        said = "a guest with an email and no contact" if actual else ("a contact" if facts.contact_bind else "no email")
        return _flag(name, value, actual, said)
    if name == "guest":
        return _flag(name, value, facts.guest, "bought as a guest" if facts.guest else "a Square customer")
    return _flag(name, value, facts.contact_bind is not None, "a contact" if facts.contact_bind else "not a contact")


def check_condition(condition: Condition, facts: Facts) -> tuple[bool, str]:
    name, value = condition.name, condition.value
    if isinstance(value, bool):
        return _flag_condition(name, value, facts)
    if isinstance(value, Comparison):
        if name == "order_total":
            return _money(name, value, facts.order_total, facts.currency)
        if name == "refund_amount":
            return _money(name, value, facts.refund_amount, facts.currency)
        if name == "lifetime_value":
            return _number(name, value, facts.lifetime_value)
        if name == "days_since_last_visit":
            return _number(name, value, facts.days_since_last_visit)
        window = f" in {value.within_days} days" if value.within_days else ""
        return _number(f"visits{window}", value, facts.visits_within(value.within_days))
    if name == "category":
        bought = facts.categories if facts.event == "sale" else tuple(n for n, _ in facts.category_counts)
        return _names(name, value, bought)  # a sale: this basket; a segment: any purchase so far
    if name == "sku":
        return _names(name, value, facts.skus)
    if name == "store":
        return _names(name, value, (facts.location_id,) if facts.location_id else ())
    return _names(name, value, (facts.home_store,) if facts.home_store else ())


def check(group: Group, facts: Facts) -> tuple[bool, str]:
    """Whether the group holds, and why (each condition's reason, joined)."""
    results = [check_group_item(item, facts) for item in group.items]
    held = all(r[0] for r in results) if group.mode == "all" else any(r[0] for r in results)
    reasons = "; ".join(("✓ " if ok else "✗ ") + why for ok, why in results)
    return held, (reasons if group.mode == "all" else f"any({reasons})")


def check_group_item(item: Condition | Group, facts: Facts) -> tuple[bool, str]:
    return check(item, facts) if isinstance(item, Group) else check_condition(item, facts)
