"""Operations through the local host: the admin API's key, failures, timelines with snapshots, retry after
a fix, bulk retry, replay, pause/resume without loss, health."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.stack import Stack
from tests.stackkit import OpsClient, StackKit, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(stack: Stack) -> Iterator[OpsClient]:
    client = OpsClient(stack)
    yield client
    client.post("flows/customers/resume")
    client.close()


def _open_failure(ops: OpsClient, record_id: str) -> dict[str, object]:
    found = [f for f in ops.get("failures", status="any", page_size="500")["items"] if f["record_id"] == record_id]
    assert found, f"no failure for {record_id} yet"
    return found[0]


def test_admin_api_refuses_requests_without_a_valid_key(stack: Stack) -> None:
    base = f"{stack.urls['host']}/api/ops"
    assert httpx.get(f"{base}/health").status_code == 401
    assert httpx.get(f"{base}/failures", headers={"x-functions-key": "wrong"}).status_code == 401
    assert httpx.get(f"{base}/health", params={"code": stack.env["LOCAL_FUNCTION_KEY"]}).status_code == 200
    assert httpx.get(f"{stack.urls['host']}/api/console/").status_code == 200  # the page itself holds no data


def test_retry_after_fix_lands_and_resolves(kit: StackKit, ops: OpsClient) -> None:
    customer = kit.create(given_name="Retry", family_name="AfterFix", email_address="retry..after@@example")
    kit.flush()
    failure = wait_until(lambda: _open_failure(ops, customer["id"]))
    assert failure["reason_code"] == "invalid_data" and failure["field"] == "email_address"
    # fix it in Square *without* a webhook reaching us, so only the retry's fresh fetch can bring the fix
    kit.delivery(paused=True)
    kit.update(customer["id"], email_address="retry.after@example.com")
    result = ops.post(f"failures/customers/{customer['id']}/retry")
    assert result["retry_event_id"].startswith("retry-")
    wait_until(lambda: kit.assert_crm_matches_square({customer["id"]}))
    wait_until(lambda: _assert_status(ops, customer["id"], "resolved"))


def _assert_status(ops: OpsClient, record_id: str, status: str) -> None:
    assert _open_failure(ops, record_id)["status"] == status


def test_record_timeline_has_steps_snapshots_and_scrubbed_exchanges(kit: StackKit, ops: OpsClient) -> None:
    customer = kit.create(given_name="Timeline", email_address="timeline@example.com")
    kit.converge({customer["id"]})
    record = wait_until(lambda: _record_with_attempts(ops, customer["id"]))
    attempt = record["attempts"][0]
    stages = [step["stage"] for step in attempt["steps"]]
    assert stages[:2] == ["received", "fetched"] and "mapped" in stages and stages[-1] == "written"
    snapshot = attempt["snapshot"]
    assert snapshot["snapshots"]["square_object"]["id"] == customer["id"]
    assert snapshot["snapshots"]["mapped_payload"]["emailaddress1"] == "timeline@example.com"
    upsert = [x for x in snapshot["exchanges"] if x["method"] == "PATCH"]
    assert upsert and upsert[0]["status"] == 204 and upsert[0]["service"] == "dataverse"
    text = json.dumps(record)
    assert "Bearer" not in text and ops.key not in text
    assert record["ledger"]["dataverse_id"]


def _record_with_attempts(ops: OpsClient, record_id: str) -> dict[str, object]:
    record = ops.get(f"records/customers/{record_id}")
    assert record["attempts"] and record["attempts"][-1]["outcome"] == "written"
    return record


def test_bulk_retry_and_filters_and_paging(kit: StackKit, ops: OpsClient) -> None:
    bad = kit.create_many([{"given_name": "B" * 51, "family_name": f"Bulk{i}"} for i in range(3)])
    ids = {c["id"] for c in bad}
    kit.flush()
    wait_until(lambda: _assert_open(ops, ids))
    page = ops.get("failures", reason="invalid_data", page_size="1")
    assert len(page["items"]) == 1 and page["total"] >= 3 and "continuation" in page
    second = ops.get("failures", reason="invalid_data", page_size="1", continuation=page["continuation"])
    assert second["items"][0]["record_id"] != page["items"][0]["record_id"]
    kit.delivery(paused=True)
    for customer in bad:
        kit.update(customer["id"], given_name="Fixed")
    result = ops.post("failures/retry", {"reason": "invalid_data", "flow": "customers"})
    assert ids <= set(result["record_ids"])
    wait_until(lambda: kit.assert_crm_matches_square(ids))


def _assert_open(ops: OpsClient, ids: set[str]) -> None:
    open_ids = {f["record_id"] for f in ops.get("failures", page_size="500")["items"]}
    assert ids <= open_ids


def test_resolve_and_ignore_with_a_note(kit: StackKit, ops: OpsClient) -> None:
    customer = kit.create(given_name="Ignore", email_address="not an email")
    kit.flush()
    wait_until(lambda: _open_failure(ops, customer["id"]))
    ops.post(f"failures/customers/{customer['id']}/resolve", {"status": "ignored", "note": "test account"})
    assert _open_failure(ops, customer["id"])["status"] == "ignored"
    bad = ops.http.post(f"failures/customers/{customer['id']}/resolve", json={"status": "deleted"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_status"


def test_an_ignored_failure_stays_ignored_on_replay_and_reopens_for_a_newer_version(
    kit: StackKit, ops: OpsClient
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    customer = kit.create(given_name="Judged", email_address="judged at example")
    kit.flush()
    wait_until(lambda: _open_failure(ops, customer["id"]))
    ops.post(f"failures/customers/{customer['id']}/resolve", {"status": "ignored", "note": "known bad"})
    end = datetime.now(UTC) + timedelta(seconds=1)
    attempts = _open_failure(ops, customer["id"])["attempts"]
    ops.post("replay", {"from": start.isoformat(), "to": end.isoformat(), "flow": "customers"})
    wait_until(lambda: _assert_attempts_above(ops, customer["id"], attempts))  # the replay failed again...
    assert _open_failure(ops, customer["id"])["status"] == "ignored"  # ...and it stays judged
    kit.update(customer["id"], email_address="still wrong at example")  # a newer version fails too
    kit.flush()
    wait_until(lambda: _assert_status(ops, customer["id"], "open"))


def _assert_attempts_above(ops: OpsClient, record_id: str, attempts: int) -> None:
    assert _open_failure(ops, record_id)["attempts"] > attempts


def _assert_status(ops: OpsClient, record_id: str, status: str) -> None:
    assert _open_failure(ops, record_id)["status"] == status


def test_pause_keeps_messages_and_resume_delivers_them(kit: StackKit, ops: OpsClient) -> None:
    ops.post("flows/customers/pause", {"note": "maintenance"})
    time.sleep(6)  # the worker re-reads the pause flag every 5 s
    customers = kit.create_many(
        [{"given_name": f"Paused{i}", "email_address": f"paused{i}@example.com"} for i in range(4)]
    )
    ids = {c["id"] for c in customers}
    kit.flush()
    time.sleep(3)
    keyed = {c.get("tb_squarecustomerid") for c in kit.contacts()}
    assert not ids & keyed, "a paused flow wrote to the CRM"
    assert ops.get("flows")["flows"][0]["paused"] is True
    ops.post("flows/customers/resume")
    kit.converge(ids, timeout=120)  # held messages come back within their redelivery delay


def test_replay_of_a_time_range_is_harmless(kit: StackKit, ops: OpsClient) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    customer = kit.create(given_name="Replay", email_address="replay@example.com")
    kit.converge({customer["id"]})
    end = datetime.now(UTC) + timedelta(seconds=1)
    result = ops.post("replay", {"from": start.isoformat(), "to": end.isoformat(), "flow": "customers"})
    assert result["replayed"] >= 1
    time.sleep(2)
    kit.assert_crm_matches_square({customer["id"]})
    assert len([c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer["id"]]) == 1
    bad = ops.http.post("replay", json={"from": end.isoformat(), "to": start.isoformat()})
    assert bad.status_code == 400


def test_health_reports_queue_flows_and_reconcile(kit: StackKit, ops: OpsClient) -> None:
    customer = kit.create(given_name="Health", email_address="health@example.com")
    kit.converge({customer["id"]})
    health = wait_until(lambda: _health_with_write(ops))
    assert health["queue"]["active"] is not None and health["queue"]["dead_letter"] is not None
    assert health["flows"][0]["flow"] == "customers" and health["flows"][0]["lag_seconds"] >= 0
    assert "last_reconcile" in health
    assert ops.get("openapi.json")["openapi"].startswith("3.")
    unknown = ops.http.get("nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def _health_with_write(ops: OpsClient) -> dict[str, object]:
    health = ops.get("health")
    assert health["flows"][0]["last_written_at"]
    return health
