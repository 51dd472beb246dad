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
    changed, swept = await composition.reconcile()
    log.info(
        "reconcile: examined=%d enqueued=%d swept=%d missing_in_square=%d past_due=%s",
        changed.examined,
        changed.enqueued,
        swept.checked,
        len(swept.deleted_ids) + len(swept.merged),
        timer.past_due,
    )
