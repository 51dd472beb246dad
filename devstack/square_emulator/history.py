"""A seller's past, made up deterministically: customers and sales that happened before Tillbridge was
installed, so no webhook will ever replay them (what `tillbridge backfill` must load). Nothing here fires an
event. Timestamps are spread over [start, end]; every generated customer has public information, a unique
email and a valid, unique North-American phone number."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devstack.square_emulator.clock import stamp
from devstack.square_emulator.commerce import Commerce
from devstack.square_emulator.customers import CustomerBook
from devstack.square_emulator.sales import Till

GIVEN = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Katherine",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Tim",
    "Vint",
    "Yukihiro",
    "Hedy",
    "Ken",
    "Lynn",
    "Dennis",
)
FAMILY = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Berners-Lee",
    "Cerf",
    "Matsumoto",
    "Lamarr",
    "Thompson",
    "Conway",
    "Ritchie",
)
AREA_CODES = ("206", "312", "415", "617", "212", "303", "512", "404")


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime

    def at(self, fraction: float) -> datetime:
        return self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0)


def _phone(n: int) -> str:
    area = AREA_CODES[(n // 8_000_000) % len(AREA_CODES)]
    exchange = 200 + (n // 10_000) % 800
    return f"+1 {area}-{exchange:03d}-{n % 10_000:04d}"


def generate_customers(book: CustomerBook, count: int, span: Span, seed: int, first_number: int = 0) -> int:
    """`count` customers created in order over the span; about a third updated later (version > 0)."""
    rng = random.Random(seed)
    for i in range(count):
        n = first_number + i
        given, family = GIVEN[n % len(GIVEN)], FAMILY[(n // len(GIVEN)) % len(FAMILY)]
        created = span.at((i + rng.random()) / max(count, 1))
        updated = created
        version = 0
        if rng.random() < 0.35:
            updated = created + (span.end - created) * rng.random()
            version = rng.randint(1, 4)
        book.import_history(
            {
                "created_at": stamp(created),
                "updated_at": stamp(updated),
                "version": version,
                "given_name": given,
                "family_name": family,
                "email_address": f"{given}.{family}.{n}@example.com".lower(),
                "phone_number": _phone(n),
                "reference_id": f"HIST-{n}",
            }
        )
    return count


def _shop(commerce: Commerce) -> list[str]:
    """Variation ids to sell: the catalog's, or a small one made up for the history."""
    if not commerce.locations:
        for name in ("Harbour Street", "Market Square", "Old Town"):
            commerce.add_location(name)
    if not commerce.variations:
        commerce.edit_catalog(
            [
                {
                    "name": "Tea",
                    "category": "Drinks",
                    "variations": [{"name": "Mug", "price": 350}, {"name": "Pot", "price": 900}],
                },
                {"name": "Coffee", "category": "Drinks", "variations": [{"name": "Regular", "price": 400}]},
                {"name": "Scone", "category": "Bakery", "variations": [{"name": "Plain", "price": 275}]},
                {"name": "Notebook", "category": "Stationery", "variations": [{"name": "A5", "price": 1200}]},
            ]
        )
    return list(commerce.variations)


def generate_sales(
    commerce: Commerce, count: int, span: Span, seed: int, customer_ids: list[str], *, refund_rate: float = 0.05
) -> dict[str, int]:
    """`count` completed POS sales over the span at the seller's locations; some refunded a day later."""
    rng = random.Random(seed)
    variations = _shop(commerce)
    locations = list(commerce.locations)
    refunds = 0
    for i in range(count):
        at = span.at((i + rng.random()) / max(count, 1))
        sale: dict[str, Any] = {
            "location_id": locations[rng.randrange(len(locations))],
            "lines": [
                {"variation_id": variations[rng.randrange(len(variations))], "quantity": rng.randint(1, 3)}
                for _ in range(rng.randint(1, 3))
            ],
            "tax_percent": 8.5,
            "tip": rng.choice((0, 0, 100, 200)),
        }
        if customer_ids and rng.random() < 0.6:
            sale["customer_id"] = customer_ids[rng.randrange(len(customer_ids))]
        _, payment, _ = Till(commerce, at=stamp(at), quiet=True).ring_up_sale(sale)
        if rng.random() < refund_rate:
            later = min(at + timedelta(days=1), span.end)
            Till(commerce, at=stamp(later), quiet=True).refund(payment["id"], None, "Customer request")
            refunds += 1
    return {"sales": count, "refunds": refunds}
