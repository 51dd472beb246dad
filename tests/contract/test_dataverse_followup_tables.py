"""lead, opportunity, task, list and list membership in the Dataverse emulator, against the table references:
[lead-ref] [opp-ref] [list-ref] MicrosoftDocs/dynamics-365-customer-engagement ce/sales/developer/entities/
{lead,opportunity,list}.md, [member-ref] ce/developer/reference/entities/listmember.md, [task-ref] powerapps-docs
developer/data-platform/reference/entities/task.md, [reqlevel] "only SystemRequired is enforced" (reference
dataverse.md §8), [addmember] AddMemberList / AddMemberListResponse / AddListMembersList Web API references,
[altdef] alternate keys through the metadata API (reference dataverse.md §3, §9)."""

from __future__ import annotations

import time
from typing import Any

import httpx

API = "/api/data/v9.2/"
APP_USER = "00000000-0000-0000-0000-0000000000a1"
CONTACT_LIST, LEAD_LIST = 2, 4


def _create(dataverse: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    response = dataverse.post(API + entity_set, json=body)
    assert response.status_code == 204, response.text
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(f"{dataverse.base_url}{API}{entity_set}(")
    return entity_id.rsplit("(", 1)[1].rstrip(")")


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def _get(dataverse: httpx.Client, path: str, select: str) -> dict[str, Any]:
    response = dataverse.get(API + path, params={"$select": select})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _list(dataverse: httpx.Client, member_type: int = CONTACT_LIST, **extra: Any) -> str:
    return _create(dataverse, "lists", {"listname": "Regulars", "createdfromcode": member_type, **extra})


def test_tables_have_their_entity_sets_primary_ids_and_default_states(dataverse: httpx.Client) -> None:
    """[lead-ref] [opp-ref] [task-ref] [list-ref] entity sets, primary ids (task: activityid) and the statecode /
    statuscode a new row starts in (lead New 1, opportunity In Progress 1, task Not Started 2, list Active 0)."""
    expected = {
        "leads": ({"subject": "Walk-in"}, "leadid", (0, 1)),
        "opportunities": ({"name": "Big basket"}, "opportunityid", (0, 1)),
        "tasks": ({"subject": "Call back"}, "activityid", (0, 2)),
        "lists": ({"listname": "L", "createdfromcode": CONTACT_LIST}, "listid", (0, 0)),
    }
    for entity_set, (body, primary_id, states) in expected.items():
        row_id = _create(dataverse, entity_set, body)
        row = _get(dataverse, f"{entity_set}({row_id})", "statecode,statuscode")
        assert row[primary_id] == row_id and (row["statecode"], row["statuscode"]) == states
    assert _error(dataverse.get(API + "Leads")) == (404, "0x8006088a")


def test_string_lengths_are_enforced(dataverse: httpx.Client) -> None:
    """[lead-ref] subject 300, mobilephone 20; [opp-ref] name 300; [task-ref] subject 200; [list-ref] listname
    128 — longer values are a validation error."""
    too_long = [
        ("leads", {"subject": "x" * 301}),
        ("leads", {"mobilephone": "1" * 21}),
        ("opportunities", {"name": "x" * 301}),
        ("tasks", {"subject": "x" * 201}),
        ("lists", {"listname": "x" * 129, "createdfromcode": CONTACT_LIST}),
    ]
    for entity_set, body in too_long:
        assert _error(dataverse.post(API + entity_set, json=body)) == (400, "0x80044331")
    _create(dataverse, "leads", {"subject": "x" * 300, "mobilephone": "1" * 20})
    assert _error(dataverse.post(API + "leads", json={"nosuchcolumn": 1}))[0] == 400


def test_only_system_required_columns_are_enforced(dataverse: httpx.Client) -> None:
    """[reqlevel] ApplicationRequired (lead subject/lastname, opportunity name/customer, task subject) is a form
    rule; list listname and createdfromcode are SystemRequired; createdfromcode takes 1, 2 or 4 only."""
    for entity_set in ("leads", "opportunities", "tasks"):
        _create(dataverse, entity_set, {"description": "no topic"})
    assert _error(dataverse.post(API + "lists", json={"createdfromcode": CONTACT_LIST})) == (400, "0x80040200")
    assert _error(dataverse.post(API + "lists", json={"listname": "No type"})) == (400, "0x80040200")
    bad_type = dataverse.post(API + "lists", json={"listname": "Odd", "createdfromcode": 3})
    assert _error(bad_type) == (400, "0x80044331") and "Accepted Values: 1,2,4" in bad_type.json()["error"]["message"]


def test_create_only_and_system_columns_keep_their_values(dataverse: httpx.Client) -> None:
    """[list-ref] createdfromcode and type are IsValidForUpdate=False, membercount is system-maintained;
    [lead-ref] fullname is read-only, composed from the name parts."""
    list_id = _list(dataverse, membercount=99)
    update = {"createdfromcode": LEAD_LIST, "type": True, "listname": "Renamed", "membercount": 7}
    assert dataverse.patch(API + f"lists({list_id})", json=update).status_code == 204
    row = _get(dataverse, f"lists({list_id})", "listname,createdfromcode,type,membercount")
    assert (row["listname"], row["createdfromcode"], row["type"], row["membercount"]) == ("Renamed", 2, False, 0)
    lead = _create(dataverse, "leads", {"firstname": "Grace", "lastname": "Hopper", "fullname": "ignored"})
    assert _get(dataverse, f"leads({lead})", "fullname")["fullname"] == "Grace Hopper"


def test_lookups_bind_to_their_targets_and_read_back(dataverse: httpx.Client) -> None:
    """[opp-ref] customerid_contact / customerid_account, [task-ref] regardingobjectid_<entity>_task read back as
    `_customerid_value` / `_regardingobjectid_value`; the owner defaults to the caller; wrong targets and missing
    rows are refused."""
    contact = _create(dataverse, "contacts", {"lastname": "Buyer"})
    account = _create(dataverse, "accounts", {"name": "Acme"})
    lead = _create(dataverse, "leads", {"subject": "Guest", "parentcontactid@odata.bind": f"/contacts({contact})"})
    for_contact = _create(
        dataverse, "opportunities", {"name": "O1", "customerid_contact@odata.bind": f"/contacts({contact})"}
    )
    for_account = _create(
        dataverse, "opportunities", {"name": "O2", "customerid_account@odata.bind": f"/accounts({account})"}
    )
    assert _get(dataverse, f"opportunities({for_contact})", "_customerid_value")["_customerid_value"] == contact
    assert _get(dataverse, f"opportunities({for_account})", "_customerid_value")["_customerid_value"] == account
    assert _get(dataverse, f"leads({lead})", "_parentcontactid_value")["_parentcontactid_value"] == contact
    task = _create(
        dataverse,
        "tasks",
        {
            "subject": "Thank the regular",
            "scheduledend": "2026-12-24T09:00:00Z",
            "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
            "ownerid@odata.bind": f"/systemusers({APP_USER})",
        },
    )
    row = _get(dataverse, f"tasks({task})", "_regardingobjectid_value,_ownerid_value,scheduledend")
    assert (row["_regardingobjectid_value"], row["_ownerid_value"]) == (contact, APP_USER)
    lead_task = _create(dataverse, "tasks", {"regardingobjectid_lead_task@odata.bind": f"/leads({lead})"})
    assert _get(dataverse, f"tasks({lead_task})", "_regardingobjectid_value")["_regardingobjectid_value"] == lead
    assert _get(dataverse, f"leads({lead})", "_ownerid_value")["_ownerid_value"] == APP_USER
    wrong_target = {"customerid_contact@odata.bind": f"/leads({lead})"}
    assert dataverse.post(API + "opportunities", json=wrong_target).status_code == 400
    missing = {"regardingobjectid_contact_task@odata.bind": "/contacts(00000000-0000-0000-0000-00000000dead)"}
    assert _error(dataverse.post(API + "tasks", json=missing)) == (404, "0x80040217")
    undeclared = {"regardingobjectid_task@odata.bind": f"/contacts({contact})"}
    assert dataverse.post(API + "tasks", json=undeclared).status_code == 400


def test_add_member_list_returns_the_member_id_and_is_harmless_to_repeat(dataverse: httpx.Client) -> None:
    """[addmember] `lists(<id>)/Microsoft.Dynamics.CRM.AddMemberList {"EntityId"}` → AddMemberListResponse
    {"Id"}; [member-ref] members read through listmembers and listcontact_association."""
    list_id = _list(dataverse)
    contact = _create(dataverse, "contacts", {"lastname": "Regular"})
    action = API + f"lists({list_id})/Microsoft.Dynamics.CRM.AddMemberList"
    added = dataverse.post(action, json={"EntityId": contact})
    assert added.status_code == 200
    body = added.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.AddMemberListResponse")
    again = dataverse.post(action, json={"EntityId": contact}).json()
    assert again["Id"] == body["Id"]
    members = dataverse.get(
        API + "listmembers",
        params={"$filter": f"_listid_value eq {list_id}", "$select": "_entityid_value,entitytype"},
    ).json()["value"]
    assert [(m["listmemberid"], m["_entityid_value"], m["entitytype"]) for m in members] == [
        (body["Id"], contact, "contact")
    ]
    related = dataverse.get(API + f"lists({list_id})/listcontact_association", params={"$select": "lastname"})
    assert [row["contactid"] for row in related.json()["value"]] == [contact]
    assert _get(dataverse, f"lists({list_id})", "membercount")["membercount"] == 1


def test_members_must_match_the_list_type_and_exist(dataverse: httpx.Client) -> None:
    """[list-ref] createdfromcode fixes the member type; [addmember] "The members that are added to the list must
    be of the same type"; a missing list or member is not found."""
    contact_list, lead_list = _list(dataverse), _list(dataverse, LEAD_LIST)
    contact = _create(dataverse, "contacts", {"lastname": "C"})
    lead = _create(dataverse, "leads", {"subject": "L"})
    add = "/Microsoft.Dynamics.CRM.AddMemberList"
    assert _error(dataverse.post(API + f"lists({contact_list}){add}", json={"EntityId": lead})) == (404, "0x80040217")
    assert dataverse.post(API + f"lists({lead_list}){add}", json={"EntityId": lead}).status_code == 200
    missing_list = API + "lists(00000000-0000-0000-0000-00000000dead)" + add
    assert _error(dataverse.post(missing_list, json={"EntityId": contact})) == (404, "0x80040217")
    assert dataverse.post(API + f"lists({contact_list}){add}", json={}).status_code == 400
    dynamic = _list(dataverse, type=True)
    assert dataverse.post(API + f"lists({dynamic}){add}", json={"EntityId": contact}).status_code == 400
    mixed = {
        "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": contact_list},
        "Members": [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": contact},
            {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead},
        ],
    }
    assert dataverse.post(API + "AddListMembersList", json=mixed).status_code == 400
    assert _get(dataverse, f"lists({contact_list})", "membercount")["membercount"] == 0  # nothing half-added


