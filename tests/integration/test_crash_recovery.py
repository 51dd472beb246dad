"""The host dies after Dataverse applied a write but before the ledger recorded it; a new host finishes."""

from __future__ import annotations

import pytest

from devstack.stack import Stack
from tests.stackkit import StackKit, wait_until

pytestmark = pytest.mark.integration


def test_crash_between_crm_write_and_ledger_update(kit: StackKit, stack: Stack) -> None:
    customer = kit.create(given_name="Crash", family_name="Victim", email_address="crash.victim@example.com")
    kit.converge({customer["id"]})
    applied_before = kit.dataverse.get("/_control/stats").json()["writes_applied"]
    # the next write is applied, then its response hangs: the host never hears back
    kit.dataverse.post(
        "/_control/faults", json={"status": 200, "count": 1, "method": "PATCH", "hang_after_write_seconds": 60}
    )
    kit.update(customer["id"], given_name="Survivor")
    kit.flush()
    wait_until(lambda: _assert_more_writes(kit, applied_before))
    stack.stop_host(kill=True)  # SIGKILL: no cleanup, the queue message stays locked until its visibility timeout
    stack.start_host()
    kit.converge({customer["id"]}, timeout=90)
    keyed = [c for c in kit.contacts() if c.get("tb_squarecustomerid") == customer["id"]]
    assert len(keyed) == 1 and keyed[0]["firstname"] == "Survivor"
    assert kit.open_failures_for({customer["id"]}) == []


def _assert_more_writes(kit: StackKit, before: int) -> None:
    assert kit.dataverse.get("/_control/stats").json()["writes_applied"] > before
