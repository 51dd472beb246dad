"""The Dataverse emulator against the documented Web API behaviour (shared/design/reference/dataverse.md:
Upsert, conditional operations, alternate keys, paging, Merge, error codes, service protection)."""

from __future__ import annotations

import re
import threading

import httpx

API = "/api/data/v9.2/"
KEY = "contacts(tb_squarecustomerid='SQ1')"
GUID = re.compile(r"contacts\(([0-9a-f-]{36})\)$")


def _id(response: httpx.Response) -> str:
    match = GUID.search(response.headers["OData-EntityId"])
    assert match is not None
    return match.group(1)


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return response.status_code, body["error"]["code"]


def test_upsert_by_alternate_key_creates_then_updates_with_204(dataverse: httpx.Client) -> None:
    created = dataverse.patch(API + KEY, json={"firstname": "Ada"})
    updated = dataverse.patch(API + KEY, json={"firstname": "Augusta"})
    assert created.status_code == updated.status_code == 204
    assert _id(created) == _id(updated)
    row = dataverse.get(API + KEY, params={"$select": "firstname,tb_squarecustomerid"}).json()
    assert (
        row["firstname"] == "Augusta" and row["tb_squarecustomerid"] == "SQ1" and row["@odata.etag"].startswith('W/"')
    )
    assert set(row) == {"@odata.context", "@odata.etag", "contactid", "firstname", "tb_squarecustomerid"}


def test_return_representation_tells_created_from_updated(dataverse: httpx.Client) -> None:
    prefer = {"Prefer": "return=representation"}
    assert dataverse.patch(API + KEY, json={"firstname": "A"}, headers=prefer).status_code == 201
    assert dataverse.patch(API + KEY, json={"firstname": "B"}, headers=prefer).status_code == 200


def test_conditional_headers(dataverse: httpx.Client) -> None:
    assert _error(dataverse.patch(API + KEY, json={}, headers={"If-Match": "*"})) == (404, "0x80060891")
    missing_guid = API + "contacts(00000000-0000-0000-0000-000000000009)"
    assert _error(dataverse.patch(missing_guid, json={}, headers={"If-Match": "*"})) == (404, "0x80040217")
    dataverse.patch(API + KEY, json={"firstname": "A"})
    assert _error(dataverse.patch(API + KEY, json={}, headers={"If-None-Match": "*"}))[0] == 412
    stale = dataverse.patch(API + KEY, json={}, headers={"If-Match": 'W/"1"'})
    assert _error(stale) == (412, "0x80060882")


def test_create_returns_entity_id_and_keys_are_unique(dataverse: httpx.Client) -> None:
    created = dataverse.post(API + "contacts", json={"lastname": "X", "tb_squarecustomerid": "DUP"})
    assert created.status_code == 204 and _id(created)
    assert _error(dataverse.post(API + "contacts", json={"tb_squarecustomerid": "DUP"})) == (412, "0x80060892")


