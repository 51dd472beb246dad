"""Which tables track changes, and the delta tokens the organisation has issued (change_tracking.py serves them).

Tokens look like the documented ones (`919042!08/22/2017 08:10:44`: version!time, here with microseconds) and are
opaque to clients. They expire after Organization.ExpireChangeTrackingInDays (default 7) or on demand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.dataverse_emulator.store import DataverseFault, Table

SEVEN_DAYS = 7 * 24 * 3600.0


@dataclass
class ChangeTracking:
    """Which tables track changes, and the delta tokens issued so far."""

    enabled: set[str] = field(default_factory=lambda: {"contact"})  # logical names
    token_max_age_seconds: float = SEVEN_DAYS
    issued: dict[str, float] = field(default_factory=dict)  # token → monotonic issue time
    expired_before: float = float("-inf")

    def is_tracked(self, table: Table) -> bool:
        return table.definition.logical_name in self.enabled

    def issue(self, version: int) -> str:
        stamp = datetime.now(UTC).strftime("%m/%d/%Y %H:%M:%S.%f")
        token = f"{version}!{stamp}"
        self.issued[token] = time.monotonic()
        return token

    def version_of(self, token: str) -> int:
        issued_at = self.issued.get(token)
        too_old = issued_at is not None and time.monotonic() - issued_at > self.token_max_age_seconds
        if issued_at is None or issued_at <= self.expired_before or too_old:
            raise DataverseFault(
                400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
            )
        return int(token.split("!", 1)[0])

    def expire_all(self) -> int:
        self.expired_before = time.monotonic()
        return len(self.issued)

    def state(self) -> dict[str, Any]:
        return {
            "enabled": sorted(self.enabled),
            "token_max_age_seconds": self.token_max_age_seconds,
            "tokens_issued": len(self.issued),
        }
