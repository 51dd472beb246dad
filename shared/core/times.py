"""RFC 3339 times as Square sends them (any fraction precision, Z or an offset)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"^([^.]+?)(?:\.(\d+))?([+-]\d\d:?\d\d)?$")


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with any fraction precision (Square sends up to nanoseconds); naive times count as UTC."""
    if not text:
        return None
    match = _FRACTION.match(text.strip().replace("Z", "+00:00"))
    if match is None:
        return None
    head, digits, zone = match.group(1), match.group(2), match.group(3) or ""
    cleaned = f"{head}.{digits[:6].ljust(6, '0')}{zone}" if digits else f"{head}{zone}"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
