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
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from shared.bulk.backfill import WHAT
from shared.bulk.counts import Counts
from shared.core.times import parse_time

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
    """One column per kind that had anything to read, one row per count (fits a narrow terminal)."""
    kinds = [kind for kind, counts in totals.items() if counts.examined] or list(totals)
    title = ("dry run: nothing written" if dry_run else "backfill") + f" in {seconds:.1f} s"
    table = Table("", *(Column(kind, justify="right") for kind in kinds), title=title)
    for row in ("examined", *COLUMNS, "requests"):
        label = DRY_LABELS.get(row, row) if dry_run else row
        label = "Dataverse requests" if row == "requests" else label
        table.add_row(label, *(str(totals[kind].as_dict()[row]) for kind in kinds))
    table.add_row("records/s", *(f"{totals[kind].examined / seconds:.0f}" if seconds > 0 else "-" for kind in kinds))
    return table


class Bars:
    """One bar per kind. Streams run oldest first, so how far a stream has come is the share of the time
    from its first object to the run's start that its newest object covers: that gives the ETA."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.started = time.monotonic()
        self.run_start = datetime.now(UTC)
        self.tasks: dict[str, TaskID] = {}
        self.first: dict[str, datetime] = {}
        self.records: dict[str, int] = {}

    def __call__(self, kind: str, counts: Counts, position: str | None) -> None:
        if kind not in self.tasks:
            self.tasks[kind] = self.bar.add_task(kind, total=1000, records=0, rate="-")
        self.records[kind] = self.records.get(kind, 0) + counts.examined
        done = 1000.0
        reached = parse_time(position)
        if reached is not None:
            first = self.first.setdefault(kind, reached)
            span = (self.run_start - first).total_seconds()
            done = 1000.0 * min(1.0, (reached - first).total_seconds() / span) if span > 0 else 1000.0
        rate = self.records[kind] / max(1e-6, time.monotonic() - self.started)
        self.bar.update(self.tasks[kind], completed=done, records=self.records[kind], rate=f"{rate:.0f}")

    def finish(self) -> None:
        for task in self.tasks.values():
            self.bar.update(task, completed=1000)


async def run_backfill(what: str, since: str | None, dry_run: bool, console: Console) -> dict[str, Counts]:
    from shared import composition
    from tillbridge_cli.main import environment

    backend = composition.Backend(environment(), None)
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.fields[records]:>9} records {task.fields[rate]:>7}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        bars = Bars(bar)
        totals = await backend.backfill(dry_run=dry_run, progress=bars).run(what, since)
        bars.finish()
        return totals


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
