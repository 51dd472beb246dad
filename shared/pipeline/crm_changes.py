"""Read contact edits from Dataverse change tracking and queue them for the crm-contacts flow (timer
CRM_CHANGES_SCHEDULE).

The delta link is the cursor (Table Storage) and advances only after every change it covers is queued.
Dataverse hands out a delta token only on the LAST page of a full load, standing for that moment, so a row
edited while earlier pages were being read is in neither that load nor the next delta (powerapps-docs issue
3862). A full load therefore ends with a catch-up query for rows modified since the load began (minus a lag),
and those are queued too; the flow is idempotent, so the overlap costs nothing. (docs/decisions/0012e)

- no cursor yet: a full load that only takes the token (two-way sync starts from now) + catch-up;
- an expired token (ExpiredVersionStamp): a full resynchronisation pass — every linked contact queued (the flow
  sends only what differs), catch-up, and with CRM_DELETES=delete the linked contacts no longer in the CRM —
  reported in the status and a metric, never a silent gap;
- a full load interrupted between pages resumes from the page it reached (the pass cursor).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.errors import ChangeTokenExpiredError, TransientError
from shared.core.json_input import stored_object
from shared.core.models import SyncCommand
from shared.core.ports import DataverseApi, Metrics, Queue, StateStore
from shared.flows.ownership import CrmDeletes, Owner, TwoWayOptions, is_two_way
from shared.pipeline.messages import contact_command, outbound

log = logging.getLogger("tillbridge.crm_changes")
ENTITY_SET = "contacts"
DELTA_CURSOR = "crm:contacts:delta"
PASS_CURSOR = "crm:contacts:pass"
STATUS_CURSOR = "crm:contacts:status"
SEND_CONCURRENCY = 32


@dataclass(frozen=True)
class PollSettings:
    select: list[str]  # the contact columns read (mapped columns, key, row state)
    key_column: str
    page_size: int = 5000
    catch_up_lag: timedelta = timedelta(minutes=5)


@dataclass
class PollReport:
    mode: str  # delta | initial | resync | off
    started_at: str
    read: int = 0  # changed rows and deletions read
    queued: int = 0
    caught_up: int = 0  # rows the catch-up query found after a full load
    missing: int = 0  # resync: linked contacts no longer in the CRM
    reason: str = ""
    delta_link_at: str = ""
    seen: set[str] = field(default_factory=set, repr=False)

    def document(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "seen"}


@dataclass
class Poller:
    dataverse: DataverseApi
    state: StateStore
    queue: Queue
    metrics: Metrics
    options: TwoWayOptions
    owners: Mapping[str, Owner]
    settings: PollSettings
    enabled: bool = True  # the configuration file's `flows` switch for crm-contacts

    async def poll(self, now: datetime) -> PollReport:
        if not self.enabled:
            return await self._finish(PollReport("off", now.isoformat(), reason="crm-contacts is off in `flows`"))
        if not self.options.polls(self.owners):
            return await self._finish(PollReport("off", now.isoformat(), reason="every contact column is Square's"))
        pending = stored_object(await self.state.get_cursor(PASS_CURSOR))
        delta = await self.state.get_cursor(DELTA_CURSOR) or None
        if pending:
            return await self._full(now, str(pending["mode"]), pending)
        if delta is None:
            return await self._full(now, "initial", None)
        try:
            return await self._delta(now, delta)
        except ChangeTokenExpiredError as error:
            log.warning("the contact delta token expired (%s): full resynchronisation", error)
            self.metrics.increment("crm_full_passes", reason="token_expired")
            return await self._full(now, "resync", None, reason=str(error)[:300])

    async def _delta(self, now: datetime, link: str) -> PollReport:
        report = PollReport("delta", now.isoformat())
        next_link: str | None = link
        while next_link:
            page = await self.dataverse.read_changes(
                ENTITY_SET, self.settings.select, next_link, self.settings.page_size
            )
            report.read += len(page.rows) + len(page.deleted_ids)
            await self._send(self._commands(page.rows, now), report)
            await self._send(self._deletions(page.deleted_ids, now), report)
            if page.next_link:
                next_link = page.next_link
                continue
            if not page.delta_link:
                raise TransientError("Dataverse answered the last change page without a delta link")
            await self.state.set_cursor(DELTA_CURSOR, page.delta_link)
            report.delta_link_at = now.isoformat()
            break
        return await self._finish(report)

    async def _full(self, now: datetime, mode: str, pending: dict[str, Any] | None, reason: str = "") -> PollReport:
        """A full load (initial or resync) from the start or from the page an interrupted one reached."""
        started = str(pending["started_at"]) if pending else now.isoformat()
        report = PollReport(mode, now.isoformat(), reason=reason or str((pending or {}).get("reason", "")))
        link: str | None = str(pending["link"]) if pending else None
        while True:
            page = await self.dataverse.read_changes(ENTITY_SET, self.settings.select, link, self.settings.page_size)
            report.seen.update(str(row.get("contactid", "")).lower() for row in page.rows)
            if mode == "resync":
                report.read += len(page.rows)
                await self._send(self._commands(page.rows, now), report)
            if page.next_link:
                link = page.next_link
                progress = {"mode": mode, "link": link, "started_at": started, "reason": report.reason}
                await self.state.set_cursor(PASS_CURSOR, json.dumps(progress))
                continue
            if not page.delta_link:
                raise TransientError("change tracking is not enabled on contact (no delta link); enable it")
            break
        await self._catch_up(started, now, report)
        if mode == "resync" and pending is None and self.options.crm_deletes is CrmDeletes.DELETE:
            await self._missing(report, now)
        await self.state.set_cursor(DELTA_CURSOR, page.delta_link)
        await self.state.set_cursor(PASS_CURSOR, "")
        report.delta_link_at = now.isoformat()
        log.warning(
            "contacts: %s full pass done (%d rows seen, %d queued, %d caught up, %d missing)",
            mode,
            len(report.seen),
            report.queued,
            report.caught_up,
            report.missing,
        )
        return await self._finish(report, full_pass=True)

    async def _catch_up(self, started: str, now: datetime, report: PollReport) -> None:
        """Rows modified since the full load began: the token stands for the load's end, so these may be in
        neither the load nor the next delta."""
        since = (
            (datetime.fromisoformat(started) - self.settings.catch_up_lag)
            .astimezone(UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        link: str | None = None
        while True:
            rows, link = await self.dataverse.query_page(
                ENTITY_SET, f"modifiedon ge {since}", self.settings.select, link, self.settings.page_size
            )
            report.caught_up += len(rows)
            await self._send(self._commands(rows, now), report)
            if not link:
                return

    async def _missing(self, report: PollReport, now: datetime) -> None:
        """Linked contacts the full load did not see were deleted while the token was lost: queue their
        deletes (the flow applies CRM_DELETES)."""
        after: str | None = None
        gone: list[str] = []
        while True:
            rows, after = await self.state.ledger_page("customer", after, 1000)
            gone += [
                r.dataverse_id
                for r in rows
                if r.status == "active" and r.dataverse_id and r.dataverse_id.lower() not in report.seen
            ]
            if after is None:
                break
        report.missing = len(gone)
        await self._send(self._deletions(gone, now), report)

    def _wanted(self, row: dict[str, Any]) -> bool:
        if row.get(self.settings.key_column):
            deactivated = row.get("statecode") == 1 and self.options.crm_deletes is CrmDeletes.DELETE
            return is_two_way(self.owners) or deactivated
        return self.options.create_in_square and row.get("statecode", 0) == 0

    def _commands(self, rows: Iterable[dict[str, Any]], now: datetime) -> list[SyncCommand]:
        commands = []
        for row in rows:
            contact_id = str(row.get("contactid") or "")
            if contact_id and self._wanted(row):
                clean = {k: v for k, v in row.items() if not k.startswith("@")}
                suffix = str(row.get("versionnumber", ""))
                commands.append(
                    contact_command("contact.changed", contact_id, now.isoformat(), suffix=suffix, row=clean)
                )
        return commands

    def _deletions(self, contact_ids: Iterable[str], now: datetime) -> list[SyncCommand]:
        if self.options.crm_deletes is not CrmDeletes.DELETE:
            return []
        return [contact_command("contact.deleted", contact_id, now.isoformat()) for contact_id in contact_ids]

    async def _send(self, commands: list[SyncCommand], report: PollReport) -> None:
        for start in range(0, len(commands), SEND_CONCURRENCY):
            chunk = commands[start : start + SEND_CONCURRENCY]
            await asyncio.gather(*(self.queue.send(outbound(command)) for command in chunk))
            report.queued += len(chunk)

    async def _finish(self, report: PollReport, full_pass: bool = False) -> PollReport:
        previous = stored_object(await self.state.get_cursor(STATUS_CURSOR)) or {}
        document = report.document()
        document["delta_link_at"] = report.delta_link_at or previous.get("delta_link_at", "")
        document["last_full_pass_at"] = report.started_at if full_pass else previous.get("last_full_pass_at", "")
        document["last_full_pass_mode"] = report.mode if full_pass else previous.get("last_full_pass_mode", "")
        await self.state.set_cursor(STATUS_CURSOR, json.dumps(document))
        self.metrics.increment("crm_changes_read", float(report.read), mode=report.mode)
        self.metrics.increment("crm_changes_queued", float(report.queued), mode=report.mode)
        return report


async def poll_status(state: StateStore) -> dict[str, Any]:
    """The last poll's report (the health page shows it with the delta link's age)."""
    return stored_object(await state.get_cursor(STATUS_CURSOR)) or {}
