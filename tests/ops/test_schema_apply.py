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


def test_apply_creates_tables_columns_lookups_and_keys_then_writes_work(bare: ThreadedServer) -> None:
    assert _upsert(bare) == 400  # before: no such key in this environment
    report = apply(bare)
    created = set(report.created)  # type: ignore[attr-defined]
    assert {"tb_squarecustomerid", "tb_lifetimevalue", "tb_contact_squarecustomerid_key"} <= created
    assert {"tb_location", "tb_transaction", "tb_transactionline", "tb_payment", "tb_refund"} <= created
    assert {
        "tb_transaction.tb_contactid",
        "tb_transactionline.tb_transactionid",
        "tb_refund.tb_transactionid",
    } <= created
    assert len(report.keys_active) == 10  # type: ignore[attr-defined]
    assert {"tb_lead_rulekey_key", "tb_task_rulekey_key", "tb_list_segmentid_key"} <= set(report.keys_active)  # type: ignore[attr-defined]
    assert _upsert(bare) == 204
    headers = {"Authorization": f"Bearer {TOKEN}"}
    order = httpx.patch(
        f"{bare.url}/api/data/v9.2/tb_transactions(tb_squareorderid='O1')",
        json={
            "tb_name": "Sale",
            "tb_totalamount": 12.5,
            "tb_ContactId@odata.bind": "/contacts(tb_squarecustomerid='SQ1')",
        },
        headers=headers,
    )
    assert order.status_code == 204
    row = httpx.get(f"{bare.url}/api/data/v9.2/tb_transactions(tb_squareorderid='O1')", headers=headers).json()
    contact = httpx.get(f"{bare.url}/api/data/v9.2/contacts(tb_squarecustomerid='SQ1')", headers=headers).json()
    assert row["_tb_contactid_value"] == contact["contactid"]


def test_apply_turns_on_change_tracking_for_contacts_once(bare: ThreadedServer) -> None:
    """Two-way sync reads contact edits with change tracking, off in a new environment until schema apply
    turns it on (a table setting: "Use change tracking to synchronize data with external systems")."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Prefer": "odata.track-changes"}
    contacts = f"{bare.url}/api/data/v9.2/contacts?$select=lastname"
    assert "@odata.deltaLink" not in httpx.get(contacts, headers=headers).json()  # not tracked yet
    report = apply(bare)
    assert "contact change tracking" in report.created  # type: ignore[attr-defined]
    assert "@odata.deltaLink" in httpx.get(contacts, headers=headers).json()
    definition = httpx.get(
        f"{bare.url}/api/data/v9.2/EntityDefinitions(LogicalName='contact')",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert definition["ChangeTrackingEnabled"] is True
    assert "contact change tracking" in apply(bare).existing  # type: ignore[attr-defined]


def test_apply_is_idempotent(bare: ThreadedServer) -> None:
    apply(bare)
    again = apply(bare)
    assert again.created == [] and len(again.existing) > 40  # type: ignore[attr-defined]


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
            schema["tables"] = schema["tables"][:1]
            schema["tables"][0]["keys"] = []
            await applier.apply(schema, "tb")  # contact columns only

    asyncio.run(prepare())
    rows = [{"lastname": "A", "tb_squarecustomerid": "DUP"}, {"lastname": "B", "tb_squarecustomerid": "DUP"}]
    httpx.post(f"{bare.url}/_control/tables/contacts", json=rows).raise_for_status()
    with pytest.raises(SchemaError, match="ReactivateEntityKey"):
        apply(bare)
