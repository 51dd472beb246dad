"""Run aiohttp apps (the emulators, a webhook receiver) in a background thread for contract tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devstack.serve import start_site


class ThreadedServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._runner, self.port = await start_site(self.app, "127.0.0.1", 0)
            self._ready.set()

        self._loop.run_until_complete(boot())
        self._loop.run_forever()

    def start(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("server did not start")
        return self

    def call(self, coro: Callable[[], Awaitable[Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro(), self._loop).result(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.call(self._runner.cleanup)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class WebhookReceiver:
    """Records every delivery; answers with the next scripted status (200 when the script is empty)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.script: list[int] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        self.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(status=self.script.pop(0) if self.script else 200)
