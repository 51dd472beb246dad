"""The `tillbridge` operations commands against the running local host."""

from __future__ import annotations

import json

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


def test_listings_print_json_for_scripts_with_every_id_whole(
    kit: StackKit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = kit.create(given_name="J" * 55, family_name="JsonCli")
    kit.flush()
    wait_until(lambda: _listed(capsys, broken["id"]))
    assert main(["failures", "list", "--flow", "customers", "--reason", "invalid_data", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)  # the whole output is one JSON document
    assert broken["id"] in {item["record_id"] for item in listed}
    assert main(["failures", "show", "customers", broken["id"], "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["failure"]["record_id"] == broken["id"] and record["attempts"]
    assert main(["status", "--json"]) == 0
    assert "customers" in {flow["flow"] for flow in json.loads(capsys.readouterr().out)["flows"]}
    # resolved failures are listed with --status any, not with the default (open)
    assert main(["failures", "resolve", "customers", broken["id"], "--note", "json test"]) == 0
    capsys.readouterr()
    assert main(["failures", "list", "--reason", "invalid_data", "--json"]) == 0
    assert broken["id"] not in capsys.readouterr().out
    assert main(["failures", "list", "--reason", "invalid_data", "--status", "any", "--json"]) == 0
    assert broken["id"] in {item["record_id"] for item in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize("columns", ["40", "200"])
def test_ids_and_timeline_details_are_never_cut(
    kit: StackKit, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    broken = kit.create(given_name="N" * 55, family_name=f"Narrow{columns}")
    kit.flush()
    wait_until(lambda: _listed(capsys, broken["id"]))
    assert main(["failures", "list", "--reason", "invalid_data"]) == 0
    listing = capsys.readouterr().out
    assert broken["id"] in listing and "…" not in listing
    assert main(["failures", "show", "customers", broken["id"]]) == 0
    shown = capsys.readouterr().out
    record = json.loads((main(["failures", "show", "customers", broken["id"], "--json"]), capsys.readouterr().out)[1])
    event_id = record["attempts"][0]["event_id"]
    assert broken["id"] in shown and event_id in shown and "…" not in shown
    assert "firstname: 55 characters, the CRM column holds 50" in " ".join(shown.split())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["failures", "list", "--status", "all"], "any"),  # the accepted values are listed
        (["failures", "list", "--flow", "contacts"], "customers"),
        (["failures", "retry", "--all", "--status", "done"], "retrying"),
        (["failures", "list", "--from", "yesterday"], "RFC 3339"),
        (["failures", "list", "--limit", "0"], "at least 1"),
        (["replay", "--from", "2026-01-01T00:00:00Z", "--to", "soon"], "RFC 3339"),
        (["flows", "pause", "payments"], "sales"),
    ],
)
def test_invalid_option_values_are_refused_before_any_call(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "invalid" in error or "not an RFC 3339" in error or "must be" in error
    assert named in error
