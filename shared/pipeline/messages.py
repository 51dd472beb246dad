"""Queue messages: the one place a SyncCommand becomes an outbound message, and the commands Tillbridge
makes itself (reconcile repairs, operator retries) beside the ones Square's webhooks make."""

from __future__ import annotations

import uuid
from typing import Any

from shared.core.models import SyncCommand
from shared.core.ports import OutboundMessage
from shared.monitoring import otel
from shared.pipeline.registry import KINDS


def outbound(command: SyncCommand) -> OutboundMessage:
    properties = otel.inject({"event_type": command.event_type, "event_id": command.event_id})
    return OutboundMessage(
        message_id=command.message_id,
        session_id="",  # no sessions: order comes from the version gate (decision 0011f)
        body=command.model_dump_json(),
        properties=properties,
    )


def synthetic_command(
    *,
    event_id: str,
    event_type: str,
    kind: str,
    entity_id: str,
    received_at: str,
    data_object: dict[str, Any] | None = None,
    source_version: int | None = None,
) -> SyncCommand:
    """A command Tillbridge makes itself, shaped like a webhook event (no object: the worker fetches it)."""
    data: dict[str, Any] = {"type": kind, "id": entity_id}
    if data_object is not None:
        data["object"] = data_object
    return SyncCommand(
        message_id=event_id,
        event_id=event_id,
        event_type=event_type,
        entity_kind=kind,
        entity_id=entity_id,
        received_at=received_at,
        fetch=data_object is None,
        source_version=source_version,
        event={"type": event_type, "event_id": event_id, "data": data},
    )


def fresh_fetch_command(
    kind: str, entity_id: str, received_at: str, *, purpose: str = "retry", repair: bool = False
) -> SyncCommand:
    """Sync one object again from Square's current copy (operator retries, reconcile repairs); `repair`:
    write it even when the ledger holds that version (a write that may have landed after a newer one)."""
    event_id = f"{purpose}-{entity_id}-{uuid.uuid4().hex[:12]}"
    command = synthetic_command(
        event_id=event_id,
        event_type=KINDS[kind].retry_event_type,
        kind=kind,
        entity_id=entity_id,
        received_at=received_at,
    )
    return command.model_copy(update={"repair": repair})


def version_label(command: SyncCommand) -> str:
    """The Square version of the object a command carries (its `version`, else `updated_at`); "" when the
    event is thin (the failure rules in shared/core/failures.py compare these)."""
    if command.source_version is not None:
        return str(command.source_version)
    data_object = (command.event.get("data") or {}).get("object") or {}
    for embedded in data_object.values() if isinstance(data_object, dict) else ():
        if isinstance(embedded, dict) and embedded.get("id") == command.entity_id:
            return str(
                embedded.get("version") if embedded.get("version") is not None else embedded.get("updated_at") or ""
            )
    return ""


CONTACT_KIND = "contact"


def contact_command(
    event_type: str,
    contact_id: str,
    received_at: str,
    *,
    suffix: str = "",
    row: dict[str, Any] | None = None,
    forced: dict[str, str] | None = None,
) -> SyncCommand:
    """A CRM contact change for the crm-contacts flow (flows/crm_contacts.py): `contact.changed` carrying the
    row change tracking returned, `contact.deleted`, or `contact.push` (a Square-side decision sending the
    CRM's values back; `forced`: `both` columns the CRM won, with the fingerprint of the CRM value that won).
    Without a row the flow reads the contact as it is now."""
    action = event_type.rpartition(".")[2]
    event_id = f"crm-{action}-{contact_id}" + (f"-{suffix}" if suffix else "")
    data_object: dict[str, Any] = {}
    if row is not None:
        data_object["contact"] = row
    if forced:
        data_object["forced"] = forced
    version = row.get("versionnumber") if row is not None else None
    return SyncCommand(
        message_id=event_id,
        event_id=event_id,
        event_type=event_type,
        entity_kind=CONTACT_KIND,
        entity_id=contact_id,
        received_at=received_at,
        fetch=row is None and event_type != "contact.deleted",
        source_version=int(version) if isinstance(version, int | str) and str(version).isdigit() else None,
        event={
            "type": event_type,
            "event_id": event_id,
            "data": {"type": CONTACT_KIND, "id": contact_id, "object": data_object},
        },
    )
