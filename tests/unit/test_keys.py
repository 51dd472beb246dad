"""The key scheme: composite keys use only characters Dataverse accepts in a key URL, stay injective, and
a value Dataverse would refuse is stopped before anything is sent (reference/dataverse.md §3)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.keys import FORBIDDEN_KEY_CHARACTERS, InvalidKeyError, check_key_value, composite_key, key_segment
from shared.flows.sales import sync_payment
from tests.unit.test_sales_flows import command, order, payment, setup

# Dataverse's documented list, written out here (not read from the code under test).
REFUSED = set("/<>*%&:\\?+")


def test_the_refused_characters_are_the_documented_ones() -> None:
    assert set(FORBIDDEN_KEY_CHARACTERS) == REFUSED


def test_square_ids_pass_through_and_parts_join_with_a_dot() -> None:
    assert composite_key("CAISENgvlJ6jLWAzERDzjyHVybY", "8uSwfzvUImn3IRrvciqlXC") == (
        "CAISENgvlJ6jLWAzERDzjyHVybY.8uSwfzvUImn3IRrvciqlXC"
    )


def test_client_chosen_uids_are_escaped() -> None:
    assert composite_key("O1", "a:b/c") == "O1.a~3Ab~2Fc"
    assert composite_key("O.1", "x~y") == "O~2E1.x~7Ey"


@given(st.lists(st.text(max_size=12), min_size=2, max_size=2), st.lists(st.text(max_size=12), min_size=2, max_size=2))
def test_composite_keys_are_injective_and_never_refused(first: list[str], second: list[str]) -> None:
    a, b = composite_key(*first), composite_key(*second)
    assert not set(a) & REFUSED and not set(b) & REFUSED
    assert (a == b) == (first == second)


@pytest.mark.parametrize("value", ["../customers/X", "A:B", "50%", "a+b", "x&y", "q?", "back\\slash", "<b>", "*"])
def test_refused_values_raise_naming_the_column(value: str) -> None:
    with pytest.raises(InvalidKeyError, match="tb_squarepaymentid") as raised:
        key_segment({"tb_squarepaymentid": value})
    assert raised.value.reason_code == "invalid_key"


def test_empty_and_control_characters_are_refused() -> None:
    for value in ("", "A\x00B", "A\nB"):
        with pytest.raises(InvalidKeyError):
            check_key_value("tb_x", value)


def test_a_sale_whose_line_uid_holds_a_colon_is_keyed_with_allowed_characters() -> None:
    ctx, dv, _state, square = setup()
    square.orders["O1"] = order()
    square.orders["O1"]["line_items"][0]["uid"] = "line:1"
    asyncio.run(sync_payment(command("payment", "payment.updated", "P1", payment(), "payment"), ctx))
    (batch,) = dv.batches
    line_paths = [op.path for op in batch if op.path.startswith("tb_transactionlines")]
    assert line_paths == ["tb_transactionlines(tb_squarelinekey='O1.line~3A1')"]


def test_a_payment_whose_id_dataverse_would_refuse_fails_before_anything_is_sent() -> None:
    ctx, dv, _state, _square = setup()
    bad = payment("P/1")
    with pytest.raises(InvalidKeyError, match="P/1"):
        asyncio.run(sync_payment(command("payment", "payment.updated", "P/1", bad, "payment"), ctx))
    assert dv.batches == []
