"""No id can touch another record: every table's key scheme is injective, decodable, valid for Table
Storage, and leaves the keys of existing rows (ids of safe characters) exactly as they were."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.table_state import (
    cursor_keys,
    decode_key,
    doc_keys,
    failure_keys,
    flow_keys,
    ledger_keys,
    table_key,
)
from shared.adapters.trace_store import snapshot_name, trace_partition, trace_row

# Table Storage refuses these in keys (Understanding the Table service data model); "%" and "'" we keep out
REFUSED = re.compile(r"[/\\#?%'\x00-\x1f\x7f-\x9f\ud800-\udfff]")
ids = st.text(alphabet=st.characters(exclude_categories=()), max_size=700)  # surrogates and controls too
tricky = st.text(alphabet="/%2F~|'?#\\.\x00\x7fA1u", max_size=30)
any_id = st.one_of(ids, tricky)
SAFE = string.ascii_letters + string.digits + "-_.:+ "

TWO_PART: dict[str, Callable[[str, str], tuple[str, str]]] = {
    "ledger": ledger_keys,
    "failures": failure_keys,
    "docs": doc_keys,
    "traces": lambda flow, record: ("", trace_partition(flow, record)),
}
ONE_PART: dict[str, Callable[[str], tuple[str, str]]] = {"cursors": cursor_keys, "flows": flow_keys}


def old_safe_key(value: str) -> str:
    """The scheme rows were written with before (kept here only to prove they keep their keys)."""
    return re.sub(r"[/\\#?\x00-\x1f\x7f]", lambda m: f"%{ord(m.group()):02X}", value)[:512]


def valid(key: str) -> bool:
    return not REFUSED.search(key) and len(key.encode("utf-16-le")) // 2 <= 512


def test_the_ids_of_the_report_get_their_own_rows() -> None:
    assert ledger_keys("customer", "RTCOL/1") != ledger_keys("customer", "RTCOL%2F1")
    assert failure_keys("customers", "RTCOL/1") != failure_keys("customers", "RTCOL%2F1")
    assert trace_partition("customers", "a|b") != trace_partition("customers|a", "b")


@settings(max_examples=300, deadline=None)
@given(first=any_id, second=any_id, kind=st.sampled_from(["customer", "order", "x/y", "q|"]))
def test_distinct_ids_get_distinct_keys_in_every_table(first: str, second: str, kind: str) -> None:
    if first == second:
        return
    for name, keys in TWO_PART.items():
        assert keys(kind, first) != keys(kind, second), name
        assert keys(first, kind) != keys(second, kind), name
    for name, key in ONE_PART.items():
        assert key(first) != key(second), name
    assert trace_row(first, "e", 1) != trace_row(second, "e", 1)
    assert trace_row("t", first, 1) != trace_row("t", second, 1)
    assert snapshot_name("2026-01-01T00:00:00+00:00", "customers", first, "e", 1) != snapshot_name(
        "2026-01-01T00:00:00+00:00", "customers", second, "e", 1
    )


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(any_id, min_size=1, max_size=3))
def test_keys_are_valid_and_decode_to_what_made_them(parts: list[str]) -> None:
    key = table_key(*parts)
    assert valid(key), key
    decoded = decode_key(key)
    if decoded is None:  # too long to keep whole: hashed, the row keeps the values as properties
        assert len("|".join(parts)) > 100
    else:
        assert decoded == tuple(parts)


@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet=SAFE, min_size=1, max_size=512))
def test_rows_written_before_keep_their_keys(value: str) -> None:
    for keys in (ledger_keys, failure_keys, doc_keys):
        assert keys("customer", value)[1] == old_safe_key(value)
    assert cursor_keys(value)[1] == old_safe_key(value) and flow_keys(value)[1] == value
    if len(value) <= 500:
        assert trace_partition("customers", value) == old_safe_key(f"customers|{value}")


def test_long_ids_never_collide_by_truncation() -> None:
    base = "A" * 600
    assert ledger_keys("customer", base + "1") != ledger_keys("customer", base + "2")
    assert all(valid(k) for k in ledger_keys("customer", base + "1"))


def test_snapshot_names_never_climb_out_of_their_folder() -> None:
    for record in ("..", ".", "../customers/X", "a/../../b"):
        name = snapshot_name("2026-01-01T00:00:00+00:00", "customers", record, "../../evt", 1)
        segments = name.split("/")
        assert len(segments) == 6 and not any(s.strip(".") == "" for s in segments), name
