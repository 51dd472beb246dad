"""What a backfill (or a dry run) did with each record: the counts people read in the summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Counts:
    examined: int = 0
    created: int = 0  # would create, in a dry run
    updated: int = 0  # would update
    unchanged: int = 0  # the CRM already has this version (or newer: the live path got there first)
    review: int = 0  # ambiguous: several CRM contacts match (a failure record asks a person to choose)
    unmatched: int = 0  # written without a link: the buyer or the sale is not in the CRM (yet)
    invalid: int = 0  # the Square object cannot be written as it is (failure record with the field)
    failed: int = 0  # Dataverse refused the row (failure record with the reason)
    deferred: int = 0  # the live path was writing the same object at that moment; it is re-synced from Square
    requests: int = 0  # Dataverse requests spent

    def add(self, other: Counts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
