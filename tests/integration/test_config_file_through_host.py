"""Through the local host: an invalid configuration file stops processing but not the webhook — events are
queued and held, health says why — and once the file is fixed (and the host restarted) nothing was lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.stack import Stack, StackOptions
from tests.stackkit import OpsClient, wait_until

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_invalid_file_holds_events_and_a_fixed_file_processes_them(tmp_path: Path) -> None:
    config = tmp_path / "tillbridge.yaml"
    config.write_text("version: 1\nflows: {customers: yes}\n", encoding="utf-8")  # `yes` is text in YAML 1.2
    options = StackOptions(
        log_dir=ARTIFACTS / "stack-logs" / "config-file", extra_env={"TILLBRIDGE_CONFIG": str(config)}
    )
    with Stack(options) as stack:
        square, dataverse, ops = stack.client("square"), stack.client("dataverse"), OpsClient(stack)
        health = ops.get("health")
        assert health["status"] == "invalid_configuration"
        assert health["configuration"]["problems"] == [
            f"{config}:2: flows.customers: must be true or false, found a text (allowed: true, false)"
        ]
        customer = square.post("/_control/customers", json={"given_name": "Held", "email_address": "held@example.com"})
        customer_id = customer.json()["id"]
        flushed = square.post("/_control/flush", params={"timeout": "30"}, timeout=40)
        assert flushed.status_code == 200  # the webhook accepted (queued) every event

        def contact_ids() -> list[str]:
            rows = dataverse.get("/_control/tables/contacts").json()
            return [r["contactid"] for r in rows if r.get("tb_squarecustomerid") == customer_id]

        def held() -> None:
            timeline = ops.get(f"records/customers/{customer_id}")
            assert any(a["outcome"] == "held_invalid_configuration" for a in timeline["attempts"])

        wait_until(held, timeout=30)
        assert contact_ids() == []  # nothing half-applied
        config.write_text("version: 1\nflows: {customers: true}\n", encoding="utf-8")
        stack.stop_host()
        stack.start_host()
        assert ops.get("health")["configuration"]["valid"] is True

        def arrived() -> None:
            assert len(contact_ids()) == 1

        wait_until(arrived, timeout=90)
        ops.close()
