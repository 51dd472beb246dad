"""The Dataverse emulator refuses what Dataverse refuses. Every test names its source; the rules are listed in
docs/emulator-fidelity.md (section "Dataverse"). Sources: shared/design/reference/dataverse.md (§ numbers) and
the Microsoft Learn pages it cites."""

from __future__ import annotations

import httpx
import pytest

from shared.adapters.odata_batch import build_batch, parse_batch_response
from shared.core.ports import BatchOperation

API = "/api/data/v9.2/"
KEY_COLUMN = "tb_squarecustomerid"


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["code"]


def _contact(dataverse: httpx.Client, key: str, **values: object) -> httpx.Response:
    return dataverse.patch(API + f"contacts({KEY_COLUMN}='{key}')", json={"lastname": "L", **values})


# -- alternate-key values: refused characters, decoded exactly once -----------------------------------------------


@pytest.mark.parametrize("character", list("/<>*%&:\\?+"))
def test_key_values_with_refused_characters_fail_get_patch_and_upsert(dataverse: httpx.Client, character: str) -> None:
    """ "Work with alternate keys" (Unicode characters in key value): with / < > * % & : \\ ? + in a key value,
    GET, PATCH and upsert by key don't work (reference §3); Dataverse answers 400 0x8006088a "Bad Request - Error
    in query syntax." (powerapps-docs issue 117). The character is sent percent-encoded, as OData asks."""
    encoded = f"%{ord(character):02X}"
    url = API + f"contacts({KEY_COLUMN}='A{encoded}B')"
    assert _error(dataverse.get(url)) == (400, "0x8006088a")
    assert _error(dataverse.patch(url, json={"lastname": "x"})) == (400, "0x8006088a")
    assert _error(dataverse.patch(url, json={"lastname": "x"}, headers={"If-Match": "*"})) == (400, "0x8006088a")
    assert _error(dataverse.delete(url)) == (400, "0x8006088a")
    assert dataverse.get("/_control/tables/contacts").json() == []


def test_key_values_with_refused_characters_fail_in_bind_and_odata_id(dataverse: httpx.Client) -> None:
    """The same rule holds where a key addresses a row inside a body: @odata.bind (powerapps-docs issue 117)
    and an UpsertMultiple Target's @odata.id ("Use an alternate key to reference a record")."""
    bind = {"tb_name": "Sale", "tb_LocationId@odata.bind": "/tb_locations(tb_squarelocationid='L%3A1')"}
    assert _error(dataverse.patch(API + "tb_transactions(tb_squareorderid='O1')", json=bind)) == (400, "0x8006088a")
    target = {"@odata.type": "Microsoft.Dynamics.CRM.contact", "@odata.id": f"contacts({KEY_COLUMN}='a+b')"}
    response = dataverse.post(API + "contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [target]})
    assert _error(response) == (400, "0x8006088a")


def test_key_segments_are_percent_decoded_exactly_once(dataverse: httpx.Client) -> None:
    """Issue 9 item 8: `RT%27%27x` is the value RT'x (quote doubled, then encoded); `RT%2527x` is the text
    `RT%27x`, which holds % and is refused — never silently stored under another value."""
    assert _contact(dataverse, "RT%27%27x").status_code == 204
    assert [r[KEY_COLUMN] for r in dataverse.get("/_control/tables/contacts").json()] == ["RT'x"]
    assert _error(_contact(dataverse, "RT%2527x")) == (400, "0x8006088a")
    assert dataverse.get(API + f"contacts({KEY_COLUMN}='RT%27%27x')").json()[KEY_COLUMN] == "RT'x"


def test_batch_request_lines_and_bind_references_are_decoded_once(dataverse: httpx.Client) -> None:
    """A $batch part's URL and an @odata.bind value are URLs like any other: decoded once ("Execute batch
    operations using the Web API"; reference §4, §7)."""
    root = f"{dataverse.base_url}{API}"
    operations = [
        BatchOperation("PATCH", "tb_locations(tb_squarelocationid='L%27%27s')", {"tb_name": "Lou's"}),
        BatchOperation(
            "PATCH",
            "tb_transactions(tb_squareorderid='O%20A')",
            {"tb_name": "Sale", "tb_LocationId@odata.bind": "/tb_locations(tb_squarelocationid='L%27%27s')"},
        ),
    ]
    content_type, body = build_batch(operations, root)
    response = dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert [r["tb_squarelocationid"] for r in dataverse.get("/_control/tables/tb_locations").json()] == ["L's"]
    (sale,) = dataverse.get("/_control/tables/tb_transactions").json()
    assert sale["tb_squareorderid"] == "O A" and sale["_tb_locationid_value"]
    refused = [BatchOperation("PATCH", "tb_locations(tb_squarelocationid='L%2527s')", {"tb_name": "x"})]
    content_type, body = build_batch(refused, root)
    failed = dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type})
    assert failed.status_code == 400
    assert parse_batch_response(failed.headers["Content-Type"], failed.content)[0].status == 400


