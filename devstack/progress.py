"""Live progress for the demo's long steps: webhooks delivered (and per second), the queue, writes the CRM
applied, records in step with Square, open failures — printed every few seconds while a phase runs, and
the phase's throughput at its end."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import httpx

from devstack.stack import Stack

InStep = Callable[[], tuple[int, int]]  # (records in step with Square, records checked)


@dataclass(frozen=True)
class Reading:
    at: float
    delivered: int
    queued: int | None
    writes: int
    failures: int | None
    in_step: tuple[int, int]


class PhaseProgress:
    """`with PhaseProgress(stack, "customers", in_step):` prints a progress line every `interval` seconds
    (in place on a terminal) and keeps the first and last reading for the phase's throughput."""

    def __init__(
        self, stack: Stack, label: str, in_step: InStep, interval: float = 4.0, out: TextIO | None = None
    ) -> None:
        self.label, self.in_step, self.interval = label, in_step, interval
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self._square = stack.client("square", timeout=10)
        self._dataverse = stack.client("dataverse", timeout=10)
        self._host = httpx.Client(
            base_url=stack.urls["host"], headers={"x-functions-key": stack.env["LOCAL_FUNCTION_KEY"]}, timeout=10
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.first: Reading | None = None
        self.last: Reading | None = None

    def read(self) -> Reading:
        delivered = int(self._square.get("/_control/delivery").json()["stats"]["delivered"])
        writes = int(self._dataverse.get("/_control/stats").json().get("writes_applied", 0))
        queued: int | None = None
        failures: int | None = None
        try:
            health = self._host.get("/api/ops/health").json()
            queued = health["queue"].get("active")
            failures = sum(int(flow["open_failures"]) for flow in health["flows"])
        except (httpx.HTTPError, KeyError, ValueError):
            pass  # the host is busy: the line shows "?" this time
        return Reading(time.monotonic(), delivered, queued, writes, failures, self.in_step())

    def line(self, now: Reading, before: Reading) -> str:
        elapsed = now.at - (self.first or before).at
        rate = (now.delivered - before.delivered) / max(now.at - before.at, 1e-9)
        in_step, checked = now.in_step
        queued = "?" if now.queued is None else now.queued
        failures = "?" if now.failures is None else now.failures
        start = self.first or before
        matched = f", {in_step}/{checked} in step" if checked else ""
        return (
            f"  {self.label:<9} {elapsed:5.0f} s  webhooks {now.delivered - start.delivered} delivered ({rate:.0f}/s)"
            f" · queue {queued} · CRM {now.writes - start.writes} writes{matched} · {failures} failures open"
        )

    def _show(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K" + text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def _run(self) -> None:
        before = self.first
        while not self._stop.wait(self.interval):
            try:
                now = self.read()
            except httpx.HTTPError:
                continue
            if before is not None:
                self._show(self.line(now, before))
            before = self.last = now

    def __enter__(self) -> PhaseProgress:
        self.first = self.last = self.read()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.interval + 10)
        with contextlib.suppress(httpx.HTTPError):
            self.last = self.read()
        if self.tty:
            self.out.write("\r\033[K")
            self.out.flush()
        for client in (self._square, self._dataverse, self._host):
            client.close()

    def throughput(self, seconds: float) -> str:
        """Events and CRM writes per second over the phase (`seconds`: until the CRM matched Square)."""
        if self.first is None or self.last is None:
            return ""
        events = self.last.delivered - self.first.delivered
        writes = self.last.writes - self.first.writes
        return (
            f"{events} webhook events and {writes} CRM writes in {seconds:.1f} s: "
            f"{events / max(seconds, 1e-9):.1f} events/s, {writes / max(seconds, 1e-9):.1f} writes/s"
        )
