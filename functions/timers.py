"""Timer triggers: reconcile customers changed in Square since the last watermark; keep segment lists in step."""

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


@bp.function_name("segments")
@bp.timer_trigger(arg_name="timer", schedule="%SEGMENTS_SCHEDULE%", run_on_startup=False)
async def segments(timer: func.TimerRequest) -> None:
    report = await composition.segments()
    log.info(
        "segments: evaluated=%d entered=%s left=%s rule_actions=%d requests=%d %s",
        report.evaluated,
        report.entered,
        report.left,
        report.rule_actions,
        report.requests,
        report.skipped,
    )
