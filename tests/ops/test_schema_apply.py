"""`tillbridge schema apply` against the Dataverse emulator started without Tillbridge's customisations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from devstack.dataverse_emulator.app import create_app
from devstack.dataverse_emulator.server import Emulator
from tests.support import ThreadedServer
from tillbridge_cli.schema import SchemaApplier, SchemaError, load_schema

TOKEN = "schema-test-token"


@pytest.fixture
def bare() -> Iterator[ThreadedServer]:
    server = ThreadedServer(create_app(Emulator(token=TOKEN, bare=True))).start()
    yield server
    server.stop()


def apply(server: ThreadedServer, prefix: str = "tb") -> object:
    async def run() -> object:
        async with httpx.AsyncClient() as http:
            return await SchemaApplier(http, server.url, TOKEN, poll=0.1, key_timeout=10, say=lambda _: None).apply(
                load_schema(), prefix
            )

    return asyncio.run(run())


def _upsert(server: ThreadedServer) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.patch(
        f"{server.url}/api/data/v9.2/contacts(tb_squarecustomerid='SQ1')",
        json={"tb_squarecompanyname": "Acme"},
        headers=headers,
    ).status_code


def test_apply_creates_columns_and_key_then_upsert_by_key_works(bare: ThreadedServer) -> None:
    assert _upsert(bare) == 400  # before: no such key in this environment
    report = apply(bare)
    assert report.created == [
        "tb_squarecustomerid",
        "tb_squarereferenceid",
        "tb_squarecompanyname",
        "tb_contact_squarecustomerid_key",
    ]  # type: ignore[attr-defined]
    assert report.keys_active == ["tb_contact_squarecustomerid_key"]  # type: ignore[attr-defined]
    assert _upsert(bare) == 204


def test_apply_is_idempotent(bare: ThreadedServer) -> None:
    apply(bare)
    again = apply(bare)
    assert again.created == [] and len(again.existing) == 4  # type: ignore[attr-defined]


def test_publisher_prefix_names_everything(bare: ThreadedServer) -> None:
    report = apply(bare, prefix="contoso")
    assert "contoso_squarecustomerid" in report.created  # type: ignore[attr-defined]


def test_missing_privileges_give_a_clear_error(bare: ThreadedServer) -> None:
    httpx.post(f"{bare.url}/_control/metadata", json={"writes_allowed": False})
    with pytest.raises(SchemaError, match="System Customizer"):
        apply(bare)


def test_duplicate_values_fail_the_key_index(bare: ThreadedServer) -> None:
    async def prepare() -> None:
        async with httpx.AsyncClient() as http:
            applier = SchemaApplier(http, bare.url, TOKEN, poll=0.1, key_timeout=10, say=lambda _: None)
            schema = load_schema()
            schema["tables"][0]["keys"] = []
            await applier.apply(schema, "tb")  # columns only

    asyncio.run(prepare())
    rows = [{"lastname": "A", "tb_squarecustomerid": "DUP"}, {"lastname": "B", "tb_squarecustomerid": "DUP"}]
    httpx.post(f"{bare.url}/_control/tables/contacts", json=rows).raise_for_status()
    with pytest.raises(SchemaError, match="ReactivateEntityKey"):
        apply(bare)
