"""Runs in .venv-sdk (not the app's virtualenv): drives Microsoft's official Dataverse Python SDK
(PowerPlatform-Dataverse-Client) against the emulator behind the local TLS proxy, the way its documentation
shows, and prints what it observed as JSON for test_dataverse_sdk.py to judge.

usage: python dataverse_sdk_scenario.py <https base url> <token>   (REQUESTS_CA_BUNDLE names the proxy's cert)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import requests
from azure.core.credentials import AccessToken, TokenCredential
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem

KEY = "tb_squarecustomerid"


class StaticCredential(TokenCredential):  # type: ignore[misc]
    """A TokenCredential that hands out the emulator's bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def _error(action: Any) -> dict[str, Any]:
    try:
        action()
    except HttpError as error:
        return {
            "status": error.status_code,
            "code": error.details.get("service_error_code"),
            "transient": error.is_transient,
            "retry_after": error.details.get("retry_after"),
        }
    return {"status": None}


def _names(rows: Any) -> list[str]:
    return [row["lastname"] for row in rows]


def crud(client: DataverseClient, seen: dict[str, Any]) -> str:
    ada = client.records.create("contact", {"lastname": "Lovelace", "firstname": "Ada", KEY: "SDK1"})
    seen["created_id"] = ada
    client.records.update("contact", ada, {"firstname": "Augusta"})
    got = client.records.retrieve("contact", ada, select=["firstname", "lastname", KEY])
    seen["retrieved"] = {k: got[k] for k in ("firstname", "lastname", KEY)} if got else None
    client.records.upsert("contact", [UpsertItem(alternate_key={KEY: "SDK2"}, record={"lastname": "Byron"})])
    client.records.upsert("contact", [UpsertItem(alternate_key={KEY: "SDK2"}, record={"firstname": "George"})])
    byron = client.records.list("contact", filter=f"{KEY} eq 'SDK2'", select=["firstname", "lastname"])
    seen["upserted"] = [(r["firstname"], r["lastname"]) for r in byron]
    return ada


def bulk(client: DataverseClient, seen: dict[str, Any]) -> None:
    ids = client.records.create("contact", [{"lastname": f"Bulk{i}", "description": "bulk"} for i in range(5)])
    seen["bulk_created"] = len(set(ids))
    client.records.update("contact", ids[:2], {"firstname": "Updated"})
    items = [
        UpsertItem(alternate_key={KEY: "SDK2"}, record={"lastname": "Byron2"}),
        UpsertItem(alternate_key={KEY: "SDK3"}, record={"lastname": "Shelley", "description": "bulk"}),
        UpsertItem(alternate_key={KEY: "SDK4"}, record={"lastname": "Keats", "description": "bulk"}),
    ]
    client.records.upsert("contact", items)
    rows = client.records.list("contact", select=["lastname", "firstname", KEY], orderby=[f"{KEY} asc"])
    seen["after_bulk"] = [(r.get(KEY), r["lastname"], r.get("firstname")) for r in rows]


def query(client: DataverseClient, seen: dict[str, Any]) -> None:
    filter_text = "description eq 'bulk'"
    rows = client.records.list(
        "contact", filter=filter_text, select=["lastname"], orderby=["lastname desc"], page_size=2
    )
    seen["ordered"] = _names(rows)
    pages = list(client.records.list_pages("contact", filter=filter_text, select=["lastname"], page_size=3))
    seen["page_sizes"] = [len(list(page)) for page in pages]
    seen["top"] = _names(client.records.list("contact", filter=filter_text, orderby=["lastname asc"], top=2))


def batch(client: DataverseClient, seen: dict[str, Any], ada: str) -> None:
    request = client.batch.new()
    request.records.create("contact", {"lastname": "InBatch"})
    request.records.update("contact", ada, {"description": "batched"})
    with request.changeset() as changeset:
        ref = changeset.records.create("contact", {"lastname": "Atomic"})
        changeset.records.update("contact", ref, {"firstname": "Set"})
    result = request.execute()
    seen["batch_statuses"] = [item.status_code for item in result.responses]
    failing = client.batch.new()
    with failing.changeset() as changeset:
        changeset.records.create("contact", {"lastname": "Rolled"})
        changeset.records.create("contact", {"lastname": "x" * 51})
    failed = failing.execute(continue_on_error=True)
    seen["batch_failure"] = [(item.status_code, item.error_code) for item in failed.responses]
    seen["rolled_back"] = len(client.records.list("contact", filter="lastname eq 'Rolled'"))
    atomic = client.records.list("contact", filter="lastname eq 'Atomic'", select=["firstname"])
    seen["atomic"] = [row["firstname"] for row in atomic]


def errors(client: DataverseClient, seen: dict[str, Any], ada: str) -> None:
    seen["too_long"] = _error(lambda: client.records.create("contact", {"lastname": "x" * 51}))
    bad_key = [UpsertItem(alternate_key={KEY: "A:B"}, record={"lastname": "Colon"})]
    seen["refused_key"] = _error(lambda: client.records.upsert("contact", bad_key))
    seen["unknown_column"] = _error(lambda: client.records.create("contact", {"nosuchcolumn": "x"}))
    missing = "00000000-0000-0000-0000-000000000009"
    seen["update_missing"] = _error(lambda: client.records.update("contact", missing, {"lastname": "x"}))
    client.records.delete("contact", ada)
    seen["deleted_is_gone"] = client.records.retrieve("contact", ada) is None
    seen["delete_again"] = _error(lambda: client.records.delete("contact", ada))


def throttled(client: DataverseClient, seen: dict[str, Any], base_url: str) -> None:
    limits = {"requests_per_window": 1, "window_seconds": 60, "retry_after_seconds": 7}
    requests.post(f"{base_url}/_control/limits", json=limits, timeout=10).raise_for_status()
    client.records.list("contact", top=1)
    seen["throttled"] = _error(lambda: client.records.list("contact", top=1))


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    credential = StaticCredential(token)
    seen: dict[str, Any] = {}
    with DataverseClient(base_url, credential) as client:
        ada = crud(client, seen)
        bulk(client, seen)
        query(client, seen)
        batch(client, seen, ada)
        errors(client, seen, ada)
        throttled(client, seen, base_url)
    seen["scopes"] = sorted(set(credential.scopes))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
