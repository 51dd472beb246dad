"""`tillbridge dataverse app-user`: give the app's identity a Dataverse application user with a
least-privilege security role.

Steps (each checks before it creates, so the command can be re-run):
1. Power Platform admin API `addAppUser` registers the application (client) id as an application user
   (reference/dataverse.md §1; preview API).
2. A security role "Tillbridge Integration" in the root business unit, holding the privileges the
   flows need at organisation depth — contact create/read/write/append/append-to/share and Merge
   (the Merge message needs prvMerge, prvAppendActivity and prvWriteActivity; "Merge message
   privileges", Dynamics CRM developer guide); incident (cases opened for large refunds); and for each
   table the schema creates (prefix_location, prefix_transaction, …) create/read/write/append/
   append-to/assign — assign because records from a mapped store are owned by its team or user.
   Custom tables' privilege names are "prv" + verb + the table's schema name; Dataverse compares
   names case-insensitively, and so does this command.
3. The role is associated with the application user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

BAP = "https://api.bap.microsoft.com/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"
ROLE_NAME = "Tillbridge Integration"
PRIVILEGES = (
    "prvCreateContact",
    "prvReadContact",
    "prvWriteContact",
    "prvAppendContact",
    "prvAppendToContact",
    "prvShareContact",
    "prvMerge",
    "prvAppendActivity",
    "prvWriteActivity",
)
TABLE_VERBS = ("Create", "Read", "Write", "Append", "AppendTo", "Assign")


def privileges_for(prefix: str, schema: dict[str, Any]) -> tuple[str, ...]:
    """Contact and merge privileges, plus every verb on incident and on each table the schema creates."""
    tables = ["Incident"] + [f"{prefix}_{t['logical_name']}" for t in schema["tables"] if t.get("create")]
    return PRIVILEGES + tuple(f"prv{verb}{table}" for table in tables for verb in TABLE_VERBS)


class AppUserError(Exception):
    """A step failed; the message names the step and Dataverse's answer."""


@dataclass(frozen=True)
class AppUserResult:
    systemuser_id: str
    role_id: str
    privileges: tuple[str, ...]


class AppUserSetup:
    def __init__(
        self,
        http: httpx.Client,
        dataverse_url: str,
        dataverse_token: str,
        bap_token: str,
        say: Callable[[str], None] = print,
        *,
        privileges: tuple[str, ...] = PRIVILEGES,
    ) -> None:
        self.http, self.say, self.privileges = http, say, privileges
        self.root = f"{dataverse_url.rstrip('/')}/api/data/v9.2/"
        self.dv_headers = {
            "Authorization": f"Bearer {dataverse_token}",
            "Accept": "application/json",
            "OData-Version": "4.0",
            "Content-Type": "application/json",
        }
        self.bap_headers = {"Authorization": f"Bearer {bap_token}", "Content-Type": "application/json"}

    def _dv(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.request(method, self.root + path, json=body, headers=self.dv_headers)
        if response.status_code >= 400:
            where = path.split("?", maxsplit=1)[0]
            raise AppUserError(f"{method} {where}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def run(self, environment_id: str, client_id: str) -> AppUserResult:
        response = self.http.post(
            f"{BAP}/{environment_id}/addAppUser?api-version=2020-10-01",
            json={"servicePrincipalAppId": client_id},
            headers=self.bap_headers,
        )
        if response.status_code >= 400:
            raise AppUserError(
                f"addAppUser: {response.status_code} {response.text[:300]} (needs a Power Platform admin)"
            )
        users = self._dv("GET", f"systemusers?$select=systemuserid&$filter=applicationid eq {client_id}")["value"]
        if not users:
            raise AppUserError("the application user did not appear in Dataverse; retry in a minute")
        user_id = str(users[0]["systemuserid"])
        role_id = self._role()
        privileges = self._dv(
            "GET",
            "privileges?$select=privilegeid,name&$filter=" + " or ".join(f"name eq '{p}'" for p in self.privileges),
        )["value"]
        found = {p["name"].lower() for p in privileges}
        missing = [name for name in self.privileges if name.lower() not in found]
        if missing:
            raise AppUserError(f"privileges not found in this environment: {sorted(missing)}")
        grants = [{"PrivilegeId": p["privilegeid"], "Depth": "Global"} for p in privileges]
        self._dv("POST", f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole", {"Privileges": grants})
        self._dv(
            "POST",
            f"systemusers({user_id})/systemuserroles_association/$ref",
            {"@odata.id": f"{self.root}roles({role_id})"},
        )
        self.say(f"application user {user_id} holds role '{ROLE_NAME}' ({len(grants)} privileges)")
        return AppUserResult(user_id, role_id, tuple(sorted(p["name"] for p in privileges)))

    def _role(self) -> str:
        business_unit = self._dv("GET", "WhoAmI")["BusinessUnitId"]
        found = self._dv(
            "GET", f"roles?$select=roleid&$filter=name eq '{ROLE_NAME}' and _businessunitid_value eq {business_unit}"
        )["value"]
        if found:
            return str(found[0]["roleid"])
        response = self.http.post(
            self.root + "roles",
            json={"name": ROLE_NAME, "businessunitid@odata.bind": f"/businessunits({business_unit})"},
            headers=self.dv_headers,
        )
        if response.status_code >= 400:
            raise AppUserError(f"creating role: {response.status_code} {response.text[:300]}")
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
