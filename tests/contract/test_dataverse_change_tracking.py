"""Change tracking and the calling user in the Dataverse emulator, against the documented behaviour:
[ct] powerapps-docs developer/data-platform/use-change-tracking-synchronize-data-external-systems.md (2023-06-23),
[3862] MicrosoftDocs/powerapps-docs issue 3862 (token only on the last page of the initial load),
[errcodes] powerapps-docs includes/data-service-error-codes.md (ExpiredVersionStamp 0x80044352),
[list-ref] the table references' read-only CreatedBy / ModifiedBy lookups (shared/design/reference/dataverse.md)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shared.adapters.odata_batch import build_batch
from shared.core.ports import BatchOperation

API = "/api/data/v9.2/"
TRACK = {"Prefer": "odata.track-changes"}
APP_USER = "00000000-0000-0000-0000-0000000000a1"
EXPIRED = "Version stamp associated with the client has expired. Please perform a full sync."


def _create(dataverse: httpx.Client, entity_set: str, body: dict[str, Any], token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = dataverse.post(API + entity_set, json=body, headers=headers)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _initial(dataverse: httpx.Client, select: str = "firstname,lastname") -> dict[str, Any]:
    response = dataverse.get(API + "contacts", params={"$select": select}, headers=TRACK)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _delta(dataverse: httpx.Client, link: str, **headers: str) -> httpx.Response:
    return dataverse.get(link, headers=headers)


def test_first_read_returns_every_row_and_a_delta_link(dataverse: httpx.Client) -> None:
    """[ct] "Retrieve changes in tables using Web API example": rows, Preference-Applied and @odata.deltaLink."""
    ada = _create(dataverse, "contacts", {"firstname": "Ada", "lastname": "L"})
    _create(dataverse, "contacts", {"firstname": "Alan", "lastname": "T"})
    response = dataverse.get(API + "contacts", params={"$select": "firstname,lastname"}, headers=TRACK)
    assert response.headers["Preference-Applied"] == "odata.track-changes"
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#contacts(firstname,lastname)")
    assert "?$select=firstname,lastname&$deltatoken=" in body["@odata.deltaLink"]
    assert "@odata.nextLink" not in body
    rows = {row["contactid"]: row for row in body["value"]}
    assert set(rows[ada]) == {"@odata.etag", "contactid", "firstname", "lastname"}
    assert {row["firstname"] for row in rows.values()} == {"Ada", "Alan"}


def test_delta_has_changed_and_new_rows_first_then_deletions(dataverse: httpx.Client) -> None:
    """[ct] the delta link answers `…/$delta`, new and updated rows first, then `$deletedEntity` entries, and a
    new delta link; with no change since, the value is empty."""
    kept = _create(dataverse, "contacts", {"firstname": "Kept", "lastname": "K"})
    gone = _create(dataverse, "contacts", {"firstname": "Gone", "lastname": "G"})
    link = _initial(dataverse)["@odata.deltaLink"]
    assert dataverse.patch(API + f"contacts({kept})", json={"firstname": "Changed"}).status_code == 204
    new = _create(dataverse, "contacts", {"firstname": "New", "lastname": "N"})
    assert dataverse.delete(API + f"contacts({gone})").status_code == 204
    delta = _delta(dataverse, link).json()
    assert delta["@odata.context"].endswith("$metadata#contacts(firstname,lastname)/$delta")
    values = delta["value"]
    assert [row.get("contactid") for row in values[:2]] == [kept, new]
    assert values[0]["firstname"] == "Changed" and values[1]["firstname"] == "New"
    base = str(dataverse.base_url) + API
    assert values[2] == {"@odata.context": f"{base}$metadata#contacts/$deletedEntity", "id": gone, "reason": "deleted"}
    assert len(values) == 3
    quiet = _delta(dataverse, delta["@odata.deltaLink"]).json()
    assert quiet["value"] == [] and "$deltatoken=" in quiet["@odata.deltaLink"]


def test_a_row_created_and_deleted_between_polls_is_reported_deleted(dataverse: httpx.Client) -> None:
    """[ct] "a record is created and deleted before the next query … they'll get the deleted item"."""
    link = _initial(dataverse)["@odata.deltaLink"]
    brief = _create(dataverse, "contacts", {"lastname": "Brief"})
    assert dataverse.delete(API + f"contacts({brief})").status_code == 204
    values = _delta(dataverse, link).json()["value"]
    assert [(v.get("id"), v.get("reason")) for v in values] == [(brief, "deleted")]


def test_deactivation_is_an_update_and_delete_is_a_deletion(dataverse: httpx.Client) -> None:
    """[ct] only a real delete is a `$deletedEntity`; a statecode change is a changed row."""
    row = _create(dataverse, "contacts", {"lastname": "Quits"})
    link = _initial(dataverse, "statecode,statuscode")["@odata.deltaLink"]
    assert dataverse.patch(API + f"contacts({row})", json={"statecode": 1, "statuscode": 2}).status_code == 204
    delta = _delta(dataverse, link).json()
    assert [(v["contactid"], v["statecode"]) for v in delta["value"]] == [(row, 1)]
    assert dataverse.delete(API + f"contacts({row})").status_code == 204
    assert dataverse.delete(API + f"contacts({row})").status_code == 404
    assert _delta(dataverse, delta["@odata.deltaLink"]).json()["value"][0]["reason"] == "deleted"


def test_filter_orderby_expand_and_top_are_refused(dataverse: httpx.Client) -> None:
    """[ct] "Query options not supported in Change Tracking Web API request" — the documented message."""
    for option, value in (("$filter", "lastname eq 'x'"), ("$orderby", "lastname"), ("$expand", "x"), ("$top", "1")):
        response = dataverse.get(API + "contacts", params={"$select": "lastname", option: value}, headers=TRACK)
        assert response.status_code == 400
        assert response.json()["error"]["message"] == (
            f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
        )
    link = _initial(dataverse)["@odata.deltaLink"]
    assert dataverse.get(link + "&$top=1").status_code == 400
    assert dataverse.get(API + "contacts", params={"$top": "1"}).status_code == 200  # without the preference


def test_paged_first_read_gives_the_token_only_on_the_last_page(dataverse: httpx.Client) -> None:
    """[3862] the token arrives only on the last page and stands for that moment: a row changed after its page
    was read is not in the next delta — the gap a full resynchronisation has to cover."""
    ids = sorted(_create(dataverse, "contacts", {"lastname": f"P{i}"}) for i in range(5))
    prefer = {"Prefer": "odata.track-changes,odata.maxpagesize=2"}
    page = dataverse.get(API + "contacts", params={"$select": "lastname"}, headers=prefer).json()
    seen = [row["contactid"] for row in page["value"]]
    assert "@odata.deltaLink" not in page and "@odata.nextLink" in page
    assert dataverse.patch(API + f"contacts({seen[0]})", json={"lastname": "Changed mid-read"}).status_code == 204
    pages = 1
    while "@odata.nextLink" in page:
        assert "@odata.deltaLink" not in page
        page = dataverse.get(page["@odata.nextLink"], headers=prefer).json()
        seen += [row["contactid"] for row in page["value"]]
        pages += 1
    assert pages == 3 and seen == ids
    assert _delta(dataverse, page["@odata.deltaLink"]).json()["value"] == []


def test_delta_pages_deliver_every_change_and_later_changes_come_next_poll(dataverse: httpx.Client) -> None:
    """[ct] "If the new or updated item collection is greater than 5000, the user can page through" — here with
    odata.maxpagesize; a change made while paging is delivered by the next poll, not lost."""
    link = _initial(dataverse)["@odata.deltaLink"]
    created = [_create(dataverse, "contacts", {"lastname": f"D{i}"}) for i in range(5)]
    prefer = {"Prefer": "odata.maxpagesize=2"}
    page = dataverse.get(link, headers=prefer).json()
    delivered = [row["contactid"] for row in page["value"]]
    assert dataverse.patch(API + f"contacts({created[0]})", json={"lastname": "Again"}).status_code == 204
    while "@odata.nextLink" in page:
        page = dataverse.get(page["@odata.nextLink"], headers=prefer).json()
        delivered += [row["contactid"] for row in page["value"]]
    assert delivered == created
    again = _delta(dataverse, page["@odata.deltaLink"]).json()["value"]
    assert [(row["contactid"], row["lastname"]) for row in again] == [(created[0], "Again")]


def test_tokens_expire_on_demand_and_by_age(dataverse: httpx.Client) -> None:
    """[ct] tokens older than ExpireChangeTrackingInDays raise an error; [errcodes] ExpiredVersionStamp."""
    link = _initial(dataverse)["@odata.deltaLink"]
    assert dataverse.post("/_control/change-tracking", json={"expire_tokens": True}).status_code == 200
    expired = _delta(dataverse, link)
    assert expired.status_code == 400
    assert expired.json()["error"] == {"code": "0x80044352", "message": EXPIRED}
    fresh = _initial(dataverse)["@odata.deltaLink"]
    assert _delta(dataverse, fresh).status_code == 200
    dataverse.post("/_control/change-tracking", json={"token_max_age_seconds": 0.2})
    aging = _initial(dataverse)["@odata.deltaLink"]
    time.sleep(0.3)
    assert _delta(dataverse, aging).json()["error"]["code"] == "0x80044352"
    forged = link.split("$deltatoken=")[0] + "$deltatoken=1%2101%2F01%2F2020%2000%3A00%3A00"
    assert _delta(dataverse, forged).json()["error"]["code"] == "0x80044352"


def test_count_of_changes_since_a_token(dataverse: httpx.Client) -> None:
    """[ct] "Retrieve count of the changes made in tables": `<set>/$count?$deltatoken=…`."""
    link = _initial(dataverse)["@odata.deltaLink"]
    token = link.split("$deltatoken=")[1]
    first = _create(dataverse, "contacts", {"lastname": "C1"})
    _create(dataverse, "contacts", {"lastname": "C2"})
    dataverse.delete(API + f"contacts({first})")
    counted = dataverse.get(f"{API}contacts/$count?$deltatoken={token}")
    assert counted.status_code == 200 and int(counted.text) == 2  # C2 new, C1 deleted
    assert int(dataverse.get(API + "contacts/$count").text) == 1


def test_only_tables_with_change_tracking_give_delta_links(dataverse: httpx.Client) -> None:
    """[ct] "Enable change tracking for a table": elsewhere the preference is not applied (no delta link);
    enabling it (it can't be disabled) makes the table answer with one."""
    plain = dataverse.get(API + "leads", params={"$select": "subject"}, headers=TRACK)
    assert plain.status_code == 200 and "Preference-Applied" not in plain.headers
    assert "@odata.deltaLink" not in plain.json()
    state = dataverse.post("/_control/change-tracking", json={"enable": ["leads"]}).json()
    assert state["enabled"] == ["contact", "lead"]
    tracked = dataverse.get(API + "leads", params={"$select": "subject"}, headers=TRACK)
    assert tracked.headers["Preference-Applied"] == "odata.track-changes" and "@odata.deltaLink" in tracked.json()


def test_a_rolled_back_delete_is_not_reported(dataverse: httpx.Client) -> None:
    """[ct] deletions are changes that happened: a changeset that fails rolls its delete back (reference
    dataverse.md §4 $batch), so the next delta reports nothing."""
    row = _create(dataverse, "contacts", {"lastname": "Survives"})
    link = _initial(dataverse)["@odata.deltaLink"]
    operations = [
        BatchOperation("DELETE", f"contacts({row})", None),
        BatchOperation("PATCH", f"contacts({row})", {"nosuchcolumn": 1}),
    ]
    content_type, body = build_batch(operations, str(dataverse.base_url) + API)
    failed = dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type})
    assert failed.status_code == 400
    assert dataverse.get(API + f"contacts({row})").status_code == 200
    assert _delta(dataverse, link).json()["value"] == []


