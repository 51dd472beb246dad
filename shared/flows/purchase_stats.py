"""Per-contact purchase aggregates, maintained incrementally and idempotently: a payment or a refund
counts once, by id, however often its event is replayed (pure; stored by the sales flow).

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


@dataclass
class PurchaseStats:
    paid: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    visits: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    last_purchase: str | None = None
    counted: list[str] = field(default_factory=list)  # recent payment and refund ids already counted

    def to_document(self) -> dict[str, Any]:
        return {
            "paid": str(self.paid),
            "refunded": str(self.refunded),
            "visits": self.visits,
            "categories": self.categories,
            "last_purchase": self.last_purchase,
            "counted": self.counted,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any] | None) -> PurchaseStats:
        document = document or {}
        return cls(
            Decimal(document.get("paid", "0")),
            Decimal(document.get("refunded", "0")),
            int(document.get("visits", 0)),
            dict(document.get("categories", {})),
            document.get("last_purchase"),
            list(document.get("counted", [])),
        )

    def _remember(self, identifier: str) -> bool:
        if identifier in self.counted:
            return False
        self.counted = [*self.counted, identifier][-REMEMBERED_IDS:]
        return True


def add_payment(stats: PurchaseStats, payment_id: str, total: Decimal, *, at: str, categories: list[str]) -> bool:
    """True when this payment was not counted before."""
    if not stats._remember(f"p:{payment_id}"):
        return False
    stats.paid += total
    stats.visits += 1
    for name in categories:
        stats.categories[name] = stats.categories.get(name, 0) + 1
    if stats.last_purchase is None or at > stats.last_purchase:
        stats.last_purchase = at
    return True


def add_refund(stats: PurchaseStats, refund_id: str, value: Decimal) -> bool:
    if not stats._remember(f"r:{refund_id}"):
        return False
    stats.refunded += value
    return True


def contact_fields(stats: PurchaseStats, col: Any) -> dict[str, Any]:
    top = [name for name, _ in Counter(stats.categories).most_common(3)]
    return {
        col("LastPurchaseOn"): stats.last_purchase,
        col("LifetimeValue"): float(stats.paid - stats.refunded),
        col("VisitCount"): stats.visits,
        col("TopCategories"): ", ".join(top) or None,
    }