def test_only_defined_keys_address_rows_and_systemuser_has_no_named_key(dataverse: httpx.Client) -> None:
    """ "Use an alternate key to reference a record": columns that are not a defined key → "The key in the request
    URI is not valid"; systemuser and team can't be addressed by a named primary key (reference §3, §7)."""
    assert _error(dataverse.get(API + "contacts(emailaddress1='a@b.com')"))[0] == 400
    user_id = dataverse.get(API + "WhoAmI").json()["UserId"]
    assert dataverse.get(API + f"systemusers({user_id})").status_code == 200
    assert _error(dataverse.get(API + f"systemusers(systemuserid={user_id})"))[0] == 400
    created = dataverse.post(API + "contacts", json={"lastname": "Named"})
    contact_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    assert dataverse.get(API + f"contacts(contactid={contact_id})").json()["lastname"] == "Named"


# -- columns, lookups, names ----------------------------------------------------------------------------------------


def test_column_lengths_come_from_the_schema_metadata(dataverse: httpx.Client) -> None:
    """Text columns have the MaxLength their metadata declares — here the ones `tillbridge schema apply` creates
    from infra/dataverse/schema.json (Currency 3, Name 200): longer values → 400 0x80044331 (reference §4, [batch]
    example "The length of the 'subject' attribute …")."""
    location = API + "tb_locations(tb_squarelocationid='L1')"
    assert dataverse.patch(location, json={"tb_currency": "USD", "tb_name": "x" * 200}).status_code == 204
    assert _error(dataverse.patch(location, json={"tb_currency": "USDX"})) == (400, "0x80044331")
    assert _error(dataverse.patch(location, json={"tb_name": "x" * 201})) == (400, "0x80044331")


def test_bind_to_a_missing_row_is_404_with_the_documented_code(dataverse: httpx.Client) -> None:
    """@odata.bind to a row that does not exist: by key → 404 0x80060891 RecordNotFoundByEntityKey, by id →
    404 0x80040217 ObjectDoesNotExist (reference §6 error table)."""
    order = API + "tb_transactions(tb_squareorderid='O1')"
    by_key = {"tb_name": "Sale", "tb_LocationId@odata.bind": "/tb_locations(tb_squarelocationid='NOPE')"}
    assert _error(dataverse.patch(order, json=by_key)) == (404, "0x80060891")
    by_id = {"tb_name": "Sale", "tb_LocationId@odata.bind": "/tb_locations(00000000-0000-0000-0000-000000000009)"}
    assert _error(dataverse.patch(order, json=by_id)) == (404, "0x80040217")
    assert dataverse.get("/_control/tables/tb_transactions").json() == []


def test_entity_sets_and_navigation_properties_are_case_sensitive(dataverse: httpx.Client) -> None:
    """Entity set names are case-sensitive (404 0x8006088a, [clienterr]); a custom lookup's navigation property
    is its SchemaName casing, checked case-sensitively (400 undeclared property, SDK PR #137; reference §2, §7)."""
    assert _error(dataverse.get(API + "Contacts")) == (404, "0x8006088a")
    dataverse.patch(API + "tb_locations(tb_squarelocationid='L1')", json={"tb_name": "Store"})
    order = API + "tb_transactions(tb_squareorderid='O1')"
    lower = {"tb_name": "Sale", "tb_locationid@odata.bind": "/tb_locations(tb_squarelocationid='L1')"}
    assert _error(dataverse.patch(order, json=lower))[0] == 400
    schema_cased = {"tb_name": "Sale", "tb_LocationId@odata.bind": "/tb_locations(tb_squarelocationid='L1')"}
    assert dataverse.patch(order, json=schema_cased).status_code == 204


def test_unknown_properties_are_refused_in_select_filter_and_orderby(dataverse: httpx.Client) -> None:
    """A property the table doesn't have: "Could not find a property named …" (400) in $select, $filter and
    $orderby — a misspelt column never silently matches nothing ("Query data using the Web API")."""
    for params in ({"$select": "nosuch"}, {"$filter": "nosuch eq 'x'"}, {"$orderby": "nosuch desc"}):
        assert _error(dataverse.get(API + "contacts", params=params))[0] == 400


# -- conditional operations and delete ------------------------------------------------------------------------------


