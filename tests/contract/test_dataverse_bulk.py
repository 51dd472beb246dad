"""Bulk messages on the emulator, against "Use bulk operation messages" (powerapps-docs bulk-operations.md) and
reference/dataverse.md §4 and §12: shapes, all-or-nothing on standard tables, and the rules that bite."""

from __future__ import annotations

import httpx

API = "/api/data/v9.2/"
CONTACT = "Microsoft.Dynamics.CRM.contact"
KEY = "tb_squarecustomerid"


def _post(dataverse: httpx.Client, action: str, targets: list[dict[str, object]]) -> httpx.Response:
    return dataverse.post(API + f"contacts/Microsoft.Dynamics.CRM.{action}", json={"Targets": targets})


def _rows(dataverse: httpx.Client) -> list[dict[str, object]]:
    return list(dataverse.get("/_control/tables/contacts").json())


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_create_multiple_answers_200_with_the_new_ids(dataverse: httpx.Client) -> None:
    """CreateMultiple → 200 {"@odata.context": …CreateMultipleResponse, "Ids": [...]} (bulk-operations.md)."""
    response = _post(dataverse, "CreateMultiple", [{"@odata.type": CONTACT, "lastname": n} for n in ("A", "B")])
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    assert sorted(body["Ids"]) == sorted(r["contactid"] for r in _rows(dataverse))
    assert sorted(r["lastname"] for r in _rows(dataverse)) == ["A", "B"]


def test_every_target_needs_odata_type_of_the_requests_table(dataverse: httpx.Client) -> None:
    """ "You must set the @odata.type property for each item in the Targets parameter"; all Targets are of one
    table (reference §4). Nothing is written when one Target breaks the rule."""
    missing = [{"@odata.type": CONTACT, "lastname": "A"}, {"lastname": "B"}]
    other = [{"@odata.type": CONTACT, "lastname": "A"}, {"@odata.type": "Microsoft.Dynamics.CRM.team", "name": "T"}]
    for action in ("CreateMultiple", "UpsertMultiple"):
        assert _post(dataverse, action, missing).status_code == 400
        assert _post(dataverse, action, other).status_code == 400
    assert _rows(dataverse) == []


def test_a_failing_target_rolls_the_whole_request_back(dataverse: httpx.Client) -> None:
    """Standard tables: "Any error that occurs in a bulk operation … causes the entire operation to roll back"."""
    targets = [{"@odata.type": CONTACT, "lastname": "ok"}, {"@odata.type": CONTACT, "lastname": "x" * 51}]
    assert _code(_post(dataverse, "CreateMultiple", targets)) == (400, "0x80044331")
    upserts = [
        {"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='U1')", "lastname": "ok"},
        {"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='U2')", "nosuchcolumn": 1},
    ]
    assert _post(dataverse, "UpsertMultiple", upserts).status_code == 400
    assert _rows(dataverse) == []


def test_upsert_multiple_by_odata_id_creates_then_updates(dataverse: httpx.Client) -> None:
    """UpsertMultiple with the key in @odata.id → 204, creating new rows and updating existing ones; the key
    value is copied from the address on create (bulk-operations.md UpsertMultiple, "Use Upsert")."""
    first = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='K{i}')", "lastname": "v1"} for i in range(3)]
    assert _post(dataverse, "UpsertMultiple", first).status_code == 204
    second = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='K{i}')", "lastname": "v2"} for i in (1, 2, 3)]
    assert _post(dataverse, "UpsertMultiple", second).status_code == 204
    assert sorted((r[KEY], r["lastname"]) for r in _rows(dataverse)) == [
        ("K0", "v1"),
        ("K1", "v2"),
        ("K2", "v2"),
        ("K3", "v2"),
    ]


