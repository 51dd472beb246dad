"""Run an aiohttp application on loopback and announce the bound port (for the stack orchestrator)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiohttp import web


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # Local servers: do not wait a minute for a peer's unfinished request when stopping.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    server = site._server  # the bound socket tells the real port when 0 was asked for
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


async def announce_and_wait(name: str, port: int) -> None:
    """Print the one JSON line the stack orchestrator waits for, then wait for SIGTERM or SIGINT."""
    print(json.dumps({"ready": name, "port": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve_forever(app: web.Application, host: str, port: int, name: str) -> None:
    """Serve until SIGTERM/SIGINT, announcing the bound port once listening."""

    async def main() -> None:
        runner, bound = await start_site(app, host, port)
        await announce_and_wait(name, bound)
        await runner.cleanup()

    asyncio.run(main())
    sys.exit(0)