def test_if_match_and_if_none_match(dataverse: httpx.Client) -> None:
    """ "Perform conditional operations using the Web API" (reference §2 table): If-Match: * never creates
    (404), If-None-Match: * never updates (412), a stale ETag → 412 0x80060882; the current ETag updates."""
    url = API + f"contacts({KEY_COLUMN}='C1')"
    assert _error(dataverse.patch(url, json={"lastname": "A"}, headers={"If-Match": "*"})) == (404, "0x80060891")
    assert dataverse.patch(url, json={"lastname": "A"}, headers={"If-None-Match": "*"}).status_code == 204
    assert _error(dataverse.patch(url, json={"lastname": "B"}, headers={"If-None-Match": "*"}))[0] == 412
    etag = dataverse.get(url).json()["@odata.etag"]
    assert dataverse.patch(url, json={"lastname": "C"}, headers={"If-Match": etag}).status_code == 204
    assert _error(dataverse.patch(url, json={"lastname": "D"}, headers={"If-Match": etag})) == (412, "0x80060882")
    assert dataverse.get(url).json()["lastname"] == "C"


def test_delete_by_id_and_by_key(dataverse: httpx.Client) -> None:
    """DELETE a row by id or by alternate key → 204; a missing row → 404 ("Update and delete table rows using
    the Web API"; "Use an alternate key to reference a record")."""
    _contact(dataverse, "D1")
    created = dataverse.post(API + "contacts", json={"lastname": "ById"})
    row_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    assert dataverse.delete(API + f"contacts({KEY_COLUMN}='D1')").status_code == 204
    assert dataverse.delete(API + f"contacts({row_id})").status_code == 204
    assert _error(dataverse.delete(API + f"contacts({row_id})")) == (404, "0x80040217")
    assert _error(dataverse.delete(API + f"contacts({KEY_COLUMN}='D1')")) == (404, "0x80060891")
    assert dataverse.get("/_control/tables/contacts").json() == []


def test_orderby_count_and_paging(dataverse: httpx.Client) -> None:
    """$orderby (asc/desc, several columns), $count=true → @odata.count, and paging by odata.maxpagesize keep
    the order across pages ("Query data using the Web API", "Page results")."""
    for index, name in enumerate(["delta", "Alpha", "charlie", "bravo", "echo"]):
        dataverse.post(API + "contacts", json={"lastname": name, "firstname": str(index % 2)})
    headers = {"Prefer": "odata.maxpagesize=2"}
    page = dataverse.get(API + "contacts", params={"$orderby": "lastname desc", "$count": "true"}, headers=headers)
    assert page.json()["@odata.count"] == 5
    names = [row["lastname"] for row in page.json()["value"]]
    while "@odata.nextLink" in page.json():
        page = dataverse.get(page.json()["@odata.nextLink"], headers=headers)
        names += [row["lastname"] for row in page.json()["value"]]
    assert names == ["echo", "delta", "charlie", "bravo", "Alpha"]
    two_keys = dataverse.get(API + "contacts", params={"$orderby": "firstname asc,lastname asc"}).json()["value"]
    assert [r["lastname"] for r in two_keys] == ["charlie", "delta", "echo", "Alpha", "bravo"]


# -- $batch rules ---------------------------------------------------------------------------------------------------


def test_batch_rules(dataverse: httpx.Client) -> None:
    """ "Execute batch operations using the Web API" (reference §4): at most 1,000 requests per batch, batches
    can't be nested, GET is not allowed inside a changeset. Each is refused as a whole: 400, nothing written."""
    root = f"{dataverse.base_url}{API}"
    too_many = [BatchOperation("PATCH", f"contacts({KEY_COLUMN}='B{i}')", {"lastname": "x"}) for i in range(1001)]
    content_type, body = build_batch(too_many, root)
    assert dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type}).status_code == 400
    content_type, body = build_batch(too_many[:1000], root)
    assert dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type}).status_code == 200
    assert len(dataverse.get("/_control/tables/contacts").json()) == 1000
    for operation in (BatchOperation("GET", "contacts", None), BatchOperation("POST", "$batch", {})):
        content_type, body = build_batch([operation], root)
        refused = dataverse.post(API + "$batch", content=body, headers={"Content-Type": content_type})
        assert _error(refused)[0] == 400


def test_control_faults_lists_the_pending_faults(dataverse: httpx.Client) -> None:
    """Issue 9 item 8: GET /_control/faults answered 500."""
    assert dataverse.get("/_control/faults").json() == []
    dataverse.post("/_control/faults", json={"status": 503, "count": 2})
    assert [(f["status"], f["count"]) for f in dataverse.get("/_control/faults").json()] == [(503, 2)]
