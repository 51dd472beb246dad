"""Matching in bulk: the rules of shared/flows/matching.py (key, then email, then phone confirmed with
libphonenumber) answered for a whole chunk of first-seen customers by `or`-chained queries — each as long
as a GET inside a $batch may be — sent together in one $batch: one request per round, never one query per
customer (a $batch counts once toward the request limit; its queries' time still counts: api-limits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.core.normalize import NormalizationError, normalize_phone
from shared.core.ports import DataverseApi
from shared.flows.customer_mapping import CONTACTS
from shared.flows.matching import (
    MATCH_COLUMNS,
    PHONE_COLUMNS,
    Candidates,
    MatchKeys,
    odata_string,
    phone_candidates_filter,
    split_candidates,
)

# A GET inside a $batch may be 64 KB long (reference/dataverse.md §4); the filter keeps well inside that.
MAX_ENCODED_FILTER = 48_000
MAX_PARTS = 1000  # requests per $batch
QUERY_TOP = 5000  # Dataverse's page size ceiling


@dataclass(frozen=True)
class Clauses:
    """What one customer adds to a chunk's query: its Square key (any state), and the email and phone
    candidates that count only on an active contact."""

    keyed: tuple[str, ...]
    active: tuple[str, ...]


def clauses_for(keys: MatchKeys, *, with_phone: bool) -> Clauses:
    active = []
    if keys.email_key:
        active.append(f"emailaddress1 eq {odata_string(keys.email_key)}")
    if with_phone and keys.phone_e164:
        active.append(phone_candidates_filter(keys.phone_e164))
    return Clauses((f"{keys.key_column} eq {odata_string(keys.square_id)}",), tuple(active))


def _filter(keyed: list[str], active: list[str]) -> str:
    """`key eq … or … or (statecode eq 0 and (email eq … or phone candidates …))` — the per-customer rule
    (key, or an active contact by email or phone) for many customers at once, `statecode` said once."""
    parts = list(keyed)
    if active:
        parts.append(f"(statecode eq 0 and ({' or '.join(active)}))")
    return " or ".join(parts)


def pack_filters(groups: Sequence[Clauses], limit: int = MAX_ENCODED_FILTER) -> list[str]:
    """Filters each under `limit` characters once URL-encoded; a customer's clauses stay together."""
    filters: list[str] = []
    keyed: list[str] = []
    active: list[str] = []
    size = 0
    for group in groups:
        group_size = sum(len(quote(c, safe="")) + 8 for c in (*group.keyed, *group.active))  # 8: " or "
        if (keyed or active) and size + group_size > limit:
            filters.append(_filter(keyed, active))
            keyed, active, size = [], [], 0
        keyed += group.keyed
        active += group.active
        size += group_size
    if keyed or active:
        filters.append(_filter(keyed, active))
    return filters


async def candidate_rows(
    dataverse: DataverseApi, keys_list: Sequence[MatchKeys], *, with_phone: bool
) -> tuple[list[dict[str, Any]], int]:
    """Every contact any of these customers could match (deduplicated by id) and the requests it took."""
    if not keys_list:
        return [], 0
    select = [*MATCH_COLUMNS, keys_list[0].key_column]
    found: dict[str, dict[str, Any]] = {}
    requests = 0
    filters = pack_filters([clauses_for(keys, with_phone=with_phone) for keys in keys_list])
    for start in range(0, len(filters), MAX_PARTS):
        answers = await dataverse.query_many(CONTACTS, filters[start : start + MAX_PARTS], select, top=QUERY_TOP)
        requests += 1
        for rows in answers:
            for row in rows:
                found[str(row["contactid"])] = row
    return list(found.values()), requests


async def match_chunk(dataverse: DataverseApi, keys_list: Sequence[MatchKeys]) -> tuple[dict[str, Candidates], int]:
    """Candidates per Square id: round one asks keys and emails for everyone; round two asks phone
    candidates only for those round one left without a keyed or email candidate (email outranks phone)."""
    rows, requests = await candidate_rows(dataverse, keys_list, with_phone=False)
    index = RowIndex(rows, keys_list[0].key_column if keys_list else "")
    result = {keys.square_id: split_candidates(index.rows_for(keys), keys) for keys in keys_list}
    second = [k for k in keys_list if k.phone_e164 and not (result[k.square_id].by_email or result[k.square_id].keyed)]
    if second:
        phone_rows, more = await candidate_rows(dataverse, second, with_phone=True)
        requests += more
        index = RowIndex(phone_rows, second[0].key_column, phone_region=second[0].phone_region)
        for keys in second:
            result[keys.square_id] = split_candidates(index.rows_for(keys), keys)
    return result, requests


class RowIndex:
    """A chunk's candidate rows by Square key, case-folded email and E.164 phone (each row's numbers
    normalised once), so each customer's rules run over its own few rows only."""

    def __init__(self, rows: Sequence[dict[str, Any]], key_column: str, phone_region: str | None = None) -> None:
        self._by: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            labels = {f"k:{row.get(key_column)}", f"e:{str(row.get('emailaddress1') or '').strip().casefold()}"}
            if phone_region is not None:
                for column in PHONE_COLUMNS:
                    labels.add(f"p:{_e164(row.get(column), phone_region)}")
            for label in labels:
                self._by.setdefault(label, []).append(row)

    def rows_for(self, keys: MatchKeys) -> list[dict[str, Any]]:
        labels = [f"k:{keys.square_id}"]
        if keys.email_key:
            labels.append(f"e:{keys.email_key}")
        if keys.phone_e164:
            labels.append(f"p:{keys.phone_e164}")
        found: dict[int, dict[str, Any]] = {}
        for label in labels:
            for row in self._by.get(label, []):
                found[id(row)] = row
        return list(found.values())


def _e164(written: object, region: str) -> str | None:
    if not isinstance(written, str) or not written.strip():
        return None
    try:
        return normalize_phone(written, region)
    except NormalizationError:
        return None