def test_filter_select_top_and_paging(dataverse: httpx.Client) -> None:
    for index in range(5):
        dataverse.post(API + "contacts", json={"emailaddress1": f"Person{index}@Example.com", "lastname": "P"})
    found = dataverse.get(
        API + "contacts", params={"$filter": "emailaddress1 eq 'person3@example.com'", "$select": "emailaddress1"}
    )
    assert [row["emailaddress1"] for row in found.json()["value"]] == ["Person3@Example.com"]
    assert len(dataverse.get(API + "contacts", params={"$top": "2"}).json()["value"]) == 2
    page = dataverse.get(API + "contacts", headers={"Prefer": "odata.maxpagesize=2"}).json()
    seen = len(page["value"])
    while "@odata.nextLink" in page:
        page = dataverse.get(page["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}).json()
        seen += len(page["value"])
    assert seen == 5
    assert _error(dataverse.get(API + "contacts", params={"$filter": "lastname like 'P'"}))[0] == 400


def test_filter_by_a_date_time_literal(dataverse: httpx.Client) -> None:
    """DateTimeOffset literals are unquoted in $filter (OData 4.0 ABNF dateTimeOffsetValue) and compared with
    the `ge`/`gt` operators of Dataverse's "Filter rows using OData": the two-way catch-up query relies on it."""
    dataverse.post(API + "contacts", json={"lastname": "Recent"})
    rows = dataverse.get(API + "contacts", params={"$select": "lastname,modifiedon"}).json()["value"]
    modified = rows[-1]["modifiedon"]
    later = dataverse.get(API + "contacts", params={"$filter": "modifiedon gt 2999-01-01T00:00:00Z"}).json()
    since = dataverse.get(API + "contacts", params={"$filter": f"modifiedon ge {modified}"}).json()
    assert later["value"] == [] and "Recent" in [r["lastname"] for r in since["value"]]


def test_merge_deactivates_the_subordinate(dataverse: httpx.Client) -> None:
    target = _id(dataverse.post(API + "contacts", json={"lastname": "Keep"}))
    subordinate = _id(dataverse.post(API + "contacts", json={"lastname": "Lose"}))
    contact = "Microsoft.Dynamics.CRM.contact"
    body = {
        "Target": {"@odata.type": contact, "contactid": target},
        "Subordinate": {"@odata.type": contact, "contactid": subordinate},
        "UpdateContent": {"@odata.type": contact, "firstname": "Merged"},
        "PerformParentingChecks": False,
    }
    assert dataverse.post(API + "Merge", json=body).status_code == 204
    lost = dataverse.get(API + f"contacts({subordinate})").json()
    assert (lost["statecode"], lost["statuscode"], lost["merged"], lost["_masterid_value"]) == (1, 2, True, target)
    assert dataverse.get(API + f"contacts({target})").json()["firstname"] == "Merged"
    del body["Target"]["@odata.type"]
    assert _error(dataverse.post(API + "Merge", json=body))[0] == 400


def test_validation_errors_use_dataverse_codes(dataverse: httpx.Client) -> None:
    assert _error(dataverse.patch(API + KEY, json={"firstname": "x" * 51})) == (400, "0x80044331")
    assert _error(dataverse.patch(API + KEY, json={"nosuchcolumn": 1}))[0] == 400
    assert _error(dataverse.get(API + "Contacts"))[1] == "0x8006088a"  # entity set names are case-sensitive
    assert _error(dataverse.get(API + "contacts(emailaddress1='a@b.com')"))[0] == 400  # not a defined key


def test_bearer_token_is_required(dataverse: httpx.Client) -> None:
    response = httpx.get(f"{dataverse.base_url}{API}WhoAmI")
    assert response.status_code == 401
    who = dataverse.get(API + "WhoAmI")
    assert who.status_code == 200 and who.headers["x-ms-dop-hint"] == "50" and "UserId" in who.json()


def test_request_limit_answers_429_with_retry_after(dataverse: httpx.Client) -> None:
    dataverse.post("/_control/limits", json={"requests_per_window": 3, "window_seconds": 60, "retry_after_seconds": 7})
    statuses = [dataverse.get(API + "WhoAmI").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = dataverse.get(API + "WhoAmI")
    assert _error(throttled) == (429, "0x80072322") and float(throttled.headers["Retry-After"]) >= 7


def test_concurrency_limit_is_immediate(dataverse: httpx.Client) -> None:
    dataverse.post("/_control/limits", json={"max_concurrency": 1, "latency_ms": 300})
    results: list[int] = []

    def call() -> None:
        results.append(httpx.get(f"{dataverse.base_url}{API}WhoAmI", headers=dict(dataverse.headers)).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 429, 429]


def test_injected_faults_are_consumed(dataverse: httpx.Client) -> None:
    dataverse.post("/_control/faults", json={"status": 503, "count": 2, "method": "PATCH"})
    codes = [dataverse.patch(API + KEY, json={"firstname": "A"}).status_code for _ in range(3)]
    assert codes == [503, 503, 204]
