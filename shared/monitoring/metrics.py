"""Clock and metrics edges: the system clock, and counters that go to the log (and stay countable)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime

from shared.monitoring import otel

log = logging.getLogger("tillbridge.metrics")


# Libraries that log request URLs at INFO: a Dataverse $filter URL can hold an email address or phone
# number, so they log at WARNING and above only. Our own logs carry event ids, never raw PII.
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "uamqp",
    "azure.servicebus",
)


def quiet_noisy_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


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
        otel.add(name, value, **dimensions)
        log.debug("metric %s %s +%g", name, label, value, extra={"metric": name, "dimensions": dimensions})

    def total(self, name: str) -> float:
        return sum(v for k, v in self.counters.items() if k == name or k.startswith(name + "{"))
