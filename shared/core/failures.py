"""What happens when a record that already has a failure row fails again (pure; every store uses it).

The attempt count and first sighting carry over. A failure someone marked *ignored* stays ignored when
the same record fails again at the same or an older Square version — a replay, a reconcile pass or a
duplicate webhook re-delivers what was already judged. It reopens only when a newer version of the
object fails (new data, possibly a new problem). A failure with no comparable version (thin events,
which carry none) never reopens an ignored one. Resolved and retrying failures reopen on any failure.
"""

from __future__ import annotations

from dataclasses import replace

from shared.core.ports import FailureRecord
from shared.core.times import parse_time


def is_newer_version(incoming: str, existing: str) -> bool:
    """Square versions are integers; objects without one are compared by updated_at. Unknown: not newer."""
    if incoming.isdigit() and existing.isdigit():
        return int(incoming) > int(existing)
    incoming_time, existing_time = parse_time(incoming), parse_time(existing)
    return incoming_time is not None and existing_time is not None and incoming_time > existing_time


def merge_failure(existing: FailureRecord | None, incoming: FailureRecord) -> FailureRecord:
    if existing is None:
        return incoming
    merged = replace(
        incoming,
        attempts=existing.attempts + 1,
        first_seen=existing.first_seen or incoming.first_seen,
    )
    if existing.status == "ignored" and not is_newer_version(incoming.source_version, existing.source_version):
        merged.status = "ignored"
        merged.source_version = existing.source_version or incoming.source_version
    return merged
