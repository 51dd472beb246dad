"""The change-tracking poller: one request when nothing changed, the cursor advanced only after queueing, the
token-on-the-last-page gap closed by the catch-up query, an expired token resynchronised in full (reported),
an interrupted full load resumed where it stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.core.errors import TransientError
from shared.core.models import SyncCommand
from shared.core.ports import ChangePage
from shared.pipeline.crm_changes import DELTA_CURSOR, PASS_CURSOR, STATUS_CURSOR, Poller, PollSettings
from tests.fakes import FakeQueue
from tests.two_way_kit import PERSON, SimDataverse, TwoWay

SELECT = ["firstname", "mobilephone", "tb_squarecustomerid", "contactid", "modifiedon", "versionnumber", "statecode"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class PagedDataverse(SimDataverse):
    """A full load served in pages by contact id; the delta token stands for the moment the last page is read
    (so a row edited after its page was read is in neither the load nor the next delta)."""

    between_pages: Callable[[int], None] | None = None
    fail_page: list[int] = field(default_factory=list)
    pages_served: list[str] = field(default_factory=list)

    async def read_changes(
        self, entity_set: str, select: Sequence[str], link: str | None = None, page_size: int = 5000
    ) -> ChangePage:
        if link is not None and link.startswith("v:"):
            return await super().read_changes(entity_set, select, link, page_size)
        self.calls.append("read_changes")
        start = int(link.split(":")[1]) if link else 0
        if start in self.fail_page:
            self.fail_page.remove(start)
            raise TransientError("Dataverse 503")
        if start and self.between_pages is not None:
            self.between_pages(start)
        self.pages_served.append(f"page:{start}")
        ids = sorted(self.rows)
        chunk = [{k: self.rows[i].get(k) for k in (*select, "contactid")} for i in ids[start : start + page_size]]
        if start + page_size < len(ids):
            return ChangePage(chunk, [], f"page:{start + page_size}", None)
        token = f"v:{self.version_counter}"
        self.issued.add(token)
        return ChangePage(chunk, [], None, token)


def poller_over(dataverse: SimDataverse, kit: TwoWay, queue: FakeQueue, page_size: int = 2) -> Poller:
    settings = PollSettings(SELECT, "tb_squarecustomerid", page_size=page_size)
    return Poller(
        dataverse,
        kit.state,
        queue,
        kit.metrics,
        kit.options,
        {"mobilephone": kit.poller.owners["mobilephone"]},
        settings,
    )


def queued_contacts(queue: FakeQueue) -> list[str]:
    return [SyncCommand.model_validate_json(m.body).entity_id for m in queue.sent]


def seeded(dataverse: SimDataverse, count: int) -> list[str]:
    return [dataverse.seed(tb_squarecustomerid=f"C{i}", firstname=f"P{i}") for i in range(count)]


def test_a_poll_when_nothing_changed_is_one_dataverse_request() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    run(kit.pump())
    kit.dataverse.calls.clear()
    report = run(kit.poller.poll(kit.clock.now()))
    assert kit.dataverse.calls == ["read_changes"]
    assert report.mode == "delta" and report.read == 0 and report.queued == 0


def test_the_delta_link_advances_only_after_the_changes_are_queued() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    (contact_id,) = seeded(kit.dataverse, 1)
    run(kit.poller.poll(kit.clock.now()))
    kit.crm_queue.sent.clear()
    cursor = kit.state.cursors[DELTA_CURSOR]
    kit.dataverse.person_edits(contact_id, mobilephone="+1 212 555 0101")
    kit.crm_queue.fail_with = TransientError("queue unavailable")
    with pytest.raises(TransientError):
        run(kit.poller.poll(kit.clock.now()))
    assert kit.state.cursors[DELTA_CURSOR] == cursor  # not past a change that was not queued
    kit.crm_queue.fail_with = None
    run(kit.poller.poll(kit.clock.now()))
    assert queued_contacts(kit.crm_queue) == [contact_id]
    assert kit.state.cursors[DELTA_CURSOR] != cursor


def test_a_row_edited_during_the_first_full_load_is_not_lost() -> None:
    """The token arrives on the last page and stands for that moment: an edit to a row whose page was
    already read is in neither the load nor the next delta (powerapps-docs issue 3862). The catch-up query
    after the load queues it."""
    kit = TwoWay({"mobilephone": "crm"})
    dataverse = PagedDataverse(clock=kit.clock)
    contacts = seeded(dataverse, 5)
    first_page_row = sorted(contacts)[0]
    dataverse.between_pages = lambda start: (
        dataverse.person_edits(first_page_row, mobilephone="+1 212 555 0133") if start == 2 else None
    )
    kit.clock.advance(3600)  # the seeded rows are older than the catch-up window
    queue = FakeQueue()
    report = run(poller_over(dataverse, kit, queue).poll(kit.clock.now()))
    assert report.mode == "initial" and report.caught_up == 1
    assert queued_contacts(queue) == [first_page_row]
    queue.sent.clear()
    run(poller_over(dataverse, kit, queue).poll(kit.clock.now()))
    assert queued_contacts(queue) == []  # the next delta indeed does not carry it


def test_an_expired_token_takes_one_full_pass_that_is_reported() -> None:
    kit = TwoWay({"mobilephone": "crm"}, crm_deletes="delete")
    for i in range(3):
        kit.square.add(f"C{i}", given_name=f"N{i}", email_address=f"c{i}@example.com")
    run(kit.pump())
    gone = kit.contact_of("C2")["contactid"]
    kit.dataverse.expire_tokens()
    kit.dataverse.rows.pop(gone)  # deleted while no token covered it: no tombstone will ever say so
    report = run(kit.poller.poll(kit.clock.now()))
    assert report.mode == "resync" and "0x80044352" in report.reason
    commands = [SyncCommand.model_validate_json(m.body) for m in kit.crm_queue.sent]
    assert {c.entity_id for c in commands if c.event_type == "contact.changed"} == {
        kit.contact_of("C0")["contactid"],
        kit.contact_of("C1")["contactid"],
    }
    assert [c.entity_id for c in commands if c.event_type == "contact.deleted"] == [gone]
    assert report.missing == 1
    status = json.loads(kit.state.cursors[STATUS_CURSOR])
    assert status["last_full_pass_mode"] == "resync" and status["delta_link_at"]
    assert kit.metrics.totals["crm_full_passes"] == 1
    run(kit.pump())
    assert "C2" not in kit.square.customers and set(kit.square.customers) == {"C0", "C1"}
    assert kit.square.update_calls == 0  # the other linked contacts matched Square: nothing sent


def test_an_interrupted_full_load_resumes_from_the_page_it_reached() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    dataverse = PagedDataverse(clock=kit.clock, fail_page=[4])
    seeded(dataverse, 5)
    queue = FakeQueue()
    with pytest.raises(TransientError):
        run(poller_over(dataverse, kit, queue).poll(kit.clock.now()))
    assert json.loads(kit.state.cursors[PASS_CURSOR])["link"] == "page:4"
    assert DELTA_CURSOR not in kit.state.cursors
    run(poller_over(dataverse, kit, queue).poll(kit.clock.now()))
    assert dataverse.pages_served == ["page:0", "page:2", "page:4"]  # resumed, not started over
    assert kit.state.cursors[DELTA_CURSOR].startswith("v:") and kit.state.cursors[PASS_CURSOR] == ""


def test_with_every_column_squares_the_poll_reads_nothing() -> None:
    kit = TwoWay({})
    report = run(kit.poller.poll(kit.clock.now()))
    assert report.mode == "off" and kit.dataverse.calls == []


def test_the_flow_switched_off_in_the_configuration_file_reads_nothing() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    kit.poller.enabled = False
    report = run(kit.poller.poll(kit.clock.now()))
    assert report.mode == "off" and "flows" in report.reason and kit.dataverse.calls == []


def test_only_rows_the_flow_acts_on_are_queued() -> None:
    kit = TwoWay({"mobilephone": "crm"})
    run(kit.poller.poll(kit.clock.now()))
    kit.dataverse.acting = PERSON
    kit.dataverse.seed(firstname="Unlinked")  # no Square customer, CRM_CREATE_IN_SQUARE off
    linked = kit.dataverse.seed(firstname="Linked", tb_squarecustomerid="C9")
    report = run(kit.poller.poll(kit.clock.now()))
    assert report.read == 2 and queued_contacts(kit.crm_queue) == [linked]
