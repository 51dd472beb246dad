"""The emulator's time: strictly increasing RFC 3339 stamps in one canonical form, and a control to move
time forward (so tests can see what Square does with old data: the Events API's 28-day window, ListPayments'
one-year default)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.core.times import parse_time

_CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def stamp(moment: datetime) -> str:
    """The canonical form every stored timestamp uses (millisecond precision, Z), so strings sort by time."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def parse(text: object) -> datetime | None:
    """An RFC 3339 value sent by a client, or None when absent or not a time."""
    return parse_time(text) if isinstance(text, str) else None


def canonical(text: object) -> str | None:
    """A client's RFC 3339 value in the canonical stored form (comparable as a string), or None."""
    if isinstance(text, str) and _CANONICAL.match(text):
        return text
    moment = parse(text)
    return stamp(moment) if moment is not None else None


class Clock:
    """Strictly increasing timestamps, so updated_at orders every change; `advance` moves time forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._last = datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def tick(self) -> str:
        moment = max(self.now(), self._last + timedelta(milliseconds=1))
        self._last = moment
        return stamp(moment)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
