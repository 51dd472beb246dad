"""Wire the loaded app's functions to the HTTP server, queue pollers and timers; run until stopped."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from devstack.host.http import http_routes, key_accepted, make_handler
from devstack.host.loader import load_app, resolve, storage_connection
from devstack.host.queues import QueueOptions, QueuePoller
from devstack.host.timers import TimerRunner
from devstack.serve import announce_and_wait, start_site
from shared.config.settings import merged_environment, read_local_settings

log = logging.getLogger("devstack.host")


async def invoke(function: Any, kwargs: dict[str, Any]) -> Any:
    """Await coroutine functions on the host loop; run sync ones in the thread pool (as the worker does)."""
    user_function = function.get_user_function()
    if inspect.iscoroutinefunction(user_function):
        return await user_function(**kwargs)
    return await asyncio.get_running_loop().run_in_executor(None, lambda: user_function(**kwargs))


def load_environment(settings_file: Path) -> None:
    """local.settings.json Values, overridden by the environment (as Core Tools does)."""
    values = read_local_settings(settings_file)
    os.environ.update(merged_environment(values, os.environ))


def queue_options(project_dir: Path) -> QueueOptions:
    host_json = json.loads((project_dir / "host.json").read_text(encoding="utf-8"))
    service_bus = host_json.get("extensions", {}).get("serviceBus", {})
    return QueueOptions(
        max_message_batch=int(os.environ.get("LOCAL_QUEUE_MAX_BATCH", service_bus.get("maxMessageBatchSize", 1000))),
        # Service Bus hands messages over as they arrive (its receive waits on the broker); a storage queue
        # must be polled, so an idle poller looks again within 0.1 s, and two batches may overlap (one
        # being written while the next is read), as a host's prefetch does
        concurrent_batches=int(os.environ.get("LOCAL_QUEUE_CONCURRENT_BATCHES", "2")),
        max_poll_interval=float(os.environ.get("LOCAL_QUEUE_MAX_POLL_SECONDS", "0.1")),
        lock_seconds=int(os.environ.get("LOCAL_QUEUE_LOCK_SECONDS", "30")),
        max_delivery_count=int(os.environ.get("LOCAL_QUEUE_MAX_DELIVERY_COUNT", "10")),
        max_concurrent_calls=int(service_bus.get("maxConcurrentSessions", 8))
        * int(service_bus.get("maxConcurrentCallsPerSession", 1))
        if service_bus.get("maxConcurrentSessions")
        else int(service_bus.get("maxConcurrentCalls", 16)),
    )


def is_disabled(function_name: str) -> bool:
    """`AzureWebJobs.<name>.Disabled=true` disables a function, as in Azure and Core Tools."""
    return os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "").strip().lower() in ("true", "1")


class LocalHost:
    def __init__(
        self, project_dir: Path, host: str = "127.0.0.1", port: int = 7071, settings_file: Path | None = None
    ) -> None:
        self.project_dir = project_dir
        self.settings_file = settings_file or project_dir / "local.settings.json"
        self.host, self.port = host, port
        self.pollers: list[QueuePoller] = []
        self.timers: list[TimerRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._function_key = ""

    async def start(self) -> int:
        load_environment(self.settings_file)
        functions = load_app(self.project_dir).get_functions()  # once: a second call raises in azure-functions
        # the Functions host hands a function the body as sent: no decompression (a gzip header on a plain
        # body must reach the webhook as bytes, not fail in the HTTP server)
        app = web.Application(client_max_size=16 * 1024 * 1024, handler_args={"auto_decompress": False})
        enabled = [f for f in functions if not is_disabled(str(f.get_function_name()))]
        function_key = os.environ.get("LOCAL_FUNCTION_KEY", "")
        if not function_key:
            function_key = os.environ["LOCAL_FUNCTION_KEY"] = secrets.token_urlsafe(24)
            log.warning(
                "LOCAL_FUNCTION_KEY was not set: this run's function key is in the environment of the host only"
            )
        self._function_key = function_key
        # [\s\S]: a decoded path may hold a newline (a record id "%0A"); "." would not match it and aiohttp
        # would answer a plain-text 404 before any function ran
        app.router.add_route("*", "/api/{tail:[\\s\\S]*}", make_handler(http_routes(enabled), invoke, function_key))
        app.router.add_get("/admin/host/status", self._status)
        self._runner, bound = await start_site(app, self.host, self.port)
        self._start_triggers(functions)
        return bound

    def _start_triggers(self, functions: list[Any]) -> None:
        queue_triggers = [f for f in functions if f.get_trigger().type == "serviceBusTrigger"]
        connection = storage_connection() if queue_triggers else ""
        options = queue_options(self.project_dir)
        for function in functions:
            trigger = function.get_trigger()
            if is_disabled(function.get_function_name()):
                log.warning(
                    "function %s is disabled by its AzureWebJobs.*.Disabled setting", function.get_function_name()
                )
                continue
            if trigger.type == "serviceBusTrigger":
                poller = QueuePoller(function, connection, resolve(trigger.queue_name), options, invoke)
                self.pollers.append(poller)
                self._tasks.append(asyncio.create_task(poller.run()))
            elif trigger.type == "timerTrigger":
                on_startup = str(getattr(trigger, "run_on_startup", "")).lower() == "true"
                timer = TimerRunner(function, resolve(trigger.schedule), invoke, on_startup)
                self.timers.append(timer)
                self._tasks.append(asyncio.create_task(timer.run()))
            elif trigger.type != "httpTrigger":
                log.warning("trigger %s of %s is not supported locally", trigger.type, function.get_function_name())

    async def _status(self, request: web.Request) -> web.Response:
        """Core Tools guards /admin/* with the master key; the local host's one key stands in for it."""
        if not key_accepted(request, self._function_key):
            return web.Response(status=401)
        return web.json_response(
            {
                "state": "Running",
                "queues": [p.name for p in self.pollers],
                "timers": {t.function.get_function_name(): t.runs for t in self.timers},
            }
        )

    async def stop(self, drain_seconds: float = 10.0) -> None:
        for timer in self.timers:
            timer.stopping = True
        await asyncio.gather(*(poller.drain(drain_seconds) for poller in self.pollers))
        for task in self._tasks:
            task.cancel()
        await self._runner.cleanup()


async def serve(project_dir: Path, host: str, port: int, settings_file: Path | None = None) -> None:
    # queue polling and settlement are blocking SDK calls: give them more than the default 6 threads
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="host-io"))
    local_host = LocalHost(project_dir, host, port, settings_file)
    bound = await local_host.start()
    await announce_and_wait("host", bound)
    await local_host.stop()
