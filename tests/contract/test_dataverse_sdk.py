"""A real client nobody here wrote: Microsoft's official Dataverse Python SDK (PowerPlatform-Dataverse-Client,
pinned in requirements-sdk.txt, installed in .venv-sdk by `make setup-sdk`) drives the emulator through a local
TLS proxy with a throwaway certificate: create, retrieve, update, upsert by key, CreateMultiple, UpdateMultiple,
UpsertMultiple, queries with $orderby/$top and paging, $batch with a changeset, delete, and the error cases.
The expected outcomes below are what Microsoft documents for each call, stated independently of the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from devstack.dataverse_emulator.app import create_app
from devstack.dataverse_emulator.server import Emulator
from devstack.tls_proxy import create_proxy, self_signed_certificate, server_context
from tests.support import ThreadedServer

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
SCENARIO = Path(__file__).with_name("dataverse_sdk_scenario.py")
TOKEN = "sdk-contract-token"


class TlsServer:
    """The TLS proxy on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, app: web.Application, cert: Path, key: Path) -> None:
        self.app, self.context, self.port = app, server_context(cert, key), 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context)
            await site.start()
            self.port = self._runner.addresses[0][1]
            self._ready.set()

        self._loop.run_until_complete(boot())
        self._loop.run_forever()

    def start(self) -> TlsServer:
        self._thread.start()
        assert self._ready.wait(10), "TLS proxy did not start"
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def https_dataverse(tmp_path: Path) -> Iterator[str]:
    emulator = ThreadedServer(create_app(Emulator(token=TOKEN))).start()
    cert, key = self_signed_certificate(tmp_path)
    proxy = TlsServer(create_proxy(emulator.url), cert, key).start()
    yield f"https://127.0.0.1:{proxy.port}"
    proxy.stop()
    emulator.stop()


def test_official_sdk_completes_every_documented_operation(https_dataverse: str, tmp_path: Path) -> None:
    assert SDK_PYTHON.exists(), "run `make setup-sdk` (it creates .venv-sdk with the SDK; `make test` does it)"
    cert = tmp_path / "tls-cert.pem"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REQUESTS_CA_BUNDLE": str(cert), "SSL_CERT_FILE": str(cert)}
    result = subprocess.run(
        [str(SDK_PYTHON), str(SCENARIO), https_dataverse, TOKEN],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "OPENBLAS_NUM_THREADS": "1", **{k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    # The SDK asks its credential for "<environment URL>/.default" (reference §1).
    assert seen["scopes"] == [f"{https_dataverse}/.default"]
    # Create returns the id from OData-EntityId; update by id; retrieve with $select.
    assert seen["retrieved"] == {"firstname": "Augusta", "lastname": "Lovelace", "tb_squarecustomerid": "SDK1"}
    # Upsert of one item is a PATCH by alternate key: created, then updated in place (one row).
    assert seen["upserted"] == [["George", "Byron"]]
    # A list create is one CreateMultiple (five ids); a list update is UpdateMultiple; a list upsert is
    # UpsertMultiple with @odata.id (one existing row updated, two created).
    assert seen["bulk_created"] == 5
    keyed = [row for row in seen["after_bulk"] if row[0]]
    assert keyed == [
        ["SDK1", "Lovelace", "Augusta"],
        ["SDK2", "Byron2", "George"],
        ["SDK3", "Shelley", None],
        ["SDK4", "Keats", None],
    ]
    assert sorted(row[2] or "" for row in seen["after_bulk"] if not row[0]) == ["", "", "", "Updated", "Updated"]
    # $orderby is honoured across pages of odata.maxpagesize; list_pages yields one page per request; $top caps.
    bulk_names = ["Shelley", "Keats", "Bulk4", "Bulk3", "Bulk2", "Bulk1", "Bulk0"]
    assert seen["ordered"] == bulk_names
    assert seen["page_sizes"] == [3, 3, 1]
    assert seen["top"] == ["Bulk0", "Bulk1"]
    # $batch: a create, an update and a changeset whose second part updates the first by Content-ID reference.
    assert seen["batch_statuses"] == [204, 204, 204, 204]
    assert seen["atomic"] == ["Set"]
    # A failing changeset rolls back as a whole; the failed part carries its Dataverse code.
    assert seen["batch_failure"] == [[400, "0x80044331"]]
    assert seen["rolled_back"] == 0
    # Errors surface as HttpError with Dataverse's status and code.
    assert seen["too_long"] == {"status": 400, "code": "0x80044331", "transient": False, "retry_after": None}
    assert seen["refused_key"]["status"] == 400 and seen["refused_key"]["code"] == "0x8006088a"
    assert seen["unknown_column"]["status"] == 400
    assert (seen["update_missing"]["status"], seen["update_missing"]["code"]) == (404, "0x80040217")
    assert seen["deleted_is_gone"] is True
    assert (seen["delete_again"]["status"], seen["delete_again"]["code"]) == (404, "0x80040217")
    # Service protection: 429 with the documented code, transient, and Retry-After in seconds (until the one
    # request in the 60 s window leaves it).
    throttled = seen["throttled"]
    assert (throttled["status"], throttled["code"], throttled["transient"]) == (429, "0x80072322", True)
    assert 7 <= throttled["retry_after"] <= 60
