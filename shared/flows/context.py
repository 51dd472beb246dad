"""What a flow needs from the outside: the ports plus the few settings that shape mapping."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.config.file import TillbridgeConfig, default_config
from shared.config.location_owners import LocationOwners
from shared.core.coalesce import Coalescer
from shared.core.keyed_lock import KeyedLocks
from shared.core.ports import Clock, DataverseApi, Metrics, SquareApi, StateStore
from shared.flows.customer_mapping import ContactColumns
from shared.flows.ownership import TwoWayOptions

log = logging.getLogger("tillbridge.flow")


class Outcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    STALE = "stale"
    DUPLICATE = "duplicate"
    DEACTIVATED = "deactivated"
    MERGED = "merged"
    IGNORED = "ignored"
    SUPPRESSED = "suppressed"  # Tillbridge's own change coming back (two-way echo): nothing is written


@dataclass(frozen=True)
class SalesOptions:
    guest_checkout: str = "match_or_create"
    owners: LocationOwners = field(default_factory=LocationOwners)
    refund_case_threshold: float | None = None


@dataclass
class FlowContext:
    dataverse: DataverseApi
    square: SquareApi
    state: StateStore
    clock: Clock
    metrics: Metrics
    columns: ContactColumns
    phone_region: str = "US"
    sales: SalesOptions = field(default_factory=SalesOptions)
    orders: Coalescer[str, dict[str, Any]] | None = None
    reported_unmapped: set[str] = field(default_factory=set)
    two_way: TwoWayOptions = field(default_factory=TwoWayOptions)
    config: TillbridgeConfig | None = None  # the configuration file (None: the shipped default)
    # one writer at a time per object in this process: (kind, Square or CRM id) → lock (core/keyed_lock.py)
    writers: KeyedLocks[tuple[str, str]] = field(default_factory=KeyedLocks)

    @property
    def configuration(self) -> TillbridgeConfig:
        if self.config is None:
            self.config = default_config(self.columns.prefix)
        return self.config

    async def load_order(self, order_id: str) -> dict[str, Any] | None:
        """Concurrent order look-ups share one BatchRetrieveOrders call."""
        if self.orders is None:
            self.orders = Coalescer(self.square.batch_retrieve_orders)
        return await self.orders.load(order_id)
