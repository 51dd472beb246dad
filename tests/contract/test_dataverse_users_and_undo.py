"""Where the Dataverse emulator's user model, change tracking and all-or-nothing writes meet:
[limits] service protection limits are "evaluated per user" (powerapps-docs api-limits.md; reference dataverse.md
§5) — a person signing in is a user like an application user; [list-ref] CreatedBy/ModifiedBy record the caller
whatever message wrote the row, bulk messages included (reference dataverse.md §4, §12); [batch] a failing
changeset leaves nothing behind ("Execute batch operations using the Web API"), so neither a deletion nor what the
platform did with it (list memberships, the change tracking record) survives; [ct] change tracking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.dataverse_emulator.app import create_app
from devstack.dataverse_emulator.server import Emulator
from shared.adapters.odata_batch import build_batch
from shared.core.ports import BatchOperation
from tests.support import ThreadedServer

API = "/api/data/v9.2/"
APP_USER = "00000000-0000-0000-0000-0000000000a1"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(dataverse: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    response = dataverse.post(API + entity_set, json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_a_person_is_a_user_with_its_own_budget(dataverse: httpx.Client) -> None:
    """[limits] a person's token (A3's body shape) is limited per user like an application user's; /_control/users
    lists the emulator's own application user first, then the person."""
    person = dataverse.post("/_control/users", json={"fullname": "Dana (sales)"}).json()
    dataverse.post("/_control/limits", json={"requests_per_window": 2, "window_seconds": 60})
    as_person = _bearer(person["token"])
    assert [dataverse.get(API + "WhoAmI", headers=as_person).status_code for _ in range(3)] == [200, 200, 429]
    assert dataverse.get(API + "WhoAmI").json()["UserId"] == APP_USER
    stats = dataverse.get("/_control/stats").json()
    assert (stats["user Dana (sales) throttled"], stats["user app1 throttled"]) == (1, 0)
    listed = [(u["systemuserid"], u["fullname"]) for u in dataverse.get("/_control/users").json()]
    assert listed == [(APP_USER, "Integration user app1"), (person["systemuserid"], "Dana (sales)")]
    again = dataverse.post("/_control/users", json={"token": person["token"], "fullname": "Someone else"}).json()
    assert again == person  # a token already accepted keeps its user


def test_bulk_writes_record_the_caller(dataverse: httpx.Client) -> None:
    """[list-ref] CreateMultiple stamps createdby, modifiedby and the default owner with the calling person, as
    a single create does."""
    person = dataverse.post(
        "/_control/users", json={"fullname": "Sam", "systemuserid": "0000000a-0000-0000-0000-00000000000b"}
    )
    person_id = person.json()["systemuserid"]
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.lead", "subject": f"Walk-in {i}"} for i in range(2)]
    created = dataverse.post(
        API + "leads/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": targets},
        headers=_bearer(person.json()["token"]),
    )
    assert created.status_code == 200, created.text
    select = {"$select": "_createdby_value,_modifiedby_value,_ownerid_value"}
    for lead in created.json()["Ids"]:
        row = dataverse.get(API + f"leads({lead})", params=select).json()
        assert (row["_createdby_value"], row["_modifiedby_value"], row["_ownerid_value"]) == (person_id,) * 3


def test_a_rolled_back_changeset_keeps_memberships_and_reports_no_deletion(dataverse: httpx.Client) -> None:
    """[batch] a changeset deleting a list member's contact and then failing leaves the contact, its list
    membership and the list's membercount as they were, and [ct] the next delta reports nothing."""
    contact = _create(dataverse, "contacts", {"lastname": "Regular"})
    list_id = _create(dataverse, "lists", {"listname": "Regulars", "createdfromcode": 2})
    action = API + f"lists({list_id})/Microsoft.Dynamics.CRM.AddMemberList"
    assert dataverse.post(action, json={"EntityId": contact}).status_code == 200
    tracked = dataverse.get(API + "contacts", params={"$select": "lastname"}, headers={"Prefer": "odata.track-changes"})
    link = tracked.json()["@odata.deltaLink"]
    operations = [
        BatchOperation("DELETE", f"contacts({contact})", None),
        BatchOperation("PATCH", f"contacts({contact})", {"nosuchcolumn": 1}),
    ]
    content_type, body = build_batch(operations, str(dataverse.base_url) + API)
    assert dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type}).status_code == 400
    members = dataverse.get(API + f"lists({list_id})/listcontact_association", params={"$select": "lastname"})
    assert [row["contactid"] for row in members.json()["value"]] == [contact]
    assert dataverse.get(API + f"lists({list_id})", params={"$select": "membercount"}).json()["membercount"] == 1
    assert dataverse.get(link).json()["value"] == []
    assert dataverse.delete(API + f"contacts({contact})").status_code == 204
    assert [entry["id"] for entry in dataverse.get(link).json()["value"]] == [contact]


def test_routes_read_percent_encoded_names_and_keys_once(dataverse: httpx.Client) -> None:
    """The path outside key parentheses is decoded like any URL (`%24count` is `$count`); a key inside is
    decoded once, also on DELETE and a list action."""
    _create(dataverse, "contacts", {"lastname": "One", "tb_squarecustomerid": "O'1"})
    assert dataverse.get(API + "contacts/%24count").json() == 1
    list_id = _create(dataverse, "lists", {"listname": "L", "createdfromcode": 2})
    contact = _create(dataverse, "contacts", {"lastname": "Two"})
    encoded = API + f"lists(listid%3D{list_id})/Microsoft.Dynamics.CRM.AddMemberList"
    assert dataverse.post(encoded, json={"EntityId": contact}).status_code == 200
    assert dataverse.delete(API + "contacts(tb_squarecustomerid='O%27%271')").status_code == 204
    assert dataverse.get(API + "contacts/$count").json() == 1


@pytest.fixture
def two_apps() -> Iterator[str]:
    server = ThreadedServer(create_app(Emulator(token="first-app", extra_tokens=["second-app"]))).start()
    yield server.url
    server.stop()


def test_extra_tokens_are_application_users(two_apps: str) -> None:
    """`--extra-token`: another application user, with its own systemuser that WhoAmI answers."""
    users = httpx.get(f"{two_apps}/_control/users").json()
    assert [(u["name"], u["token"]) for u in users] == [("app1", "first-app"), ("app2", "second-app")]
    who = httpx.get(f"{two_apps}{API}WhoAmI", headers=_bearer("second-app")).json()
    assert who["UserId"] == users[1]["systemuserid"] != APP_USER
    row = httpx.get(f"{two_apps}{API}systemusers({who['UserId']})", headers=_bearer("first-app")).json()
    assert row["fullname"] == "Integration user app2"
