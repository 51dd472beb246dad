"""The Dynamics 365 Sales tables the follow-up flows write: account, lead, opportunity, task, list, listmember.

Logical names, entity sets, primary ids, string lengths, required levels and lookups are taken from the table
references (MicrosoftDocs/dynamics-365-customer-engagement ce/sales/developer/entities/{lead,opportunity,list}.md,
ce/developer/reference/entities/listmember.md; MicrosoftDocs/powerapps-docs
developer/data-platform/reference/entities/task.md). Only a subset of each table's columns is declared; a column
that is not declared is refused like an unknown property (schema apply adds custom `<prefix>_…` columns and keys
through the metadata API, as for contact).

The platform enforces only SystemRequired (ApplicationRequired is a form rule: reference/dataverse.md §8
[reqlevel]); platform-filled SystemRequired columns (ids, ownerid, statecode) are not asked of the caller.
Columns with IsValidForUpdate=False (list.createdfromcode, list.type) keep their create value **[inference: the
value sent on update is ignored, not refused]**.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devstack.dataverse_emulator.store import SYSTEM_COLUMNS, DataverseFault, TableDef

OWNER_LOOKUP = {"ownerid": "systemusers|teams"}


@dataclass
class CrmTableDef(TableDef):
    """A standard table with the platform rules the generic TableDef does not carry."""

    primary_id: str = ""  # e.g. task → activityid; empty: <logicalname>id
    system_required: tuple[str, ...] = ()  # the caller must send these on create
    create_only: tuple[str, ...] = ()  # IsValidForUpdate=False
    read_only: tuple[str, ...] = ()  # IsValidForCreate=False and IsValidForUpdate=False (system maintained)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # column → allowed option values
    defaults: dict[str, Any] = field(default_factory=dict)  # statecode/statuscode etc. on create
    composed_fullname: bool = False  # fullname is read-only and composed from firstname + lastname
    written_by_actions_only: str = ""  # the actions that write this table; the Web API's POST/PATCH is refused

    @property
    def id_column(self) -> str:
        return self.primary_id or f"{self.logical_name}id"

    def prepare_create(self, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse a create without a SystemRequired column or with a value outside a choice column's options."""
        self._refuse_direct_writes()
        for column in self.system_required:
            if values.get(column) is None:
                raise DataverseFault(400, "0x80040200", "Required field missing.")  # RequiredFieldMissing
        self._check_choices(values)
        kept = {k: v for k, v in values.items() if k not in self.read_only}
        return {**self.defaults, **kept}

    def prepare_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """Create-only and system-maintained columns keep their values."""
        self._refuse_direct_writes()
        self._check_choices(values)
        return {k: v for k, v in values.items() if k not in self.create_only and k not in self.read_only}

    def composed(self, row: dict[str, Any]) -> dict[str, Any]:
        """Columns the platform computes from the others of a row being written."""
        if not self.composed_fullname:
            return {}
        parts = [row.get("firstname"), row.get("lastname")]
        return {"fullname": " ".join(str(p) for p in parts if p) or None}

    def _refuse_direct_writes(self) -> None:
        if self.written_by_actions_only:
            raise DataverseFault(
                405, "0x80060888", f"The emulator writes {self.entity_set} only through {self.written_by_actions_only}."
            )

    def _check_choices(self, values: dict[str, Any]) -> None:
        for column, allowed in self.choices.items():
            if column in values and values[column] is not None and values[column] not in allowed:
                accepted = ",".join(str(v) for v in allowed)
                raise DataverseFault(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The value {values[column]} of '{column}' on record of type "
                    f"'{self.logical_name}' is outside the valid range. Accepted Values: {accepted}",
                )


def _columns(**columns: int | None) -> dict[str, int | None]:
    return {**columns, **SYSTEM_COLUMNS}


ADDRESS: dict[str, int | None] = {
    "address1_line1": 250,
    "address1_city": 80,
    "address1_stateorprovince": 50,
    "address1_postalcode": 20,
    "address1_country": 80,
}


def account_table() -> CrmTableDef:
    """account: the other customer type (customerid_account binds); name max 160."""
    return CrmTableDef(
        "account",
        "accounts",
        _columns(name=160, emailaddress1=100, telephone1=50, description=2000, _ownerid_value=None),
        lookups=dict(OWNER_LOOKUP),
        primary_name="name",
        defaults={"statecode": 0, "statuscode": 1},
    )


