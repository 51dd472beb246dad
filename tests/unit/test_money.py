from __future__ import annotations

from decimal import Decimal

import pytest

from shared.core.money import MoneyError, exponent, to_decimal


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        ({"amount": 1999, "currency": "USD"}, (Decimal("19.99"), "USD")),
        ({"amount": 1999, "currency": "JPY"}, (Decimal("1999"), "JPY")),
        ({"amount": 1999, "currency": "KWD"}, (Decimal("1.999"), "KWD")),
        ({"amount": -34, "currency": "usd"}, (Decimal("-0.34"), "USD")),
        ({"amount": 0, "currency": "EUR"}, (Decimal("0.00"), "EUR")),
    ],
)
def test_amounts_use_the_currency_exponent(money: dict[str, object], expected: tuple[Decimal, str]) -> None:
    assert to_decimal(money) == expected


def test_missing_money_and_bad_input() -> None:
    assert to_decimal(None) is None
    with pytest.raises(MoneyError):
        to_decimal({"amount": "12", "currency": "USD"})
    with pytest.raises(MoneyError):
        exponent("US")
    assert exponent("gbp") == 2 and exponent("JPY") == 0
