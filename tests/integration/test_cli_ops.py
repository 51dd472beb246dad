"""The `tillbridge` operations commands against the running local host."""

from __future__ import annotations

import pytest

from devstack.stack import Stack
from tests.stackkit import StackKit, wait_until
from tillbridge_cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def admin_settings(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLBRIDGE_URL", stack.urls["host"])
    monkeypatch.setenv("TILLBRIDGE_FUNCTION_KEY", stack.env["LOCAL_FUNCTION_KEY"])
    monkeypatch.setenv("COLUMNS", "200")


def _listed(capsys: pytest.CaptureFixture[str], record_id: str) -> str:
    assert main(["failures", "list", "--reason", "invalid_data"]) == 0
    text = capsys.readouterr().out
    assert record_id in text
    return text


def test_cli_lists_shows_retries_with_progress_and_resolves(kit: StackKit, capsys: pytest.CaptureFixture[str]) -> None:
    broken = kit.create_many([{"given_name": "C" * 55, "family_name": f"Cli{i}"} for i in range(2)])
    kit.flush()
    wait_until(lambda: _listed(capsys, broken[1]["id"]))
    assert main(["failures", "show", "customers", broken[0]["id"]]) == 0
    shown = capsys.readouterr().out
    assert "received" in shown and "failed" in shown
    assert main(["status"]) == 0
    assert "customers" in capsys.readouterr().out
    kit.delivery(paused=True)
    kit.update(broken[0]["id"], given_name="Fixed")
    assert main(["failures", "retry", "--all", "--reason", "invalid_data", "--flow", "customers"]) == 0
    retried = capsys.readouterr().out
    assert "re-enqueued" in retried and "retrying" in retried  # the progress bar's label
    wait_until(lambda: kit.assert_crm_matches_square({broken[0]["id"]}))
    assert main(["failures", "resolve", "customers", broken[1]["id"], "--ignore", "--note", "test data"]) == 0
    assert "ignored" in capsys.readouterr().out


def test_cli_reports_a_wrong_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TILLBRIDGE_FUNCTION_KEY", "wrong")
    assert main(["status"]) == 1
    assert "rejected" in capsys.readouterr().err


def test_cli_pauses_and_resumes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", "pause", "customers", "--note", "cli"]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["flows", "resume", "customers"]) == 0
    assert "running" in capsys.readouterr().out
