"""The bulk path through the local host, Azurite and both emulators: a backlog of webhooks is written with
bulk requests (fewer Dataverse requests than events) and converges; a killed `tillbridge backfill` resumes
from its stored point with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from devstack.stack import PROJECT_DIR
from shared.adapters.table_state import table_state_store
from tests.stackkit import StackKit, wait_until

pytestmark = pytest.mark.integration
KEY = "tb_squarecustomerid"


def _people(prefix: str, count: int) -> list[dict[str, str]]:
    return [
        {"given_name": f"{prefix}{i}", "family_name": "Bulk", "email_address": f"{prefix.lower()}{i}@bulk.example"}
        for i in range(count)
    ]


def _bulk_requests(stats: dict[str, Any]) -> int:
    return sum(int(v) for k, v in stats.items() if "Multiple" in k and isinstance(v, int))


def test_a_backlog_of_webhooks_is_written_in_bulk_and_converges(kit: StackKit) -> None:
    kit.delivery(paused=True)
    created = kit.create_many(_people("Backlog", 150))
    ids = {c["id"] for c in created}
    kit.dataverse.delete("/_control/stats")
    kit.delivery(paused=False, concurrency=32)
    kit.converge(ids, timeout=180)
    stats = kit.dataverse.get("/_control/stats").json()
    assert _bulk_requests(stats) >= 1, stats
    assert stats["requests"] < len(ids), stats  # one request per event would be 150 upserts and their queries
    assert kit.open_failures_for(ids) == []
    keyed = [c[KEY] for c in kit.contacts() if c.get(KEY) in ids]
    assert sorted(keyed) == sorted(ids)  # each customer exactly once


def _cursor(kit: StackKit, name: str) -> str | None:
    store = table_state_store(kit.stack.env["AzureWebJobsStorage"], "", "", "tillbridge")
    return asyncio.run(store.get_cursor(name))


def _backfill(kit: StackKit) -> subprocess.Popen[str]:
    env = {**os.environ, **kit.stack.env, "BACKFILL_CHUNK_SIZE": "100", "BULK_REQUEST_SIZE": "50"}
    return subprocess.Popen(
        [sys.executable, "-m", "tillbridge_cli", "backfill", "customers"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_killed_backfill_resumes_with_no_gap_and_no_duplicate(kit: StackKit) -> None:
    history = kit.square.post("/_control/history/generate", json={"customers": 800, "seed": 21})
    history.raise_for_status()
    everyone = {c["id"] for c in kit.square_state()["customers"]}
    # slow the CRM down so the kill lands in the middle of the run
    kit.dataverse.post("/_control/limits", json={"latency_ms": 150, "jitter_ms": 0})
    cursor = "backfill:customers:all:customers"
    first = _backfill(kit)
    try:
        wait_until(lambda: _assert_resume_point(kit, cursor), timeout=120, interval=0.2)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    partial = {c[KEY] for c in kit.contacts() if c.get(KEY) in everyone}
    assert 0 < len(partial) < len(everyone)  # killed half-way
    kit.dataverse.post("/_control/limits", json={"latency_ms": 0, "jitter_ms": 0})
    second = _backfill(kit)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    keyed = [c[KEY] for c in kit.contacts() if c.get(KEY) in everyone]
    assert len(keyed) == len(set(keyed)) == len(everyone)  # no gap, no duplicate
    kit.assert_crm_matches_square(everyone)
    assert _cursor(kit, cursor) == ""  # finished: the next run starts over


def _assert_resume_point(kit: StackKit, cursor: str) -> None:
    point = _cursor(kit, cursor)
    assert point and point != "done", point
    time.sleep(0)
