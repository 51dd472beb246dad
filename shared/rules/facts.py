"""What a rule or a segment condition looks at: one event (sale, refund, inactivity) and the buyer's
aggregates after it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.core.times import parse_time
from shared.flows.purchase_stats import PurchaseStats


@dataclass(frozen=True)
class Facts:
    event: str  # sale | refund | inactivity | segment
    at: datetime  # when the event happened (a sale's payment time; the timer's run time)
    subject_id: str  # whom the aggregates belong to: Square customer id, or a guest key
    contact_bind: str | None = None  # "/contacts(<guid>)" when the buyer is a CRM contact
    buyer_email: str | None = None
    guest: bool = False  # the sale had no Square customer attached
    location_id: str | None = None
    owner_bind: str | None = None  # the store's owner (location map), else the default owner
    order_id: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    receipt_number: str | None = None
    currency: str | None = None
    order_total: Decimal | None = None
    refund_amount: Decimal | None = None
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    visits: int = 0
    visit_times: tuple[datetime, ...] = ()
    lifetime_value: Decimal = Decimal(0)
    last_visit: datetime | None = None
    category_counts: tuple[tuple[str, int], ...] = ()
    home_store: str | None = None

    @property
    def days_since_last_visit(self) -> int | None:
        return None if self.last_visit is None else max(0, (self.at - self.last_visit).days)

    def visits_within(self, days: int | None) -> int:
        """Visits in the last `days` days. For a sale the window ends at the newest visit known, so the
        answer does not depend on the order the sales were processed in (a later sale may be counted first);
        for the timer it ends now, so old visits age out."""
        if days is None:
            return self.visits
        end = self.at
        if self.event in ("sale", "refund") and self.last_visit is not None:
            end = max(end, self.last_visit)
        since = end - timedelta(days=days)
        return sum(1 for moment in self.visit_times if since < moment <= end)

    def template_values(self, rule_id: str) -> dict[str, Any]:
        """The values templates and computed.<name> mapping sources read (config FACT_FIELDS)."""
        return {
            "rule_id": rule_id,
            "event": self.event,
            "date": self.at.date().isoformat(),
            "order_id": self.order_id,
            "payment_id": self.payment_id,
            "refund_id": self.refund_id,
            "receipt_number": self.receipt_number,
            "location_id": self.location_id,
            "currency": self.currency,
            "order_total": self.order_total,
            "refund_amount": self.refund_amount,
            "categories": ", ".join(self.categories) or None,
            "skus": ", ".join(self.skus) or None,
            "visits": self.visits,
            "lifetime_value": self.lifetime_value,
            "buyer_email": self.buyer_email,
            "days_since_last_visit": self.days_since_last_visit,
        }


def moment(text: str | None, fallback: datetime) -> datetime:
    parsed = parse_time(text) if text else None
    return (parsed or fallback).astimezone(UTC)


def aggregate_facts(stats: PurchaseStats, at: datetime) -> dict[str, Any]:
    """The aggregate part of Facts, from the stored purchase stats."""
    times = tuple(m for m in (parse_time(t) for t in stats.visit_times) if m is not None)
    home = max(sorted(stats.stores), key=lambda store: stats.stores[store]) if stats.stores else None
    return {
        "visits": stats.visits,
        "visit_times": tuple(t.astimezone(UTC) for t in times),
        "lifetime_value": stats.paid - stats.refunded,
        "last_visit": moment(stats.last_purchase, at) if stats.last_purchase else None,
        "category_counts": tuple(sorted(stats.categories.items())),
        "home_store": home,
    }
