"""Which contact fields can go back to Square (two-way sync): the customer fields UpdateCustomer writes, and
the owner checks the configuration file gets (a column given to the CRM must be able to reach Square)."""

from __future__ import annotations

from shared.config.mappings import FieldMap, Mapping

# The customer fields UpdateCustomer writes (SPEC UpdateCustomerRequest; `preferences` is not among them).
UPDATABLE_FIELDS = frozenset(
    {
        "given_name",
        "family_name",
        "company_name",
        "nickname",
        "email_address",
        "phone_number",
        "reference_id",
        "note",
        "birthday",
        *(
            f"address.{name}"
            for name in (
                "address_line_1",
                "address_line_2",
                "address_line_3",
                "locality",
                "sublocality",
                "administrative_district_level_1",
                "postal_code",
                "country",
                "first_name",
                "last_name",
            )
        ),
    }
)
# Transforms whose CRM value cannot stand for the Square value (a fixed, derived or dropped value).
ONE_WAY_TRANSFORMS = frozenset({"constant", "skip", "boolean", "money"})
SENDING_OWNERS = ("crm", "both")


def writable_back(field_map: FieldMap) -> bool:
    """Whether the column's CRM value can be sent to Square as its `from` field."""
    names = {t.name for t in field_map.transforms}
    return field_map.source in UPDATABLE_FIELDS and not names & ONE_WAY_TRANSFORMS


def owner_problems(mapping: Mapping) -> list[tuple[str, str]]:
    """(column, problem) for owners that cannot work: a column whose CRM value is to be sent to Square (`crm`,
    `both`) but cannot go back to Square, or two columns sending one Square field. (`crm_if_empty` sends
    nothing, so any column may have it.)"""
    problems: list[tuple[str, str]] = []
    sends: dict[str, str] = {}
    for field_map in mapping.fields:
        if field_map.owner not in SENDING_OWNERS or field_map.skipped:
            continue
        if not writable_back(field_map):
            problems.append(
                (
                    field_map.column,
                    f"owner {field_map.owner} needs `from` to be a customer field UpdateCustomer writes, with no "
                    "constant, skip, boolean or money transform",
                )
            )
        elif field_map.source is not None:
            other = sends.setdefault(field_map.source, field_map.column)
            if other != field_map.column:
                problems.append((field_map.column, f"{other} already sends {field_map.source} to Square"))
    return problems
