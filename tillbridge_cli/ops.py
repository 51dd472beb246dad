"""`tillbridge status | failures … | replay | flows …`: the admin API for people in a terminal.

Listings print tables that never cut a value: a table too wide for the terminal becomes one block per
row, and `--json` prints the admin API's documents for scripts. Option values are checked before any
call (`--status all` is refused with the accepted values, never answered with an empty list).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from shared.core.times import parse_time
from shared.pipeline.registry import FLOWS, OPERATED_FLOWS

STATUSES = ("open", "retrying", "resolved", "ignored", "any")  # "any": every status (the admin API's filter)


def console() -> Console:
    """A console sized for the terminal as it is now (COLUMNS or the real width), writing to stdout."""
    return Console(highlight=False)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def print_rows(headers: Sequence[str], rows: list[list[str]], *, title: str | None = None, lead: int = 2) -> None:
    """A table when it fits the terminal; otherwise one block per row (its first `lead` values on one line,
    the rest as `name: value` below), each line as long as it needs (the terminal wraps it): nothing is
    ever cut or ellipsised."""
    out = console()
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    if sum(widths) + 3 * len(widths) + 1 <= out.width:
        table = Table(*(Column(h, no_wrap=True) for h in headers), title=title)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        out.print(table)
        return
    if title:
        out.print(Text(title, style="bold"))
    for row in rows:
        out.print(Text("  ".join(row[:lead])), soft_wrap=True)
        rest = "  ".join(f"{name}: {value}" for name, value in zip(headers[lead:], row[lead:], strict=True) if value)
        out.print(Text("    " + rest), soft_wrap=True)


def _time_option(value: str) -> str:
    """An RFC 3339 time (e.g. 2026-11-22T08:00:00Z), checked before anything is sent."""
    if parse_time(value) is None:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r} (e.g. 2026-11-22T08:00:00Z)")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return int(value)


class AdminApiError(Exception):
    """The admin API refused; the message is its error."""


class AdminClient:
    def __init__(self, base_url: str, key: str, http: httpx.Client | None = None) -> None:
        if not base_url or not key:
            raise AdminApiError("set TILLBRIDGE_URL (e.g. https://<app>.azurewebsites.net) and TILLBRIDGE_FUNCTION_KEY")
        self.http = http or httpx.Client(timeout=60)
        self.base = base_url.rstrip("/") + "/api/ops/"
        self.headers = {"x-functions-key": key}

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        response = self.http.request(method, self.base + path, params=params, json=body, headers=self.headers)
        if response.status_code == 401:
            raise AdminApiError("the function key was rejected (401)")
        document = response.json() if response.content else {}
        if response.status_code >= 400:
            raise AdminApiError(
                f"{response.status_code} {document.get('error', {}).get('message', response.text[:200])}"
            )
        return document

    def failures(self, filters: dict[str, str], limit: int) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v}
        params["page_size"] = str(min(limit, 200))
        count = 0
        while True:
            page = self.call("GET", "failures", params=params)
            for item in page["items"]:
                if count >= limit:
                    return
                count += 1
                yield item
            if "continuation" not in page:
                return
            params["continuation"] = page["continuation"]


def client() -> AdminClient:
    return AdminClient(os.environ.get("TILLBRIDGE_URL", ""), os.environ.get("TILLBRIDGE_FUNCTION_KEY", ""))


def _filters(args: argparse.Namespace) -> dict[str, str]:
    return {
        "flow": args.flow or "",
        "reason": args.reason or "",
        "status": args.status or "",
        "from": args.since or "",
        "to": args.until or "",
    }


def status(args: argparse.Namespace) -> int:
    health = client().call("GET", "health")
    if args.json:
        print_json(health)
        return 0
    queue = health.get("queue", {})
    console().print(
        f"[bold]{health['status']}[/bold]  queue {queue.get('active')}  dead letters {queue.get('dead_letter')}  "
        f"dead-lettered failures {health['dead_lettered_failures']}  "
        f"last reconcile {health.get('last_reconcile') or 'never'}",
        soft_wrap=True,
    )
    rows = [
        [
            flow["flow"],
            "paused" if flow["paused"] else "running",
            flow["last_written_at"] or "never",
            str(flow["lag_seconds"]),
            str(flow["open_failures"]),
        ]
        for flow in health["flows"]
    ]
    print_rows(("flow", "state", "last write", "lag (s)", "open failures"), rows)
    return 0


def failures_list(args: argparse.Namespace) -> int:
    found = list(client().failures(_filters(args), args.limit))
    if args.json:
        print_json(found)
        return 0
    headers = ("flow", "record", "reason", "field", "attempts", "last seen", "status")
    rows = [
        [
            f["flow"],
            f["record_id"],
            f["reason_code"],
            f["field"] or "",
            str(f["attempts"]),
            f["last_seen"],
            f["status"],
        ]
        for f in found
    ]
    print_rows(headers, rows, title="Failures")
    console().print(f"{len(rows)} shown")
    return 0


def failures_show(args: argparse.Namespace) -> int:
    record = client().call("GET", f"records/{args.flow}/{args.record_id}")
    if args.json:
        print_json(record)
        return 0
    failure = record.get("failure") or {}
    out = console()
    out.print(Text(f"{args.flow}/{args.record_id}", style="bold"), soft_wrap=True)
    out.print(Text(f"{failure.get('status', 'no failure')}  {failure.get('reason_code', '')}"))
    if failure.get("message"):
        out.print(Text(failure["message"]))
    rows = [
        [str(attempt["attempt"]), attempt["event_type"], step["stage"], step["at"], json.dumps(step["detail"])]
        for attempt in record["attempts"]
        for step in attempt["steps"]
    ]
    print_rows(("attempt", "event", "stage", "at", "detail"), rows, title="Timeline", lead=3)
    return 0


def failures_retry(args: argparse.Namespace) -> int:
    api = client()
    if not args.all:
        if not (args.flow and args.record_id):
            raise AdminApiError("give FLOW RECORD_ID, or --all with filters")
        result = api.call("POST", f"failures/{args.flow}/{args.record_id}/retry")
        console().print(f"retry queued as {result['retry_event_id']}", soft_wrap=True)
        return 0
    targets = list(api.failures(_filters(args), args.limit))
    columns = (TextColumn("retrying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    out = console()
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("retry", total=len(targets))
        for failure in targets:
            api.call("POST", f"failures/{failure['flow']}/{failure['record_id']}/retry")
            progress.advance(task)
    out.print(f"{len(targets)} failure(s) re-enqueued with a fresh fetch from Square")
    return 0


def failures_resolve(args: argparse.Namespace) -> int:
    status_ = "ignored" if args.ignore else "resolved"
    client().call("POST", f"failures/{args.flow}/{args.record_id}/resolve", body={"status": status_, "note": args.note})
    console().print(Text(f"{args.flow}/{args.record_id} marked {status_}"), soft_wrap=True)
    return 0


def replay(args: argparse.Namespace) -> int:
    result = client().call("POST", "replay", body={"from": args.since, "to": args.until, "flow": args.flow or None})
    console().print(f"{result['replayed']} event(s) re-delivered")
    return 0


def flows_set(args: argparse.Namespace) -> int:
    result = client().call("POST", f"flows/{args.flow}/{args.action}", body={"note": args.note})
    console().print(f"{result['flow']} {'paused' if result['paused'] else 'running'}")
    return 0


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the admin API's JSON document (for scripts)")


def add_commands(groups: Any) -> None:
    health = groups.add_parser("status", help="health: queue, dead letters, flows, lag")
    _json_option(health)
    health.set_defaults(run=status)

    failures = groups.add_parser("failures", help="failed records").add_subparsers(dest="command", required=True)
    listing = failures.add_parser("list", help="list failures")
    retry = failures.add_parser("retry", help="retry one failure, or --all matching the filters")
    for parser in (listing, retry):
        parser.add_argument("--flow", default="", choices=OPERATED_FLOWS, help=f"one of {', '.join(OPERATED_FLOWS)}")
        parser.add_argument("--reason", default="", help="a reason code, e.g. invalid_data, needs_review")
        parser.add_argument("--status", default="open", choices=STATUSES, help=f"{', '.join(STATUSES)} (default open)")
        parser.add_argument("--from", dest="since", type=_time_option, metavar="TIME", help="RFC 3339 time")
        parser.add_argument("--to", dest="until", type=_time_option, metavar="TIME", help="RFC 3339 time")
        parser.add_argument("--limit", type=_positive, default=200)
    _json_option(listing)
    listing.set_defaults(run=failures_list)
    retry.add_argument("target", nargs="*", help="FLOW RECORD_ID")
    retry.add_argument("--all", action="store_true")
    retry.set_defaults(run=_retry_args)
    show = failures.add_parser("show", help="one record's failure and timeline")
    show.add_argument("flow", choices=OPERATED_FLOWS)
    show.add_argument("record_id")
    _json_option(show)
    show.set_defaults(run=failures_show)
    resolve = failures.add_parser("resolve", help="mark resolved (or --ignore) with a note")
    resolve.add_argument("flow", choices=OPERATED_FLOWS)
    resolve.add_argument("record_id")
    resolve.add_argument("--note", default="")
    resolve.add_argument("--ignore", action="store_true")
    resolve.set_defaults(run=failures_resolve)

    again = groups.add_parser("replay", help="re-deliver the events received in a time range")
    again.add_argument("--from", dest="since", required=True, type=_time_option, metavar="TIME")
    again.add_argument("--to", dest="until", required=True, type=_time_option, metavar="TIME")
    again.add_argument("--flow", default="", choices=tuple(FLOWS))
    again.set_defaults(run=replay)

    flows = groups.add_parser("flows", help="pause or resume a flow").add_subparsers(dest="command", required=True)
    for action in ("pause", "resume"):
        command = flows.add_parser(action)
        command.add_argument("flow", choices=tuple(FLOWS))
        command.add_argument("--note", default="")
        command.set_defaults(run=flows_set, action=action)


def _retry_args(args: argparse.Namespace) -> int:
    if args.target:
        if len(args.target) != 2:
            raise AdminApiError("give FLOW RECORD_ID")
        args.flow, args.record_id = args.target
        if args.flow not in OPERATED_FLOWS:
            raise AdminApiError(f"no flow named {args.flow!r} (known: {', '.join(OPERATED_FLOWS)})")
    else:
        args.record_id = ""
    return failures_retry(args)
