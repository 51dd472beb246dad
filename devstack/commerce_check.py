"""Compare the (emulated) CRM's transactions, lines, payments, refunds and stores with Square's state.

An oracle independent of the product: every expected column is stated here from Square's own fields with
this module's own small tables — never with the product's mapping code — so a mapping bug (a dropped tip,
a wrong exponent, a lost line) makes the demo and the tests fail.

- Money: Square's integer amount in the currency's smallest unit ÷ 10^exponent, exponents from the
  literal table EXPONENTS below (ISO 4217 minor units).
- Transaction (key <prefix>_squareorderid = order id): state is the order's state, or REFUNDED /
  PARTIALLY_REFUNDED when its refunds (COMPLETED, APPROVED or PENDING) add up to all / part of its total;
  amounts from the order's total_*_money; name "Sale <receipt number>" of its payment; linked to its store
  and, when the sale has a buyer, to the buyer's contact (the customer's, or the guest's by email).
- Line (key "<order id>.<line uid>", the scheme documented in shared/core/keys.py; Square ids are
  alphanumeric so nothing is escaped): the line's own name (else the catalog item's, else the documented
  placeholder "(unnamed item)"), quantity, money,
  and SKU / variation / category from Square's catalog; linked to its transaction.
- Payment (key id): status, money (absent tip or refunded money → 0), card brand, last 4, receipt, order.
- Refund (key id): status, amount, reason, payment and order ids.
- Store (key id): name, currency, time zone, status, address "line 1, city, state, postal code, country";
  owner, business unit and territory as the caller's expected owner map says (transactions from the store
  carry the same owner). Payments and refunds are linked to their sale's transaction.
- A Square customer's contact (merges followed): visits = its completed payments, lifetime value = their
  totals minus its completed refunds (in the currencies' units, added up), last purchase = the latest
  payment's created_at, top categories = up to three of the categories its sales hold most often.
- A case (incident) per refund of at least the threshold whose sale has a customer in the CRM.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from devstack.commerce_expected import (
    CUSTOMER_KEY,
    LINES,
    PAYMENTS,
    REFUNDS,
    STORES,
    TRANSACTIONS,
    CatalogLine,
    catalog_from,
    col,
    expected_lines,
    expected_payment,
    expected_refund,
    expected_store,
    expected_transaction,
    lookup,
    major,
    purchases,
    survivor,
)

__all__ = ["CatalogLine", "catalog_from", "commerce_differences"]
TOLERANCE = 1e-9


def _differs(row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    wrong = []
    for name, value in expected.items():
        actual = row.get(name)
        if isinstance(value, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
            if abs(actual - value) > TOLERANCE:
                wrong.append(name)
        elif actual != value:
            wrong.append(name)
    return wrong


def _by(rows: list[dict[str, Any]], column: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get(column):
            found.setdefault(str(row[column]), []).append(row)
    return found


def _row_id(rows: list[dict[str, Any]], id_column: str) -> Any:
    return rows[0][id_column] if len(rows) == 1 else f"(expected one row, found {len(rows)})"


class _Check:
    """Square's state, the CRM's rows indexed the ways the checks look them up, and the expectations."""

    def __init__(
        self,
        square: dict[str, Any],
        crm: dict[str, list[dict[str, Any]]],
        catalog: dict[str, CatalogLine],
        owners: dict[str, dict[str, str]] | None,
    ) -> None:
        self.square, self.catalog, self.owners = square, catalog, owners
        self.merged_into: dict[str, str] = square.get("merged_into", {})
        self.transactions = _by(crm[TRANSACTIONS], col("squareorderid"))
        self.lines = _by(crm[LINES], col("squarelinekey"))
        self.payments = _by(crm[PAYMENTS], col("squarepaymentid"))
        self.refunds = _by(crm[REFUNDS], col("squarerefundid"))
        self.stores = _by(crm[STORES], col("squarelocationid"))
        contacts = [c for c in crm.get("contacts", []) if c["statecode"] == 0]
        self.contact_by_customer = {c[CUSTOMER_KEY]: c for c in contacts if c.get(CUSTOMER_KEY)}
        self.active_by_email: dict[str, list[dict[str, Any]]] = {}
        for contact in contacts:
            if contact.get("emailaddress1"):
                self.active_by_email.setdefault(contact["emailaddress1"].strip().lower(), []).append(contact)
        self.has_contacts = "contacts" in crm
        self.incidents = crm.get("incidents", [])

    # -- where rows must point
    def buyer_contact(self, order: dict[str, Any], payment: dict[str, Any] | None) -> Any:
        """The contact id the sale must be linked to: the Square customer's (merges followed), else the
        guest's one active contact with the buyer's email; None when the sale has no buyer, or a buyer who
        never reached the CRM (the customer check reports why)."""
        customer_id = survivor(order.get("customer_id") or (payment or {}).get("customer_id"), self.merged_into)
        if customer_id:
            contact = self.contact_by_customer.get(customer_id)
            return contact["contactid"] if contact else None
        email = ((payment or {}).get("buyer_email_address") or "").strip().lower()
        if email:
            found = self.active_by_email.get(email, [])
            return found[0]["contactid"] if len(found) == 1 else f"(expected one guest contact, found {len(found)})"
        return None

    def transaction_link(self, order_id: str | None) -> Any:
        return _row_id(self.transactions.get(order_id or "", []), col("transactionid")) if order_id else None

    def store_links(self, location_id: str) -> dict[str, Any]:
        """A record from this store points at its store row and the owner the map gives (if given)."""
        wanted = {"locationid": _row_id(self.stores.get(location_id, []), col("locationid"))}
        if self.owners is not None and "owner" in self.owners.get(location_id, {}):
            wanted["owner"] = self.owners[location_id]["owner"]
        return wanted

    # -- the checks
    def order(self, order: dict[str, Any], payment: dict[str, Any] | None) -> str | None:
        rows = self.transactions.get(order["id"], [])
        if len(rows) != 1:
            return f"expected one transaction, found {len(rows)}"
        (row,) = rows
        wrong = _differs(row, expected_transaction(order, payment))
        links = self.store_links(order["location_id"])
        if self.has_contacts:
            links["contactid"] = self.buyer_contact(order, payment)
        wrong += [f"{name} link" for name, target in links.items() if row.get(lookup(name)) != target]
        for key, expected in expected_lines(order, self.catalog).items():
            found = self.lines.get(key, [])
            if len(found) != 1 or found[0].get(lookup("transactionid")) != row[col("transactionid")]:
                wrong.append(f"line {key}")
            else:
                wrong += [f"line.{name}" for name in _differs(found[0], expected)]
        return f"differs: {', '.join(sorted(set(wrong)))}" if wrong else None

    def orders(self) -> dict[str, str]:
        payment_of = {p.get("order_id"): p for p in self.square["payments"]}
        found = {o["id"]: self.order(o, payment_of.get(o["id"])) for o in self.square["orders"]}
        return {order_id: problem for order_id, problem in found.items() if problem}

    @staticmethod
    def rows(
        objects: list[dict[str, Any]],
        indexed: dict[str, list[dict[str, Any]]],
        expect: Callable[[dict[str, Any]], dict[str, Any]],
        links: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, str]:
        """Each object's one row holds the expected columns, and its lookups point at the expected rows."""
        problems: dict[str, str] = {}
        for obj in objects:
            found = indexed.get(obj["id"], [])
            if len(found) != 1:
                problems[obj["id"]] = f"expected one row, found {len(found)}"
                continue
            wrong = _differs(found[0], expect(obj))
            wrong += [f"{name} link" for name, target in links(obj).items() if found[0].get(lookup(name)) != target]
            if wrong:
                problems[obj["id"]] = f"differs: {', '.join(wrong)}"
        return problems

    def payments_refunds_stores(self) -> dict[str, str]:
        square = self.square
        problems = self.rows(
            square["payments"],
            self.payments,
            expected_payment,
            lambda p: {"transactionid": self.transaction_link(p.get("order_id"))},
        )
        problems |= self.rows(
            square["refunds"],
            self.refunds,
            expected_refund,
            lambda r: {"transactionid": self.transaction_link(r.get("order_id"))},
        )
        problems |= self.rows(
            square["locations"],
            self.stores,
            lambda loc: expected_store(loc, self.owners),
            lambda loc: {k: v for k, v in self.store_links(loc["id"]).items() if k == "owner"},
        )
        return problems

    def aggregates(self) -> dict[str, str]:
        """Visits, lifetime value, last purchase and top categories of every Square customer's contact."""
        problems = {}
        for customer, bought in purchases(self.square, self.catalog).items():
            contact = self.contact_by_customer.get(customer)
            if contact is None:
                continue  # never reached the CRM: the customer check says why
            wrong = _differs(contact, bought.expected())
            if bought.top_categories_wrong(contact.get(col("topcategories"))):
                wrong.append(col("topcategories"))
            if wrong:
                problems[f"contact of {customer}"] = f"differs: {', '.join(wrong)}"
        return problems

    def cases(self, threshold: float) -> dict[str, str]:
        """One case (incident) per refund of at least `threshold` (in the currency's units) whose sale has a
        Square customer in the CRM, linked to that contact; none for any other refund."""
        customer_of_order = {o["id"]: survivor(o.get("customer_id"), self.merged_into) for o in self.square["orders"]}
        problems = {}
        for refund in self.square["refunds"]:
            contact = self.contact_by_customer.get(customer_of_order.get(refund.get("order_id", "")) or "")
            large = (major(refund["amount_money"]) or 0) >= Decimal(str(threshold))
            cases = [i for i in self.incidents if refund["id"] in (i.get("description") or "")]
            wanted = [contact["contactid"]] if contact is not None and large else []
            if [i.get("_customerid_value") for i in cases] != wanted:
                problems[f"case for {refund['id']}"] = f"expected {len(wanted)} case(s), found {len(cases)}"
        return problems


def commerce_differences(
    square: dict[str, Any],
    crm: dict[str, list[dict[str, Any]]],
    catalog: dict[str, CatalogLine],
    owners: dict[str, dict[str, str]] | None = None,
    case_threshold: float | None = None,
) -> dict[str, str]:
    """Problems by Square object id; empty when every order, line, payment, refund and store matches.

    `square` is the Square emulator's commerce state (plus `merged_into` from its customers: buyers follow
    merges); `crm` holds the CRM tables, with `contacts` when buyer links and aggregates are to be checked
    (and `incidents` for cases); `owners` is the expected store → {owner, business_unit, territory} map;
    `case_threshold` the refund amount from which a case is expected. Each check runs only with its data.
    """
    check = _Check(square, crm, catalog, owners)
    problems = check.orders() | check.payments_refunds_stores()
    if check.has_contacts:
        problems |= check.aggregates()
        if case_threshold is not None:
            problems |= check.cases(case_threshold)
    return problems
