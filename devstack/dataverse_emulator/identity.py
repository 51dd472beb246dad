"""Who is calling: every accepted bearer token is a systemuser, and every write records it.

One user model for application users and people alike. Dataverse evaluates service protection limits per user
(api-limits.md: "evaluated per user"; reference/dataverse.md §5), so each user has its own Budget; WhoAmI answers
the caller's systemuserid; and the platform stamps `createdby` / `modifiedby` (read back as `_createdby_value` /
`_modifiedby_value`) with the calling user on every create and update, and `ownerid` defaults to the caller when a
create does not set it (ownerid is SystemRequired on user-owned tables and filled by the platform). The entity
references list CreatedBy / ModifiedBy as read-only lookups to systemuser (MicrosoftDocs/
dynamics-365-customer-engagement ce/sales/developer/entities/list.md "Read-only columns"; powerapps-docs
reference/entities/task.md).

The emulator's own token (`--token`) is the first application user, `app1`, whose id is WhoAmI's well-known
DEFAULT_USER; `--extra-token` adds more application users (scale-out, issue 10). Tests add people through
`POST /_control/users` (control_ext.py) so a sync can tell its own writes from people's (echo suppression by
identity, as the Business Central ↔ Dataverse sync does: reference/dataverse.md §12).
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass
from typing import Any

from devstack.dataverse_emulator.protection import Budget

DEFAULT_USER = "00000000-0000-0000-0000-0000000000a1"  # WhoAmI's UserId for the emulator's own token

_acting_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("dataverse_acting_user", default=None)


def new_user_id() -> str:
    return str(uuid.uuid4())


@dataclass
class SystemUser:
    """A bearer token's user: its systemuser row (id, full name) and its own service-protection budget.
    `name` labels the user in /_control/stats (`user app1 throttled`)."""

    token: str
    name: str
    fullname: str
    user_id: str
    budget: Budget

    @classmethod
    def new(
        cls,
        token: str,
        number: int,
        name: str | None = None,
        fullname: str | None = None,
        user_id: str | None = None,
    ) -> SystemUser:
        """The `number`th user: the first one is the application user WhoAmI has always answered."""
        label = name or fullname or f"app{number}"
        user = (DEFAULT_USER if number == 1 else user_id or new_user_id()).lower()
        return cls(token, label, fullname or f"Integration user {label}", user, Budget(label))

    def document(self) -> dict[str, str]:
        """How /_control/users shows a user."""
        return {"systemuserid": self.user_id, "fullname": self.fullname, "name": self.name, "token": self.token}


def acting_user() -> str:
    """The systemuser the current request runs as (the application user outside a request)."""
    return _acting_user.get() or DEFAULT_USER


def act_as(user_id: str) -> contextvars.Token[str | None]:
    return _acting_user.set(user_id)


def stop_acting(token: contextvars.Token[str | None]) -> None:
    _acting_user.reset(token)


def audit_values(created: bool, owner_column: bool, values: dict[str, Any]) -> dict[str, Any]:
    """The columns the platform writes with a create or update: the caller in modifiedby (and createdby, and
    ownerid when the table has one and the create leaves it empty)."""
    user = acting_user()
    audit = {"_modifiedby_value": user}
    if created:
        audit["_createdby_value"] = user
        if owner_column and not values.get("_ownerid_value"):
            audit["_ownerid_value"] = user
    return audit
