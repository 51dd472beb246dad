"""Webhook delivery as Square does it: signed, at least once, retried until 2xx; optionally duplicated,
delayed and reordered on request (to prove the receiver does not depend on exactly-once or order)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.pipeline.signature import SIGNATURE_HEADER, sign


@dataclass
class DeliveryConfig:
    target_url: str = ""
    signature_key: str = ""
    notification_url: str = ""
    duplicate_rate: float = 0.0
    delay_ms_max: float = 0.0
    reorder_window: int = 1
    concurrency: int = 8
    paused: bool = False
    seed: int = 1


@dataclass
class DeliveryStats:
    queued: int = 0
    delivered: int = 0
    attempts: int = 0
    duplicates_sent: int = 0
    failed_attempts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class Deliverer:
    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self.stats = DeliveryStats()
        self._pending: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._rng = random.Random(config.seed)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Cancel the loop and every delivery in flight, then close their connections (a half-sent
        request left open would keep the receiver waiting for its body)."""
        running = [*self._deliveries, *([self._task] if self._task is not None else [])]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def enqueue(self, events: list[dict[str, Any]]) -> None:
        self._pending.extend(events)
        self.stats.queued += len(events)
        self._idle.clear()
        self._wake.set()

    def reconfigure(self, updates: dict[str, Any]) -> None:
        for name, value in updates.items():
            if hasattr(self.config, name):
                setattr(self.config, name, type(getattr(self.config, name))(value))
        if "seed" in updates:
            self._rng = random.Random(self.config.seed)
        self._wake.set()

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _next_batch(self) -> list[dict[str, Any]]:
        window = max(1, self.config.reorder_window)
        batch = [self._pending.popleft() for _ in range(min(window, len(self._pending)))]
        if window > 1:
            self._rng.shuffle(batch)
        return batch

    async def _run(self) -> None:
        limiter = asyncio.Semaphore(max(1, self.config.concurrency))
        tasks = self._deliveries
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not self.config.paused:
                for event in self._next_batch():
                    await limiter.acquire()
                    self._in_flight += 1
                    task = asyncio.create_task(self._deliver_event(event, limiter))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if not self._pending and self._in_flight == 0:
                self._idle.set()

    async def _deliver_event(self, event: dict[str, Any], limiter: asyncio.Semaphore) -> None:
        try:
            if self.config.delay_ms_max:
                await asyncio.sleep(self._rng.random() * self.config.delay_ms_max / 1000)
            body = json.dumps(event, separators=(",", ":")).encode("utf-8")
            first_attempt = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            await self._post_until_accepted(body, first_attempt, 0)
            self.stats.delivered += 1
            if self._rng.random() < self.config.duplicate_rate:
                self.stats.duplicates_sent += 1
                await self._post_until_accepted(body, first_attempt, 1)
        finally:
            self._in_flight -= 1
            limiter.release()
            if not self._pending and self._in_flight == 0:
                self._idle.set()
            self._wake.set()

    async def _post_until_accepted(self, body: bytes, first_attempt: str, retry_number: int) -> None:
        """Square retries failed deliveries with backoff (1, 2, 4 … minutes; here compressed to seconds)."""
        assert self._client is not None
        delay = 0.25
        while True:
            signature = sign(
                body, signature_key=self.config.signature_key, notification_url=self.config.notification_url
            )
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature,
                "square-environment": "Sandbox",
                "square-initial-delivery-timestamp": first_attempt,
                "square-retry-number": str(retry_number),
            }
            self.stats.attempts += 1
            try:
                response = await self._client.post(self.config.target_url, content=body, headers=headers)
                status = str(response.status_code)
            except httpx.HTTPError:
                status = "connection_error"
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
            if status.isdigit() and 200 <= int(status) < 300:
                return
            self.stats.failed_attempts += 1
            retry_number += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
