"""Timer triggers: reconcile every kind changed in Square since its watermark (report kept for health); keep
segment lists in step."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger("tillbridge.timers")


@bp.function_name("reconcile_customers")
@bp.timer_trigger(arg_name="timer", schedule="%RECONCILE_SCHEDULE%", run_on_startup=False)
async def reconcile_customers(timer: func.TimerRequest) -> None:
    run = await composition.reconcile()
    for kind in run.kinds:
        log.info(
            "reconcile %s: examined=%d missing=%d stale=%d repaired=%d failed=%d%s past_due=%s",
            kind.kind,
            kind.examined,
            kind.missing,
            kind.stale,
            kind.repaired,
            kind.failed,
            f" error={kind.error}" if kind.error else "",
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
