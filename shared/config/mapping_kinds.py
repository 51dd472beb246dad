"""What each mapping section of the configuration file maps: the CRM table it writes, the Square fields a
column may come `from`, and the values Tillbridge computes for it (`computed.<name>`), plus the named
transforms. The flows build their source values from these same names (shared/flows/mapping_engine.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from shared.core.models import SquareCustomer

Owner = str  # one of OWNERS
OWNERS = ("square", "crm", "both", "crm_if_empty")  # who wins per contact field (two-way sync, issue 12)
DEFAULT_OWNER = "square"

# name → what it does (shown in `allowed:` of errors and in docs/configuration.md)
TRANSFORMS = {
    "trim": "strip spaces; an empty text becomes null",
    "lower": "lower-case a text",
    "upper": "upper-case a text",
    "e164": "a phone number in E.164 form (+15551234567), national numbers in DEFAULT_PHONE_REGION",
    "email": "a syntax-checked email address (domain lower-cased)",
    "date": "a YYYY-MM-DD date (a birthday without a year, 0000-MM-DD, is not written)",
    "boolean": "true/false (nothing counts as false)",
    "money": "a Square money object as a decimal in the currency's major unit",
    "truncate": "cut a text to the column's length (an empty text becomes null)",
    "constant": "`{constant: <value>}` writes that value whatever the Square field holds",
    "skip": "the column is not written at all",
}


def _model_paths(model: type[BaseModel], prefix: str = "") -> tuple[str, ...]:
    paths: list[str] = []
    for name, info in model.model_fields.items():
        paths.append(prefix + name)
        nested = info.annotation
        for candidate in getattr(nested, "__args__", (nested,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths.extend(_model_paths(candidate, f"{prefix}{name}."))
    return tuple(paths)


@dataclass(frozen=True)
class MappingKind:
    """One mapping section: `table` is a logical name ("{prefix}" stands for the publisher prefix)."""

    name: str
    table: str
    square_fields: tuple[str, ...]  # a `from` path must start with one of these (contact: the full path)
    computed: tuple[str, ...] = ()
    exact_paths: bool = False  # contact: the path must be a field of the customer model

    def table_for(self, prefix: str) -> str:
        return self.table.replace("{prefix}", prefix)

    def allows_source(self, source: str) -> bool:
        if source.startswith("computed."):
            return source.removeprefix("computed.") in self.computed
        if self.exact_paths:
            return source in self.square_fields
        return source.split(".", 1)[0] in self.square_fields


_ORDER = [
    "id",
    "location_id",
    "customer_id",
    "reference_id",
    "state",
    "source",
    "version",
    "created_at",
    "updated_at",
    "closed_at",
    "ticket_name",
    "total_money",
    "total_tax_money",
    "total_discount_money",
    "total_tip_money",
    "total_service_charge_money",
    "net_amounts",
]
_PAYMENT = [
    "id",
    "status",
    "order_id",
    "location_id",
    "customer_id",
    "amount_money",
    "tip_money",
    "total_money",
    "app_fee_money",
    "refunded_money",
    "source_type",
    "card_details",
    "cash_details",
    "receipt_number",
    "receipt_url",
    "buyer_email_address",
    "note",
    "reference_id",
    "created_at",
    "updated_at",
]
_LINE = [
    "uid",
    "name",
    "quantity",
    "catalog_object_id",
    "variation_name",
    "note",
    "base_price_money",
    "gross_sales_money",
    "total_discount_money",
    "total_tax_money",
    "total_money",
]
_REFUND = [
    "id",
    "status",
    "amount_money",
    "reason",
    "payment_id",
    "order_id",
    "location_id",
    "created_at",
    "updated_at",
]
_LOCATION = [
    "id",
    "name",
    "status",
    "currency",
    "timezone",
    "country",
    "business_name",
    "address",
    "phone_number",
    "description",
]
# What a rule's action knows about the sale (shared/rules/facts.py builds exactly these).
FACT_FIELDS = (
    "rule_id",
    "event",
    "date",
    "order_id",
    "payment_id",
    "refund_id",
    "receipt_number",
    "location_id",
    "currency",
    "order_total",
    "refund_amount",
    "categories",
    "skus",
    "visits",
    "lifetime_value",
    "buyer_email",
    "days_since_last_visit",
)

KINDS: dict[str, MappingKind] = {
    k.name: k
    for k in (
        MappingKind("contact", "contact", _model_paths(SquareCustomer), exact_paths=True),
        MappingKind("transaction", "{prefix}_transaction", tuple(_ORDER), ("state", "refunded_amount")),
        MappingKind("sale", "{prefix}_transaction", tuple(_PAYMENT), ("sale_name",)),
        MappingKind(
            "transaction_line",
            "{prefix}_transactionline",
            tuple(_LINE),
            ("name", "quantity", "currency", "sku", "item_name", "variation_name", "category_name"),
        ),
        MappingKind(
            "payment",
            "{prefix}_payment",
            tuple(_PAYMENT),
            ("name", "currency", "tip_amount", "refunded_amount", "card_brand", "last_4"),
        ),
        MappingKind("refund", "{prefix}_refund", tuple(_REFUND), ("name",)),
        MappingKind(
            "location", "{prefix}_location", tuple(_LOCATION), ("name", "address", "business_unit", "territory")
        ),
        MappingKind("lead", "lead", (), FACT_FIELDS),
        MappingKind("opportunity", "opportunity", (), FACT_FIELDS),
        MappingKind("task", "task", (), FACT_FIELDS),
    )
}
