"""CRM → Square triggers: the change-tracking poll (timer) and the crm-events queue it fills."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("tillbridge.crm")


@bp.function_name("crm_changes")
@bp.timer_trigger(arg_name="timer", schedule="%CRM_CHANGES_SCHEDULE%", run_on_startup=False)
async def crm_changes(timer: func.TimerRequest) -> None:
    report = await composition.poll_crm_changes()
    log.info(
        "crm changes: mode=%s read=%d queued=%d caught_up=%d missing=%d past_due=%s",
        report.mode,
        report.read,
        report.queued,
        report.caught_up,
        report.missing,
        timer.past_due,
    )


@bp.function_name("process_crm_event")
@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%CRM_EVENTS_QUEUE%", connection="SERVICEBUS_CONNECTION", is_sessions_enabled=False
)
async def process_crm_event(msg: func.ServiceBusMessage) -> None:
    properties = {str(k): str(v) for k, v in (msg.application_properties or {}).items()}
    await composition.crm_worker().handle(msg.get_body(), delivery_count=msg.delivery_count or 1, properties=properties)


@bp.function_name("record_crm_dead_letter")
@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%CRM_EVENTS_QUEUE%/$deadletterqueue", connection="SERVICEBUS_CONNECTION"
)
async def record_crm_dead_letter(msg: func.ServiceBusMessage) -> None:
    await composition.crm_worker().dead_letter(msg.get_body(), msg.dead_letter_reason or "MaxDeliveryCountExceeded")