def test_add_list_members_and_remove_member(dataverse: httpx.Client) -> None:
    """[addmember] unbound AddListMembersList {List, Members[]} → 204 with no body; RemoveMemberList {EntityId}
    → 204; deleting a member's record takes its membership with it."""
    list_id = _list(dataverse)
    contacts = [_create(dataverse, "contacts", {"lastname": f"M{i}"}) for i in range(3)]
    members = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": c} for c in contacts]
    body = {"List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": list_id}, "Members": members}
    added = dataverse.post(API + "AddListMembersList", json=body)
    assert added.status_code == 204 and added.content == b""
    assert _get(dataverse, f"lists({list_id})", "membercount")["membercount"] == 3
    remove = API + f"lists({list_id})/Microsoft.Dynamics.CRM.RemoveMemberList"
    assert dataverse.post(remove, json={"EntityId": contacts[0]}).status_code == 204
    assert dataverse.post(remove, json={"EntityId": contacts[0]}).status_code == 204  # already gone: no-op
    assert dataverse.delete(API + f"contacts({contacts[1]})").status_code == 204
    remaining = dataverse.get(API + f"lists({list_id})/listcontact_association", params={"$select": "lastname"})
    assert [row["lastname"] for row in remaining.json()["value"]] == ["M2"]
    assert _get(dataverse, f"lists({list_id})", "membercount")["membercount"] == 1
    assert dataverse.post(API + "listmembers", json={"name": "direct"}).status_code == 405