def test_upsert_multiple_by_key_properties_in_the_body(dataverse: httpx.Client) -> None:
    """A Target may name its row by the alternate key's properties instead of @odata.id ("Use Upsert")."""
    targets = [{"@odata.type": CONTACT, KEY: "P1", "lastname": "one"}]
    assert _post(dataverse, "UpsertMultiple", targets).status_code == 204
    targets = [{"@odata.type": CONTACT, KEY: "P1", "lastname": "two"}]
    assert _post(dataverse, "UpsertMultiple", targets).status_code == 204
    assert [(r[KEY], r["lastname"]) for r in _rows(dataverse)] == [("P1", "two")]


def test_key_in_odata_id_and_body_fails_only_on_the_create_path(dataverse: httpx.Client) -> None:
    """Reference §12 (SDK PR #127): the alternate key both in @odata.id and in the body → the create path answers
    400 0x80040216 "An unexpected error occurred", the update path succeeds. Update-only tests miss it."""
    both = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='B1')", KEY: "B1", "lastname": "x"}]
    assert _code(_post(dataverse, "UpsertMultiple", both)) == (400, "0x80040216")
    assert _rows(dataverse) == []
    id_only = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='B1')", "lastname": "created"}]
    assert _post(dataverse, "UpsertMultiple", id_only).status_code == 204
    both[0]["lastname"] = "updated"
    assert _post(dataverse, "UpsertMultiple", both).status_code == 204
    assert [(r[KEY], r["lastname"]) for r in _rows(dataverse)] == [("B1", "updated")]


def test_duplicate_keys_in_one_upsert_multiple_are_an_error(dataverse: httpx.Client) -> None:
    """ "When more than one record in the Targets parameter is uniquely identified by a primary or alternate key,
    UpsertMultiple will return an error" — also when the key values differ only in case (key index collation)."""
    targets = [
        {"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='D1')", "lastname": "a"},
        {"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='d1')", "lastname": "b"},
    ]
    assert _post(dataverse, "UpsertMultiple", targets).status_code == 400
    assert _rows(dataverse) == []


def test_update_multiple_takes_primary_keys_only_and_the_first_duplicate(dataverse: httpx.Client) -> None:
    """UpdateMultiple: each Target carries its primary key; "Using alternate keys with Web API and UpdateMultiple
    is not supported"; duplicates: "the operation is performed on the first record only" → 204."""
    ids = _post(dataverse, "CreateMultiple", [{"@odata.type": CONTACT, "lastname": n} for n in ("A", "B")]).json()
    updates = [
        {"@odata.type": CONTACT, "contactid": ids["Ids"][0], "lastname": "first"},
        {"@odata.type": CONTACT, "contactid": ids["Ids"][0], "lastname": "ignored"},
        {"@odata.type": CONTACT, "contactid": ids["Ids"][1], "lastname": "second"},
    ]
    assert _post(dataverse, "UpdateMultiple", updates).status_code == 204
    assert sorted(r["lastname"] for r in _rows(dataverse)) == ["first", "second"]
    by_key = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='X')", "lastname": "no"}]
    assert _post(dataverse, "UpdateMultiple", by_key).status_code == 400
    missing = [{"@odata.type": CONTACT, "contactid": "00000000-0000-0000-0000-000000000009", "lastname": "no"}]
    assert _code(_post(dataverse, "UpdateMultiple", missing)) == (404, "0x80040217")


def test_a_bulk_request_counts_once_and_charges_per_record(dataverse: httpx.Client) -> None:
    """A bulk request is one request toward the 6,000-request limit but uses execution time per record (reference
    §4 "Limits", §12: an UpsertMultiple of 100 records takes about a second)."""
    dataverse.post("/_control/limits", json={"profile": "realistic", "sleep_cost": False})
    dataverse.delete("/_control/stats")
    targets = [{"@odata.type": CONTACT, "@odata.id": f"contacts({KEY}='C{i}')", "lastname": "x"} for i in range(100)]
    response = _post(dataverse, "UpsertMultiple", targets)
    assert response.status_code == 204
    assert response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "5999"
    stats = dataverse.get("/_control/stats").json()
    assert stats["user app1 requests_in_window"] == 1
    assert 800 <= stats["user app1 execution_ms_in_window"] <= 2000
