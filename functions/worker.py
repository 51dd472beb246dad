"""Service Bus triggers: process each queued Square event; record what the broker dead-letters."""

from __future__ import annotations

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("process_event")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%SQUARE_EVENTS_QUEUE%",
    connection="SERVICEBUS_CONNECTION",
    is_sessions_enabled=True,
)
async def process_event(msg: func.ServiceBusMessage) -> None:
    properties = {str(k): str(v) for k, v in (msg.application_properties or {}).items()}
    await composition.worker().handle(msg.get_body(), delivery_count=msg.delivery_count or 1, properties=properties)


@bp.function_name("record_dead_letter")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%SQUARE_EVENTS_QUEUE%/$deadletterqueue",
    connection="SERVICEBUS_CONNECTION",
)
async def record_dead_letter(msg: func.ServiceBusMessage) -> None:
    reason = msg.dead_letter_reason or "MaxDeliveryCountExceeded"
    await composition.worker().dead_letter(msg.get_body(), reason)