def lead_table() -> CrmTableDef:
    """lead (leads): subject (Topic) 300 and lastname 50 are ApplicationRequired — not enforced by the API;
    mobilephone is 20 on lead (50 on contact); estimatedamount is Money, estimatedvalue a deprecated Double.
    statecode 0 Open → statuscode 1 New. fullname is read-only (composed from the name parts)."""
    return CrmTableDef(
        "lead",
        "leads",
        _columns(
            subject=300,
            firstname=50,
            middlename=50,
            lastname=50,
            fullname=160,
            companyname=100,
            jobtitle=100,
            emailaddress1=100,
            emailaddress2=100,
            telephone1=50,
            mobilephone=20,
            description=2000,
            estimatedamount=None,
            estimatedvalue=None,
            estimatedclosedate=None,
            leadsourcecode=None,
            donotbulkemail=None,
            **ADDRESS,
            _parentcontactid_value=None,
            _parentaccountid_value=None,
            _customerid_value=None,
            _ownerid_value=None,
        ),
        lookups={
            "parentcontactid": "contacts",
            "parentaccountid": "accounts",
            "customerid_contact": "contacts",
            "customerid_account": "accounts",
            **OWNER_LOOKUP,
        },
        primary_name="fullname",
        read_only=("fullname",),
        defaults={"statecode": 0, "statuscode": 1},
        composed_fullname=True,
    )


def opportunity_table() -> CrmTableDef:
    """opportunity (opportunities): name (Topic) 300 and customerid are ApplicationRequired; estimatedvalue is
    Money. statecode 0 Open → statuscode 1 In Progress."""
    return CrmTableDef(
        "opportunity",
        "opportunities",
        _columns(
            name=300,
            description=2000,
            estimatedvalue=None,
            estimatedclosedate=None,
            actualvalue=None,
            closeprobability=None,
            _customerid_value=None,
            _parentcontactid_value=None,
            _parentaccountid_value=None,
            _originatingleadid_value=None,
            _ownerid_value=None,
        ),
        lookups={
            "customerid_contact": "contacts",
            "customerid_account": "accounts",
            "parentcontactid": "contacts",
            "parentaccountid": "accounts",
            "originatingleadid": "leads",
            **OWNER_LOOKUP,
        },
        primary_name="name",
        defaults={"statecode": 0, "statuscode": 1},
    )


def task_table() -> CrmTableDef:
    """task (tasks): primary id **activityid**; subject 200 is ApplicationRequired; regarding is bound through
    `regardingobjectid_<entity>_task` and read back as `_regardingobjectid_value`. statecode 0 Open → statuscode
    2 Not Started."""
    return CrmTableDef(
        "task",
        "tasks",
        _columns(
            subject=200,
            description=2000,
            category=250,
            subcategory=250,
            scheduledstart=None,
            scheduledend=None,
            actualend=None,
            prioritycode=None,
            percentcomplete=None,
            _regardingobjectid_value=None,
            _ownerid_value=None,
        ),
        lookups={
            "regardingobjectid_contact_task": "contacts",
            "regardingobjectid_account_task": "accounts",
            "regardingobjectid_lead_task": "leads",
            "regardingobjectid_opportunity_task": "opportunities",
            **OWNER_LOOKUP,
        },
        primary_name="subject",
        primary_id="activityid",
        choices={"prioritycode": (0, 1, 2)},
        defaults={"statecode": 0, "statuscode": 2},
    )


MEMBER_TYPES: dict[int, str] = {1: "account", 2: "contact", 4: "lead"}  # list.createdfromcode options


def list_table() -> CrmTableDef:
    """list (lists): listname 128 and createdfromcode (1 Account, 2 Contact, 4 Lead) are SystemRequired;
    createdfromcode and type (false = static, the default) are create-only; membercount is system-maintained.
    statecode 0 Active → statuscode 0 Active."""
    return CrmTableDef(
        "list",
        "lists",
        _columns(
            listname=128,
            createdfromcode=None,
            type=None,
            description=2000,
            purpose=512,
            source=128,
            lockstatus=None,
            membercount=None,
            _ownerid_value=None,
        ),
        lookups=dict(OWNER_LOOKUP),
        primary_name="listname",
        system_required=("listname", "createdfromcode"),
        create_only=("createdfromcode", "type"),
        read_only=("membercount",),
        choices={"createdfromcode": tuple(MEMBER_TYPES)},
        defaults={"statecode": 0, "statuscode": 0, "type": False, "lockstatus": False, "membercount": 0},
    )


def listmember_table() -> CrmTableDef:
    """listmember (listmembers): the intersect of list and its members — GET (RetrieveMultiple) and DELETE only;
    members are added with AddMemberList / AddListMembersList (list_actions.py)."""
    return CrmTableDef(
        "listmember",
        "listmembers",
        _columns(name=100, entitytype=None, _listid_value=None, _entityid_value=None),
        read_only=("entitytype", "_listid_value", "_entityid_value"),
        primary_name="name",
        written_by_actions_only="AddMemberList / AddListMembersList",
    )


def crm_tables() -> list[TableDef]:
    return [account_table(), lead_table(), opportunity_table(), task_table(), list_table(), listmember_table()]
