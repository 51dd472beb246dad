"""Start and stop the local stack as child processes: Azurite, the Dataverse and Square emulators, and
the local function host, on free loopback ports, wired together by settings (random secrets per run)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Azurite's documented development account key: public, the same for every Azurite install.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def azurite_connection_string(blob: int, queue: int, table: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={base}:{blob}/{AZURITE_ACCOUNT};QueueEndpoint={base}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint={base}:{table}/{AZURITE_ACCOUNT};"
    )


def azurite_command() -> list[str]:
    local = PROJECT_DIR / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite")
    if found:
        return [found]
    raise FileNotFoundError("Azurite is not installed: run `npm ci` in the project directory (make setup does)")


@dataclass
class StackOptions:
    host_port: int = 0
    dataverse_latency_ms: float = 0.0
    dataverse_jitter_ms: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    start_host: bool = True
    host_log_level: str = "INFO"


@dataclass
class Stack:
    options: StackOptions = field(default_factory=StackOptions)
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    _logs: list[IO[Any]] = field(default_factory=list)

    def _log_file(self, name: str) -> IO[Any]:
        directory = self.options.log_dir or Path(tempfile.mkdtemp(prefix="tillbridge-stack-"))
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[Any]:
        process = subprocess.Popen(
            args,
            cwd=PROJECT_DIR,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=self._log_file(name),
            text=True,
        )
        self.processes[name] = process
        return process

    def _announced_port(self, name: str, process: subprocess.Popen[Any], timeout: float = 30.0) -> int:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see its log")
                continue
            try:
                announced = json.loads(line)
            except json.JSONDecodeError:
                continue
            if announced.get("ready") == name:
                return int(announced["port"])
        raise TimeoutError(f"{name} did not start within {timeout}s")

    def start(self) -> Stack:
        try:
            self._start_azurite()
            self._start_dataverse()
            self._configure()
            self._start_square()
            if self.options.start_host:
                self.start_host()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_azurite(self) -> None:
        blob, queue, table = free_port(), free_port(), free_port()
        process = self._spawn(
            "azurite",
            [
                *azurite_command(),
                "--silent",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--blobHost",
                "127.0.0.1",
                "--queueHost",
                "127.0.0.1",
                "--tableHost",
                "127.0.0.1",
                "--blobPort",
                str(blob),
                "--queuePort",
                str(queue),
                "--tablePort",
                str(table),
            ],
        )
        for port in (blob, queue, table):
            wait_for_port(port, 60, process)
        self.env["AzureWebJobsStorage"] = azurite_connection_string(blob, queue, table)

    def _start_dataverse(self) -> None:
        token = secrets.token_urlsafe(24)
        process = self._spawn(
            "dataverse",
            [
                sys.executable,
                "-m",
                "devstack.dataverse_emulator",
                "--port",
                "0",
                f"--token={token}",  # the "=" form: a random value may start with "-"
                "--latency-ms",
                str(self.options.dataverse_latency_ms),
                "--jitter-ms",
                str(self.options.dataverse_jitter_ms),
            ],
        )
        port = self._announced_port("dataverse", process)
        self.urls["dataverse"] = f"http://127.0.0.1:{port}"
        self.env.update(
            {"DATAVERSE_URL": self.urls["dataverse"], "DATAVERSE_AUTH": "static_token", "DATAVERSE_TOKEN": token}
        )

    def _configure(self) -> None:
        host_port = self.options.host_port or free_port()
        self.urls["host"] = f"http://127.0.0.1:{host_port}"
        self.env.update(
            {
                "SQUARE_ACCESS_TOKEN": secrets.token_urlsafe(24),
                "SQUARE_WEBHOOK_SIGNATURE_KEY": secrets.token_urlsafe(16),
                "SQUARE_WEBHOOK_URL": f"{self.urls['host']}/api/square/webhooks",
                "QUEUE_BACKEND": "storagequeue",
                "SQUARE_EVENTS_QUEUE": "square-events",
                "RECONCILE_SCHEDULE": "0 0 3 * * *",
                "SEGMENTS_SCHEDULE": "0 0 4 * * *",
                "LOCAL_QUEUE_LOCK_SECONDS": "10",
                "RETRY_BASE_SECONDS": "1",
                "RETRY_MAX_SECONDS": "5",
                "HELD_REDELIVERY_SECONDS": "5",
                "DATAVERSE_MAX_INLINE_WAIT_SECONDS": "5",
                "LOCAL_FUNCTION_KEY": secrets.token_urlsafe(24),
                **self.options.extra_env,
            }
        )

    def _start_square(self) -> None:
        process = self._spawn(
            "square",
            [
                sys.executable,
                "-m",
                "devstack.square_emulator",
                "--port",
                "0",
                f"--token={self.env['SQUARE_ACCESS_TOKEN']}",
                f"--signature-key={self.env['SQUARE_WEBHOOK_SIGNATURE_KEY']}",
                f"--notification-url={self.env['SQUARE_WEBHOOK_URL']}",
            ],
        )
        port = self._announced_port("square", process)
        self.urls["square"] = f"http://127.0.0.1:{port}"
        self.env["SQUARE_BASE_URL"] = self.urls["square"]

    def start_host(self) -> None:
        port = int(self.urls["host"].rsplit(":", 1)[1])
        process = self._spawn(
            "host",
            [sys.executable, "-m", "devstack.host", "--port", str(port), "--log-level", self.options.host_log_level],
            self.env,
        )
        self._announced_port("host", process, timeout=60)

    def stop_host(self, kill: bool = False) -> None:
        process = self.processes.pop("host", None)
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        self.stop_host()
        for name in list(self.processes):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in self._logs:
            handle.close()

    def client(self, name: str, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.urls[name], timeout=timeout)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
