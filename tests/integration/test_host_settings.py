"""`make host` with only the settings ARCHITECTURE.md §4 names (no local.settings.json): it starts and runs
the app; a setting that is really missing stops it with one line naming it, not a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.stack import PROJECT_DIR, Stack, StackOptions, free_port

# ARCHITECTURE.md §4, "Settings" — written out here, not read from the code under test.
SECTION_4 = (
    "SQUARE_BASE_URL",
    "SQUARE_ACCESS_TOKEN",
    "SQUARE_WEBHOOK_SIGNATURE_KEY",
    "SQUARE_WEBHOOK_URL",
    "DATAVERSE_URL",
    "DATAVERSE_AUTH",
    "DATAVERSE_TOKEN",
    "AzureWebJobsStorage",
    "QUEUE_BACKEND",
)
OS_VARIABLES = ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")


@pytest.fixture(scope="module")
def bare_stack() -> Iterator[Stack]:
    """Azurite and the emulators only: this test's host must not share a queue with the suite's host."""
    with Stack(StackOptions(start_host=False)) as running:
        yield running


def _host(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    missing_file = Path(PROJECT_DIR) / "artifacts" / "no-such-local.settings.json"
    return subprocess.Popen(
        [sys.executable, "-m", "devstack.host", "--port", str(port), "--settings-file", str(missing_file)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _only(names: tuple[str, ...], source: dict[str, str]) -> dict[str, str]:
    env = {name: source[name] for name in names if name in source}
    env.update({name: os.environ[name] for name in OS_VARIABLES if name in os.environ})
    env["PYTHONPATH"] = str(PROJECT_DIR)
    return env


def test_the_host_starts_with_only_the_section_4_settings(bare_stack: Stack) -> None:
    port = free_port()
    env = _only(SECTION_4, {**bare_stack.env, "SQUARE_WEBHOOK_URL": f"http://127.0.0.1:{port}/api/square/webhooks"})
    assert set(env) - set(OS_VARIABLES) - {"PYTHONPATH"} == set(SECTION_4)
    process = _host(env, port)
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline() or "{}")
        assert announced.get("ready") == "host", process.stderr.read() if process.poll() is not None else ""
        # the webhook function runs: an unsigned body is refused by the app itself (JSON 401), not by the host
        answer = httpx.post(f"http://127.0.0.1:{port}/api/square/webhooks", content=b"{}", timeout=10)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_signature"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_really_missing_setting_is_one_line_naming_it(bare_stack: Stack) -> None:
    env = _only(tuple(name for name in SECTION_4 if name != "AzureWebJobsStorage"), bare_stack.env)
    process = _host(env, free_port())
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = [line for line in stderr.splitlines() if line.strip() and " WARNING " not in line]
    assert lines == [lines[-1]] and "AzureWebJobsStorage" in lines[-1], stderr
    assert "Traceback" not in stderr
