"""The Functions app as the worker sees it, and its triggers called with plain binding objects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import azure.functions as func
import pytest

from shared import composition
from tests.conftest import app_functions


@pytest.fixture(scope="module")
def functions() -> dict[str, object]:
    return {f.get_function_name(): f for f in app_functions()}


@pytest.fixture
def empty_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SQUARE_WEBHOOK_SIGNATURE_KEY", "SQUARE_WEBHOOK_URL", "QUEUE_BACKEND", "SERVICEBUS_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    composition.reset()
    yield
    composition.reset()


def test_app_registers_its_functions(functions: dict[str, object]) -> None:
    assert set(functions) == {
        "square_webhook",
        "process_event",
        "record_dead_letter",
        "reconcile_customers",
        "segments",
        "ops_api",
        "ops_console",
        "purge_traces",
        "crm_changes",
        "process_crm_event",
        "record_crm_dead_letter",
    }


def test_webhook_route_is_anonymous_post(functions: dict[str, object]) -> None:
    trigger = functions["square_webhook"].get_trigger()  # type: ignore[attr-defined]
    assert trigger.route == "square/webhooks" and str(trigger.auth_level.value).upper() == "ANONYMOUS"
    assert [str(m.value) for m in trigger.methods] == ["POST"]


def test_worker_takes_batches_without_sessions_from_the_setting_named_queue(functions: dict[str, object]) -> None:
    trigger = functions["process_event"].get_trigger()  # type: ignore[attr-defined]
    assert trigger.queue_name == "%SQUARE_EVENTS_QUEUE%" and trigger.connection == "SERVICEBUS_CONNECTION"
    assert str(trigger.cardinality.value).upper() == "MANY"  # a list of messages per call (docs/decisions 0011f)
    assert str(trigger.is_sessions_enabled).lower() in ("none", "false")
    dead = functions["record_dead_letter"].get_trigger()  # type: ignore[attr-defined]
    assert dead.queue_name == "%SQUARE_EVENTS_QUEUE%/$deadletterqueue"


def test_timer_schedule_comes_from_a_setting(functions: dict[str, object]) -> None:
    trigger = functions["reconcile_customers"].get_trigger()  # type: ignore[attr-defined]
    assert trigger.schedule == "%RECONCILE_SCHEDULE%"
    assert functions["segments"].get_trigger().schedule == "%SEGMENTS_SCHEDULE%"  # type: ignore[attr-defined]


def test_crm_changes_poll_and_its_queue_come_from_settings(functions: dict[str, object]) -> None:
    assert functions["crm_changes"].get_trigger().schedule == "%CRM_CHANGES_SCHEDULE%"  # type: ignore[attr-defined]
    trigger = functions["process_crm_event"].get_trigger()  # type: ignore[attr-defined]
    # messages carry no SessionId (shared/pipeline/messages.py): a session-enabled trigger would never get them
    assert trigger.queue_name == "%CRM_EVENTS_QUEUE%" and str(trigger.is_sessions_enabled).lower() in ("none", "false")
    dead = functions["record_crm_dead_letter"].get_trigger()  # type: ignore[attr-defined]
    assert dead.queue_name == "%CRM_EVENTS_QUEUE%/$deadletterqueue"


def test_missing_settings_answer_json_500_naming_them(empty_settings: None) -> None:
    from functions.webhook import square_webhook

    request = func.HttpRequest("POST", "http://localhost/api/square/webhooks", headers={}, body=b"{}")
    response = asyncio.run(square_webhook.build().get_user_function()(request))  # type: ignore[attr-defined]
    assert response.status_code == 500 and response.mimetype == "application/json"
    error = json.loads(response.get_body())["error"]
    assert error["code"] == "configuration_error"
    assert "SQUARE_WEBHOOK_SIGNATURE_KEY" in error["message"] and "SQUARE_WEBHOOK_URL" in error["message"]


def test_admin_api_needs_the_function_key_and_the_console_does_not(functions: dict[str, object]) -> None:
    api = functions["ops_api"].get_trigger()  # type: ignore[attr-defined]
    console = functions["ops_console"].get_trigger()  # type: ignore[attr-defined]
    assert str(api.auth_level.value).upper() == "FUNCTION" and api.route == "ops/{*path}"
    assert str(console.auth_level.value).upper() == "ANONYMOUS"
