"""Square money (integer amounts in the currency's smallest unit) → decimal amounts for the CRM.

The exponent comes from ISO 4217 minor units: USD 2, JPY 0, KWD 3 — never a hard-coded /100.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# ISO 4217 minor units for the currencies that are not 2 (everything else Square supports uses 2).
_EXPONENTS = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}


class MoneyError(ValueError):
    """A Square money object that cannot be converted (missing amount or currency)."""


def exponent(currency: str) -> int:
    code = currency.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"not an ISO 4217 currency code: {currency!r}")
    return _EXPONENTS.get(code, 2)


def to_decimal(money: dict[str, Any] | None) -> tuple[Decimal, str] | None:
    """`{"amount": 1999, "currency": "USD"}` → (Decimal("19.99"), "USD"); None stays None."""
    if money is None:
        return None
    amount, currency = money.get("amount"), money.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        raise MoneyError("a money object needs an integer amount and a currency")
    return Decimal(amount).scaleb(-exponent(currency)), currency.upper()
