"""What a flow needs from the outside: the ports plus the few settings that shape mapping."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from shared.flows.customer_mapping import ContactColumns
from shared.ports import Clock, DataverseApi, Metrics, SquareApi, StateStore

log = logging.getLogger("tillbridge.flow")


class Outcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    STALE = "stale"
    DUPLICATE = "duplicate"
    DEACTIVATED = "deactivated"
    MERGED = "merged"
    IGNORED = "ignored"


@dataclass
class FlowContext:
    dataverse: DataverseApi
    square: SquareApi
    state: StateStore
    clock: Clock
    metrics: Metrics
    columns: ContactColumns
    phone_region: str = "US"
    notes: list[str] = field(default_factory=list)
