"""`tillbridge backfill customers|locations|catalog|sales|all [--since DATE] [--dry-run]`: the app's own
backfill (shared/bulk) with the app's settings, a progress bar with rate and ETA, and a summary."""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, date, datetime

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from shared.bulk.backfill import WHAT
from shared.bulk.counts import Counts

COLUMNS = ("created", "updated", "unchanged", "review", "unmatched", "invalid", "failed", "deferred")
DRY_LABELS = {"created": "would create", "updated": "would update"}


def since_timestamp(text: str | None) -> str | None:
    """`--since 2025-01-31` (a day, midnight UTC) or a full RFC 3339 time, as Square's filters take it."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise SystemExit(f"tillbridge: --since {text!r} is not a date (YYYY-MM-DD) or time") from error
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary(totals: dict[str, Counts], seconds: float, dry_run: bool) -> Table:
    table = Table(title=("dry run: nothing written" if dry_run else "backfill") + f" in {seconds:.1f} s")
    table.add_column("kind")
    table.add_column("examined", justify="right")
    for column in COLUMNS:
        table.add_column(DRY_LABELS.get(column, column) if dry_run else column, justify="right")
    table.add_column("Dataverse requests", justify="right")
    table.add_column("records/s", justify="right")
    for kind, counts in totals.items():
        values = counts.as_dict()
        table.add_row(
            kind,
            str(counts.examined),
            *(str(values[c]) for c in COLUMNS),
            str(counts.requests),
            f"{counts.examined / seconds:.0f}" if seconds > 0 else "-",
        )
    return table


async def run_backfill(what: str, since: str | None, dry_run: bool, console: Console) -> dict[str, Counts]:
    from shared import composition
    from tillbridge_cli.main import environment

    backend = composition.Backend(environment(), None)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} records/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}
        started = time.monotonic()

        def progress(kind: str, counts: Counts) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(kind, total=None, rate="-")
            task = tasks[kind]
            bar.advance(task, counts.examined)
            done = bar.tasks[task].completed
            bar.update(task, rate=f"{done / max(1e-6, time.monotonic() - started):.0f}")

        backfill = backend.backfill(dry_run=dry_run, progress=progress)
        for kind, total in (await backfill.estimate(what, since)).items():
            tasks[kind] = bar.add_task(kind, total=total, rate="-")
        return await backfill.run(what, since)


def backfill_command(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    since = since_timestamp(args.since)
    started = time.monotonic()
    totals = asyncio.run(run_backfill(args.what, since, args.dry_run, console))
    console.print(summary(totals, time.monotonic() - started, args.dry_run))
    failed = sum(counts.failed + counts.invalid + counts.review for counts in totals.values())
    if failed:
        console.print(f"{failed} record(s) need attention: `tillbridge failures list`")
    return 0


def add_command(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = groups.add_parser("backfill", help="load Square history into the CRM in bulk (resumable)")
    command.add_argument("what", choices=WHAT)
    command.add_argument("--since", default=None, help="only history from this date (YYYY-MM-DD) or time on")
    command.add_argument("--dry-run", action="store_true", help="count what would be written; write nothing")
    command.set_defaults(run=backfill_command)
