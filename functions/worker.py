"""Service Bus triggers: process the queued Square events a batch at a time (one message at low load, many
under a backlog: the worker writes those in bulk); record what the broker dead-letters."""

from __future__ import annotations

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.function_name("process_event")
@bp.service_bus_queue_trigger(
    arg_name="msgs",
    queue_name="%SQUARE_EVENTS_QUEUE%",
    connection="SERVICEBUS_CONNECTION",
    cardinality=func.Cardinality.MANY,
)
async def process_event(msgs: list[func.ServiceBusMessage]) -> None:
    from shared.pipeline.batch import Inbound

    await composition.worker().handle_batch(
        [
            Inbound(
                msg.get_body(),
                msg.delivery_count or 1,
                {str(k): str(v) for k, v in (msg.application_properties or {}).items()},
            )
            for msg in msgs
        ]
    )


@bp.function_name("record_dead_letter")
@bp.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%SQUARE_EVENTS_QUEUE%/$deadletterqueue",
    connection="SERVICEBUS_CONNECTION",
)
async def record_dead_letter(msg: func.ServiceBusMessage) -> None:
    reason = msg.dead_letter_reason or "MaxDeliveryCountExceeded"
    await composition.worker().dead_letter(msg.get_body(), reason)
