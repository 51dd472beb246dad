"""Which customers ListCustomers / SearchCustomers return, and in what order (pure functions).

Sources (SPEC = square/connect-api-specification api.json, Release 2025-08-20):
- Only profiles with public information (given_name, family_name, company_name, email_address or
  phone_number) are returned or counted (SPEC `ListCustomersResponse`, `SearchCustomersResponse`).
- Sort: `DEFAULT` (given_name + family_name, else company_name, email, phone) or `CREATED_AT`, ASC by
  default (SPEC `CustomerSortField`, `CustomerSort`); there is no sort by updated_at.
- Filters are ANDed, OR is not supported (SPEC `CustomerQuery.filter`); a text filter is exact or fuzzy,
  never both (SPEC `CustomerTextFilter`); fuzzy email / reference_id match token-wise after punctuation is
  removed; exact phone takes an E.164-compliant query and compares stored numbers converted to E.164; fuzzy
  phone matches digit tokens (SPEC `CustomerFilter.*`); at most three segment ids (SPEC
  `CustomerFilter.segment_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from devstack.square_emulator.clock import canonical
from devstack.square_emulator.responses import SquareFault
from devstack.square_emulator.validation import PUBLIC_FIELDS

Customer = dict[str, Any]
Predicate = Callable[[Customer], bool]
FILTERS = (
    "created_at",
    "updated_at",
    "email_address",
    "phone_number",
    "reference_id",
    "creation_source",
    "group_ids",
    "segment_ids",
)


def listable(customer: Customer) -> bool:
    return any(customer.get(name) for name in PUBLIC_FIELDS)


def sort_key(field: str) -> Callable[[Customer], tuple[str, str]]:
    if field == "CREATED_AT":
        return lambda c: (c["created_at"], c["id"])

    def default(c: Customer) -> tuple[str, str]:
        name = f"{c.get('given_name', '')}{c.get('family_name', '')}"
        for fallback in ("company_name", "email_address", "phone_number"):
            name = name or str(c.get(fallback) or "")
        return name.casefold(), c["id"]

    return default


def sort_choice(field: Any, order: Any, where: str) -> tuple[str, bool]:
    """(sort field, descending?) with Square's defaults DEFAULT / ASC."""
    field = field or "DEFAULT"
    if field not in ("DEFAULT", "CREATED_AT"):
        raise SquareFault(400, "INVALID_ENUM_VALUE", "Sort field must be DEFAULT or CREATED_AT.", f"{where}field")
    order = order or "ASC"
    if order not in ("ASC", "DESC"):
        raise SquareFault(400, "INVALID_SORT_ORDER", "Sort order must be ASC or DESC.", f"{where}order")
    return str(field), order == "DESC"


def _time_range(name: str, window: Any) -> Predicate:
    if not isinstance(window, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", f"`{name}` must be a time range.", f"query.filter.{name}")
    bounds = []
    for end in ("start_at", "end_at"):
        value = window.get(end)
        moment = canonical(value)
        if value is not None and moment is None:
            raise SquareFault(400, "INVALID_TIME", f"`{name}.{end}` is not RFC 3339.", f"query.filter.{name}.{end}")
        bounds.append(moment)
    start, finish = bounds[0] or "", bounds[1] or "9999"
    if start > finish:
        raise SquareFault(400, "INVALID_TIME_RANGE", f"`{name}` ends before it starts.", f"query.filter.{name}")
    return lambda c: start <= c[name] <= finish


def _tokens(text: str, pattern: str) -> list[str]:
    return [t for t in re.split(pattern, text.casefold()) if t]


def _text_rule(rule: Any, where: str) -> tuple[str, str]:
    if not isinstance(rule, dict) or len([k for k in ("exact", "fuzzy") if rule.get(k) is not None]) != 1:
        raise SquareFault(400, "CONFLICTING_PARAMETERS", "Give exactly one of exact or fuzzy.", where)
    kind = "exact" if rule.get("exact") is not None else "fuzzy"
    value = rule[kind]
    if not isinstance(value, str):
        raise SquareFault(400, "EXPECTED_STRING", f"`{kind}` must be a string.", f"{where}.{kind}")
    return kind, value


def _e164(stored: str) -> str:
    digits = re.sub(r"\D", "", stored)
    if stored.strip().startswith("+"):
        return "+" + digits
    return "+1" + digits if len(digits) == 10 else "+" + digits  # the emulated seller is in the US


def _token_match(field: str, pattern: str, query: str) -> Predicate:
    wanted = _tokens(query, pattern)
    return lambda c: (
        bool(c.get(field)) and all(any(w in have for have in _tokens(str(c[field]), pattern)) for w in wanted)
    )


def _text(field: str, rule: Any) -> Predicate:
    where = f"query.filter.{field}"
    kind, query = _text_rule(rule, where)
    if field == "phone_number":
        if kind == "exact":
            if not query.strip().startswith("+"):
                raise SquareFault(400, "INVALID_PHONE_NUMBER", "An exact phone query must be E.164.", f"{where}.exact")
            wanted = _e164(query)
            return lambda c: bool(c.get(field)) and _e164(str(c[field])) == wanted
        digit_tokens = _tokens(query, r"\D+")
        return lambda c: bool(c.get(field)) and all(t in re.sub(r"\D", "", str(c[field])) for t in digit_tokens)
    if kind == "exact":
        folded = query.casefold()
        return lambda c: str(c.get(field, "")).casefold() == folded and field in c
    return _token_match(field, r"[^0-9a-z]+" if field == "reference_id" else r"[\W_]+", query)


def _membership(field: str, rule: Any) -> Predicate:
    where = f"query.filter.{field}"
    if not isinstance(rule, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", f"`{field}` must be a filter value.", where)
    any_of, all_of, none_of = (set(rule.get(k) or []) for k in ("any", "all", "none"))
    if field == "segment_ids" and len(any_of | all_of | none_of) > 3:
        raise SquareFault(400, "ARRAY_LENGTH_TOO_LONG", "At most three segment ids.", where)

    def matches(c: Customer) -> bool:
        held = set(c.get(field) or [])
        return (not any_of or bool(held & any_of)) and all_of <= held and not held & none_of

    return matches


def _creation_source(rule: Any) -> Predicate:
    if not isinstance(rule, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", "`creation_source` must be a filter.", "query.filter.creation_source")
    values = set(rule.get("values") or [])
    include = (rule.get("rule") or "INCLUDE") == "INCLUDE"
    return lambda c: (c.get("creation_source") in values) == include


def search_predicate(query_filter: Any) -> Predicate:
    """All filters of a SearchCustomers query, ANDed, plus the public-information rule."""
    if query_filter is None:
        query_filter = {}
    if not isinstance(query_filter, dict):
        raise SquareFault(400, "EXPECTED_OBJECT", "`query.filter` must be an object.", "query.filter")
    unknown = sorted(set(query_filter) - set(FILTERS))
    if unknown:
        raise SquareFault(400, "BAD_REQUEST", f"Filters not supported by the emulator: {unknown}.", "query.filter")
    checks: list[Predicate] = [listable]
    for name, rule in query_filter.items():
        if rule is None:
            continue
        if name in ("created_at", "updated_at"):
            checks.append(_time_range(name, rule))
        elif name in ("email_address", "phone_number", "reference_id"):
            checks.append(_text(name, rule))
        elif name == "creation_source":
            checks.append(_creation_source(rule))
        else:
            checks.append(_membership(name, rule))
    return lambda c: all(check(c) for check in checks)
