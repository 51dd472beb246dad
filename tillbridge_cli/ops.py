"""`tillbridge status | failures … | replay | flows …`: the admin API for people in a terminal."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

out = Console(highlight=False)


def record_path(flow: str, record_id: str) -> str:
    """`flow/record_id` with each percent-encoded as one segment (an id may hold "/", "?", "%" …)."""
    return f"{quote(flow, safe='')}/{quote(record_id, safe='')}"


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
    queue = health.get("queue", {})
    out.print(
        f"[bold]{health['status']}[/bold]  queue {queue.get('active')}  dead letters {queue.get('dead_letter')}  "
        f"dead-lettered failures {health['dead_lettered_failures']}  "
        f"last reconcile {health.get('last_reconcile') or 'never'}"
    )
    table = Table("flow", "state", "last write", "lag (s)", "open failures")
    for flow in health["flows"]:
        table.add_row(
            flow["flow"],
            "paused" if flow["paused"] else "running",
            flow["last_written_at"] or "never",
            str(flow["lag_seconds"]),
            str(flow["open_failures"]),
        )
    out.print(table)
    return 0


def failures_list(args: argparse.Namespace) -> int:
    table = Table("flow", "record", "reason", "field", "attempts", "last seen", "status", title="Failures")
    rows = 0
    for failure in client().failures(_filters(args), args.limit):
        table.add_row(
            failure["flow"],
            failure["record_id"],
            failure["reason_code"],
            failure["field"] or "",
            str(failure["attempts"]),
            failure["last_seen"],
            failure["status"],
        )
        rows += 1
    out.print(table)
    out.print(f"{rows} shown")
    return 0


def failures_show(args: argparse.Namespace) -> int:
    record = client().call("GET", f"records/{record_path(args.flow, args.record_id)}")
    failure = record.get("failure") or {}
    out.print(
        f"[bold]{args.flow}/{args.record_id}[/bold]  "
        f"{failure.get('status', 'no failure')}  {failure.get('reason_code', '')}"
    )
    if failure.get("message"):
        out.print(failure["message"])
    table = Table("attempt", "event", "stage", "at", "detail", title="Timeline")
    for attempt in record["attempts"]:
        for step in attempt["steps"]:
            table.add_row(
                str(attempt["attempt"]), attempt["event_type"], step["stage"], step["at"], str(step["detail"])[:80]
            )
    out.print(table)
    return 0


def failures_retry(args: argparse.Namespace) -> int:
    api = client()
    if not args.all:
        if not (args.flow and args.record_id):
            raise AdminApiError("give FLOW RECORD_ID, or --all with filters")
        result = api.call("POST", f"failures/{record_path(args.flow, args.record_id)}/retry")
        out.print(f"retry queued as {result['retry_event_id']}")
        return 0
    targets = list(api.failures(_filters(args), args.limit))
    columns = (TextColumn("retrying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("retry", total=len(targets))
        for failure in targets:
            api.call("POST", f"failures/{record_path(failure['flow'], failure['record_id'])}/retry")
            progress.advance(task)
    out.print(f"{len(targets)} failure(s) re-enqueued with a fresh fetch from Square")
    return 0


def failures_resolve(args: argparse.Namespace) -> int:
    status_ = "ignored" if args.ignore else "resolved"
    path = f"failures/{record_path(args.flow, args.record_id)}/resolve"
    client().call("POST", path, body={"status": status_, "note": args.note})
    out.print(f"{args.flow}/{args.record_id} marked {status_}")
    return 0


def replay(args: argparse.Namespace) -> int:
    result = client().call("POST", "replay", body={"from": args.since, "to": args.until, "flow": args.flow or None})
    out.print(f"{result['replayed']} event(s) re-delivered")
    return 0


def flows_set(args: argparse.Namespace) -> int:
    result = client().call("POST", f"flows/{quote(args.flow, safe='')}/{args.action}", body={"note": args.note})
    out.print(f"{result['flow']} {'paused' if result['paused'] else 'running'}")
    return 0


def add_commands(groups: Any) -> None:
    groups.add_parser("status", help="health: queue, dead letters, flows, lag").set_defaults(run=status)

    failures = groups.add_parser("failures", help="failed records").add_subparsers(dest="command", required=True)
    listing = failures.add_parser("list", help="list failures")
    retry = failures.add_parser("retry", help="retry one failure, or --all matching the filters")
    for parser in (listing, retry):
        parser.add_argument("--flow", default="")
        parser.add_argument("--reason", default="")
        parser.add_argument("--status", default="open", help="open, retrying, resolved, ignored or any")
        parser.add_argument("--from", dest="since", default="")
        parser.add_argument("--to", dest="until", default="")
        parser.add_argument("--limit", type=int, default=200)
    listing.set_defaults(run=failures_list)
    retry.add_argument("target", nargs="*", help="FLOW RECORD_ID")
    retry.add_argument("--all", action="store_true")
    retry.set_defaults(run=_retry_args)
    show = failures.add_parser("show", help="one record's failure and timeline")
    show.add_argument("flow")
    show.add_argument("record_id")
    show.set_defaults(run=failures_show)
    resolve = failures.add_parser("resolve", help="mark resolved (or --ignore) with a note")
    resolve.add_argument("flow")
    resolve.add_argument("record_id")
    resolve.add_argument("--note", default="")
    resolve.add_argument("--ignore", action="store_true")
    resolve.set_defaults(run=failures_resolve)

    again = groups.add_parser("replay", help="re-deliver the events received in a time range")
    again.add_argument("--from", dest="since", required=True)
    again.add_argument("--to", dest="until", required=True)
    again.add_argument("--flow", default="")
    again.set_defaults(run=replay)

    flows = groups.add_parser("flows", help="pause or resume a flow").add_subparsers(dest="command", required=True)
    for action in ("pause", "resume"):
        command = flows.add_parser(action)
        command.add_argument("flow")
        command.add_argument("--note", default="")
        command.set_defaults(run=flows_set, action=action)


def _retry_args(args: argparse.Namespace) -> int:
    if args.target:
        if len(args.target) != 2:
            raise AdminApiError("give FLOW RECORD_ID")
        args.flow, args.record_id = args.target
    else:
        args.record_id = ""
    return failures_retry(args)
