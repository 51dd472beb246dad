"""`tillbridge dataverse app-user`: the request sequence, over httpx.MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest

from tillbridge_cli.app_user import PRIVILEGES, ROLE_NAME, AppUserError, AppUserSetup, privileges_for

ORG = "https://org.example"
USER, ROLE, BU = (
    "11111111-0000-0000-0000-000000000001",
    "22222222-0000-0000-0000-000000000002",
    "33333333-0000-0000-0000-000000000003",
)


def handler(
    calls: list[tuple[str, str, object]], *, role_exists: bool = False, missing: str = ""
) -> httpx.MockTransport:
    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path + ("?" + request.url.query.decode() if request.url.query else "")
        calls.append((request.method, path, body))
        if "addAppUser" in path:
            return httpx.Response(200, json={})
        if path.startswith("/api/data/v9.2/systemusers?"):
            return httpx.Response(200, json={"value": [{"systemuserid": USER}]})
        if path == "/api/data/v9.2/WhoAmI":
            return httpx.Response(200, json={"BusinessUnitId": BU})
        if path.startswith("/api/data/v9.2/roles?"):
            return httpx.Response(200, json={"value": [{"roleid": ROLE}] if role_exists else []})
        if path == "/api/data/v9.2/roles":
            return httpx.Response(204, headers={"OData-EntityId": f"{ORG}/api/data/v9.2/roles({ROLE})"})
        if path.startswith("/api/data/v9.2/privileges?"):
            return httpx.Response(
                200, json={"value": [{"privilegeid": f"p-{n}", "name": n} for n in PRIVILEGES if n != missing]}
            )
        return httpx.Response(204)

    return httpx.MockTransport(respond)


def test_registers_user_creates_role_grants_and_associates() -> None:
    calls: list[tuple[str, str, object]] = []
    with httpx.Client(transport=handler(calls)) as http:
        result = AppUserSetup(http, ORG, "dv", "bap", say=lambda _: None).run("env-1", "client-1")
    assert result.systemuser_id == USER and result.role_id == ROLE and set(result.privileges) == set(PRIVILEGES)
    methods_paths = [(m, p.split("?")[0]) for m, p, _ in calls]
    assert methods_paths[0] == (
        "POST",
        "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/env-1/addAppUser",
    )
    assert ("POST", "/api/data/v9.2/roles") in methods_paths
    grant = next(b for m, p, b in calls if p.endswith("AddPrivilegesRole"))
    assert {g["Depth"] for g in grant["Privileges"]} == {"Global"} and len(grant["Privileges"]) == len(PRIVILEGES)  # type: ignore[index]
    link = next(b for m, p, b in calls if p.endswith("systemuserroles_association/$ref"))
    assert link == {"@odata.id": f"{ORG}/api/data/v9.2/roles({ROLE})"}
    role_body = next(b for m, p, b in calls if p == "/api/data/v9.2/roles")
    assert role_body == {"name": ROLE_NAME, "businessunitid@odata.bind": f"/businessunits({BU})"}


def test_existing_role_is_reused() -> None:
    calls: list[tuple[str, str, object]] = []
    with httpx.Client(transport=handler(calls, role_exists=True)) as http:
        AppUserSetup(http, ORG, "dv", "bap", say=lambda _: None).run("env-1", "client-1")
    assert (
        "POST",
        "/api/data/v9.2/roles",
        {"name": ROLE_NAME, "businessunitid@odata.bind": f"/businessunits({BU})"},
    ) not in calls


def test_a_missing_privilege_stops_before_granting() -> None:
    calls: list[tuple[str, str, object]] = []
    with (
        httpx.Client(transport=handler(calls, missing="prvMerge")) as http,
        pytest.raises(AppUserError, match="prvMerge"),
    ):
        AppUserSetup(http, ORG, "dv", "bap", say=lambda _: None).run("env-1", "client-1")
    assert not any(p.endswith("AddPrivilegesRole") for _, p, _ in calls)


def test_role_covers_incidents_and_every_table_the_schema_creates() -> None:
    from tillbridge_cli.schema import load_schema

    names = privileges_for("tb", load_schema())
    assert set(PRIVILEGES) <= set(names)
    for table in ("Incident", "tb_Location", "tb_Transaction", "tb_TransactionLine", "tb_Payment", "tb_Refund"):
        assert {f"prv{verb}{table}" for verb in ("Create", "Read", "Write", "Append", "AppendTo", "Assign")} <= set(
            names
        )
    assert not any("tb_contact" in name.lower() for name in names)


def test_privilege_names_match_case_insensitively() -> None:
    calls: list[tuple[str, str, object]] = []
    wanted = ("prvReadtb_Payment",)

    def respond(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, None))
        if "privileges" in request.url.path:
            return httpx.Response(200, json={"value": [{"privilegeid": "p-1", "name": "prvReadtb_payment"}]})
        if "systemusers" in request.url.path and request.method == "GET":
            return httpx.Response(200, json={"value": [{"systemuserid": USER}]})
        if request.url.path.endswith("WhoAmI"):
            return httpx.Response(200, json={"BusinessUnitId": BU})
        if request.url.path.endswith("roles") and request.method == "GET":
            return httpx.Response(200, json={"value": [{"roleid": ROLE}]})
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(respond)) as http:
        result = AppUserSetup(http, ORG, "dv", "bap", say=lambda _: None, privileges=wanted).run("env-1", "c-1")
    assert result.privileges == ("prvReadtb_payment",)
