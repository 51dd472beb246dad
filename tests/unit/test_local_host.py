"""Pieces of the local host that do not need Azurite: routes, settings expansion, queue names, timers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.host.http import compile_route
from devstack.host.loader import HostSettingError, resolve
from devstack.host.queues import storage_queue_name
from devstack.host.timers import TimerRunner, next_fire


def test_route_templates_capture_parameters() -> None:
    pattern = compile_route("admin/failures/{flow}/{record_id}")
    match = pattern.match("admin/failures/customers/ABC")
    assert match is not None and match.groupdict() == {"flow": "customers", "record_id": "ABC"}
    assert compile_route("square/webhooks").match("square/webhooks/") is not None
    assert compile_route("square/webhooks").match("square/webhooksX") is None


def test_settings_expressions_resolve_and_missing_ones_fail() -> None:
    assert resolve("%Q%/$deadletterqueue", {"Q": "square-events"}) == "square-events/$deadletterqueue"
    with pytest.raises(HostSettingError, match="MISSING"):
        resolve("%MISSING%", {})
    # a binding setting that is not set takes the app's own default (the one table in shared/config)
    assert resolve("%SQUARE_EVENTS_QUEUE%", {}) == "square-events"
    assert resolve("%SQUARE_EVENTS_QUEUE%", {"SQUARE_EVENTS_QUEUE": "q2"}) == "q2"


def test_dead_letter_path_maps_to_poison_queue() -> None:
    assert storage_queue_name("square-events") == ("square-events", False)
    assert storage_queue_name("square-events/$deadletterqueue") == ("square-events-poison", True)


def test_ncrontab_seconds_come_first() -> None:
    after = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert next_fire("0 */15 * * * *", after) == datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    assert next_fire("*/5 * * * * *", after).second == 5
    with pytest.raises(ValueError):
        next_fire("*/5 * * * *", after)


class _Trigger:
    name = "timer"


class _Function:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def get_trigger(self) -> _Trigger:
        return _Trigger()

    def get_function_name(self) -> str:
        return "tick"


def test_timer_fires_on_schedule() -> None:
    function = _Function()

    async def invoke(fn: Any, kwargs: dict[str, Any]) -> None:
        fn.calls.append(kwargs["timer"])

    async def scenario() -> None:
        runner = TimerRunner(function, "* * * * * *", invoke)
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(2.3)
        runner.stopping = True
        task.cancel()

    asyncio.run(scenario())
    assert 2 <= len(function.calls) <= 3
    assert function.calls[0].past_due is False