def test_custom_columns_and_alternate_keys_on_follow_up_tables(dataverse: httpx.Client) -> None:
    """[altdef] schema apply adds `<prefix>_…` columns and keys to lead/task/opportunity through the metadata API
    as for contact; upsert by that key then creates once and updates after (204 both), duplicates are refused. Key
    values join their parts with "." as shared/core/keys.py does: a ":" breaks a key URL like on contact ([altdef]
    "Unicode characters in key value": / < > * % & : \\ ? + — 400 0x8006088a, see test_dataverse_fidelity.py)."""
    dataverse.post("/_control/metadata", json={"activation_seconds": 0})
    string = {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "MaxLength": 200}
    key = {"@odata.type": "Microsoft.Dynamics.CRM.EntityKeyMetadata"}
    for table in ("lead", "task", "opportunity"):
        entity = API + f"EntityDefinitions(LogicalName='{table}')"
        assert dataverse.post(entity + "/Attributes", json={**string, "SchemaName": "tb_RuleKey"}).status_code == 204
        created = dataverse.post(
            entity + "/Keys", json={**key, "SchemaName": f"tb_{table}_rulekey", "KeyAttributes": ["tb_rulekey"]}
        )
        assert created.status_code == 204
        deadline = time.monotonic() + 5
        while dataverse.get(entity + "/Keys").json()["value"][0]["EntityKeyIndexStatus"] != "Active":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    by_key = API + "tasks(tb_rulekey='first-visit.C1.2026-12')"
    first = dataverse.patch(by_key, json={"subject": "Welcome call"})
    second = dataverse.patch(by_key, json={"subject": "Welcome call (again)"})
    assert first.status_code == second.status_code == 204
    assert first.headers["OData-EntityId"] == second.headers["OData-EntityId"]
    assert len(dataverse.get(API + "tasks", params={"$select": "subject"}).json()["value"]) == 1
    assert _error(dataverse.post(API + "tasks", json={"tb_rulekey": "first-visit.C1.2026-12"})) == (412, "0x80060892")
    assert dataverse.patch(API + "leads(tb_rulekey='lead.G1')", json={"subject": "Guest spent 120"}).status_code == 204
    colon = dataverse.patch(API + "leads(tb_rulekey='lead%3AG2')", json={"subject": "Guest spent 80"})
    assert _error(colon) == (400, "0x8006088a")
