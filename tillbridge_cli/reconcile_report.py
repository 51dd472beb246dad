"""`tillbridge reconcile`: the last reconcile run's report from the admin API (per kind: examined, missing
in the CRM, stale, repaired, failed) — "it said success while data was missing" answered in one table."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from tillbridge_cli.ops import client, console

MEASURES = ("examined", "missing", "stale", "repaired", "failed")


def report_table(report: dict[str, Any]) -> Table:
    table = Table("kind", *MEASURES, "error", title=f"reconcile at {report.get('started_at', '?')}")
    for kind in report.get("kinds", []):
        table.add_row(kind["kind"], *(str(kind.get(m, 0)) for m in MEASURES), kind.get("error") or "")
    return table


def reconcile_report(args: argparse.Namespace) -> int:
    report = client().call("GET", "reconcile").get("report")
    out = console()
    if not report:
        out.print("no reconcile has run yet")
        return 0
    out.print(report_table(report))
    troubled = sum(int(k.get("failed", 0)) for k in report.get("kinds", []))
    return 1 if troubled and args.strict else 0


def add_command(groups: Any) -> None:
    command = groups.add_parser("reconcile", help="the last reconcile run: what was missing or stale, per kind")
    command.add_argument("--strict", action="store_true", help="exit 1 when any kind failed")
    command.set_defaults(run=reconcile_report)