def test_every_write_records_the_calling_user(dataverse: httpx.Client) -> None:
    """[list-ref] CreatedBy/ModifiedBy are read-only lookups the platform fills with the caller; WhoAmI answers
    the caller; a person's edit shows their id, so a sync can tell its own writes (echo suppression)."""
    assert dataverse.get(API + "WhoAmI").json()["UserId"] == APP_USER
    row = _create(dataverse, "contacts", {"lastname": "Audited", "_modifiedby_value": "not-me"})
    select = {"$select": "_createdby_value,_modifiedby_value"}
    audit = dataverse.get(API + f"contacts({row})", params=select).json()
    assert (audit["_createdby_value"], audit["_modifiedby_value"]) == (APP_USER, APP_USER)
    person = dataverse.post("/_control/users", json={"fullname": "Dana (sales)"}).json()
    as_person = {"Authorization": f"Bearer {person['token']}"}
    assert dataverse.get(API + "WhoAmI", headers=as_person).json()["UserId"] == person["systemuserid"]
    link = _initial(dataverse, "lastname,_modifiedby_value")["@odata.deltaLink"]
    assert dataverse.patch(API + f"contacts({row})", json={"lastname": "Fixed"}, headers=as_person).status_code == 204
    audit = dataverse.get(API + f"contacts({row})", params=select).json()
    assert (audit["_createdby_value"], audit["_modifiedby_value"]) == (APP_USER, person["systemuserid"])
    changed = _delta(dataverse, link).json()["value"]
    assert [(v["lastname"], v["_modifiedby_value"]) for v in changed] == [("Fixed", person["systemuserid"])]
    user = dataverse.get(API + f"systemusers({person['systemuserid']})", params={"$select": "fullname"}).json()
    assert user["fullname"] == "Dana (sales)"
    assert dataverse.get(API + "WhoAmI", headers={"Authorization": "Bearer nobody"}).status_code == 401
