"""Clock and metrics edges: the system clock, and counters that go to the log (and stay countable)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime

log = logging.getLogger("tillbridge.metrics")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class LogMetrics:
    """Counts in memory and logs each increment as a structured record (ids and names only, no PII)."""

    def __init__(self) -> None:
        self.counters: defaultdict[str, float] = defaultdict(float)

    def increment(self, name: str, value: float = 1.0, **dimensions: str) -> None:
        label = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
        self.counters[f"{name}{{{label}}}" if label else name] += value
        log.debug("metric %s %s +%g", name, label, value, extra={"metric": name, "dimensions": dimensions})

    def total(self, name: str) -> float:
        return sum(v for k, v in self.counters.items() if k == name or k.startswith(name + "{"))
