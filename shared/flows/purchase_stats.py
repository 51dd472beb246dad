"""Per-contact purchase aggregates, maintained incrementally and idempotently: a payment or a refund
counts once, by id, however often its event is replayed (pure; stored by the sales flow).

Money is kept per currency and never added across currencies (no exchange rates here): the contact's
lifetime value is the total in its *home currency* — the currency of its earliest purchase, which does
not depend on the order events arrive in — written beside the value as an ISO code.

The ids already counted travel in the same document as the totals, so counting and remembering are one
ETag-guarded write. Only the most recent ids are kept (a replay older than that window is outside
Square's retry horizon and the reconcile lag by orders of magnitude).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

REMEMBERED_IDS = 400
REMEMBERED_VISITS = 100  # visit times kept for "n visits within d days" (rules and segments)
REMEMBERED_KEYS = 200  # follow-up rule keys already acted on


@dataclass
class CurrencyTotals:
    paid: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    first_purchase: str = ""  # the earliest purchase in this currency ("" while only refunds are known)


@dataclass
class PurchaseStats:
    money: dict[str, CurrencyTotals] = field(default_factory=dict)  # ISO currency → totals
    visits: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    last_purchase: str | None = None
    counted: list[str] = field(default_factory=list)  # recent payment and refund ids already counted
    visit_times: list[str] = field(default_factory=list)  # recent purchase times (ISO), oldest first
    stores: dict[str, int] = field(default_factory=dict)  # Square location id → visits
    fired: list[str] = field(default_factory=list)  # follow-up rule keys already acted on
    contact_id: str | None = None  # the CRM contact (segments add it to marketing lists)
    segments: list[str] = field(default_factory=list)  # the segments it is a member of
    due_at: str | None = None  # when the segments timer should look at it next (None: never)

    @property
    def currency(self) -> str | None:
        """The home currency: the one of the earliest purchase (refund-only currencies come last)."""
        dated = sorted((t.first_purchase or "~", code) for code, t in self.money.items())
        return dated[0][1] or None if dated else None

    @property
    def paid(self) -> Decimal:
        return self.money[self.currency or ""].paid if self.money else Decimal(0)

    @property
    def refunded(self) -> Decimal:
        return self.money[self.currency or ""].refunded if self.money else Decimal(0)

    def totals(self, currency: str) -> CurrencyTotals:
        return self.money.setdefault(currency.upper(), CurrencyTotals())

    def to_document(self) -> dict[str, Any]:
        return {
            "money": {
                code: {"paid": str(t.paid), "refunded": str(t.refunded), "first": t.first_purchase}
                for code, t in self.money.items()
            },
            "visits": self.visits,
            "categories": self.categories,
            "last_purchase": self.last_purchase,
            "counted": self.counted,
            "visit_times": self.visit_times,
            "stores": self.stores,
            "fired": self.fired,
            "contact_id": self.contact_id,
            "segments": self.segments,
            "due_at": self.due_at,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any] | None) -> PurchaseStats:
        document = document or {}
        money = {
            code: CurrencyTotals(Decimal(t.get("paid", "0")), Decimal(t.get("refunded", "0")), t.get("first", ""))
            for code, t in (document.get("money") or {}).items()
        }
        if not money and ("paid" in document or "refunded" in document):  # written before money was per currency
            money[""] = CurrencyTotals(Decimal(document.get("paid", "0")), Decimal(document.get("refunded", "0")))
        return cls(
            money,
            int(document.get("visits", 0)),
            dict(document.get("categories", {})),
            document.get("last_purchase"),
            list(document.get("counted", [])),
            list(document.get("visit_times", [])),
            dict(document.get("stores", {})),
            list(document.get("fired", [])),
            document.get("contact_id"),
            list(document.get("segments", [])),
            document.get("due_at"),
        )

    def _remember(self, identifier: str) -> bool:
        if identifier in self.counted:
            return False
        self.counted = [*self.counted, identifier][-REMEMBERED_IDS:]
        return True

    def remember_fired(self, key: str) -> None:
        if key not in self.fired:
            self.fired = [*self.fired, key][-REMEMBERED_KEYS:]


def add_payment(
    stats: PurchaseStats,
    payment_id: str,
    total: Decimal,
    *,
    currency: str,
    at: str,
    categories: list[str],
    location_id: str | None = None,
) -> bool:
    """True when this payment was not counted before."""
    if not stats._remember(f"p:{payment_id}"):
        return False
    totals = stats.totals(currency)
    totals.paid += total
    if at and (not totals.first_purchase or at < totals.first_purchase):
        totals.first_purchase = at
    stats.visits += 1
    for name in categories:
        stats.categories[name] = stats.categories.get(name, 0) + 1
    if stats.last_purchase is None or at > stats.last_purchase:
        stats.last_purchase = at
    if at:
        stats.visit_times = sorted([*stats.visit_times, at])[-REMEMBERED_VISITS:]
    if location_id:
        stats.stores[location_id] = stats.stores.get(location_id, 0) + 1
    return True


def add_refund(stats: PurchaseStats, refund_id: str, value: Decimal, *, currency: str) -> bool:
    if not stats._remember(f"r:{refund_id}"):
        return False
    stats.totals(currency).refunded += value
    return True


def contact_fields(stats: PurchaseStats, col: Any) -> dict[str, Any]:
    top = [name for name, _ in Counter(stats.categories).most_common(3)]
    return {
        col("LastPurchaseOn"): stats.last_purchase,
        col("LifetimeValue"): float(stats.paid - stats.refunded),
        col("LifetimeCurrency"): stats.currency,
        col("VisitCount"): stats.visits,
        col("TopCategories"): ", ".join(top) or None,
    }
