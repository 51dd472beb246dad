"""Timer trigger: reconcile customers changed in Square since the last watermark."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("tillbridge.timers")


@bp.function_name("reconcile_customers")
@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_customers(timer: func.TimerRequest) -> None:
    report = await composition.reconcile()
    log.info("reconcile: examined=%d enqueued=%d past_due=%s", report.examined, report.enqueued, timer.past_due)
