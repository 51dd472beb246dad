"""`tillbridge backfill`: --since as Square's filters take it, the summary's labels, the command line."""

from __future__ import annotations

import pytest
from rich.console import Console

from shared.bulk.counts import Counts
from tillbridge_cli.backfill import since_timestamp, summary
from tillbridge_cli.main import parser


def test_since_takes_a_day_or_a_time_and_refuses_anything_else() -> None:
    assert since_timestamp("2025-01-31") == "2025-01-31T00:00:00Z"
    assert since_timestamp("2025-01-31T08:30:00+02:00") == "2025-01-31T06:30:00Z"
    assert since_timestamp(None) is None
    with pytest.raises(SystemExit, match="not a date"):
        since_timestamp("last tuesday")


def test_a_dry_run_summary_says_what_would_happen() -> None:
    counts = Counts(examined=10, created=6, updated=2, unchanged=1, invalid=1, requests=2)
    console = Console(width=120, record=True)
    console.print(summary({"customers": counts, "orders": Counts()}, 2.0, dry_run=True))
    text = console.export_text()
    assert "would create" in text and "would update" in text and "orders" not in text
    (created,) = [line for line in text.splitlines() if "would create" in line]
    assert created.split("│")[2].strip() == "6"


def test_the_command_line_takes_what_since_and_dry_run() -> None:
    args = parser().parse_args(["backfill", "sales", "--since", "2025-06-01", "--dry-run"])
    assert (args.what, args.since, args.dry_run) == ("sales", "2025-06-01", True)
    with pytest.raises(SystemExit):
        parser().parse_args(["backfill", "everything"])
