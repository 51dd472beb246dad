"""The organisation's data with the platform behaviour around every write: the standard tables' rules
(crm_tables.py), the caller recorded in createdby/modifiedby/ownerid (identity.py), and the tombstones of deleted
rows that change tracking reports (change_tracking.py)."""

from __future__ import annotations

from typing import Any

from devstack.dataverse_emulator.crm_tables import CrmTableDef
from devstack.dataverse_emulator.delta_tokens import ChangeTracking
from devstack.dataverse_emulator.identity import AUDIT_COLUMNS, stamp
from devstack.dataverse_emulator.store import Store, Table


class OrgStore(Store):
    def __init__(self, tables: list[Any]) -> None:
        super().__init__(tables)
        self.tombstones: dict[str, dict[str, int]] = {}  # entity set → deleted row id → version of the delete
        self.tracking = ChangeTracking()  # organisation settings: tables that track changes, issued tokens

    def create(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        definition = table.definition
        if isinstance(definition, CrmTableDef):
            values = definition.prepare_create(values)
        return self.insert(table, _without_audit(values), now, row_id)

    def insert(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        """A row the platform itself writes (list members): no caller-facing column rules, still audited."""
        row = super().create(table, values, now, row_id)
        self._after_write(table, row, created=True)
        return row

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        definition = table.definition
        if isinstance(definition, CrmTableDef):
            values = definition.prepare_update(values)
        super().update(table, row, _without_audit(values), now)
        self._after_write(table, row, created=False)
        return row

    def maintain(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        """A system-maintained column the platform updates itself (list.membercount): a new version, audited."""
        super().update(table, row, values, now)
        self._after_write(table, row, created=False)
        return row

    def delete(self, table: Table, row_id: str) -> None:
        table.rows.pop(row_id)
        self.tombstones.setdefault(table.definition.entity_set, {})[row_id] = next(self._versions)

    def table_version(self, table: Table) -> int:
        """The newest change in a table: the version a delta token issued now stands for."""
        versions = [int(row["versionnumber"]) for row in table.rows.values()]
        versions += self.tombstones.get(table.definition.entity_set, {}).values()
        return max(versions, default=0)

    @staticmethod
    def _after_write(table: Table, row: dict[str, Any], created: bool) -> None:
        definition = table.definition
        stamp(row, created, owner_column="_ownerid_value" in definition.columns)
        if isinstance(definition, CrmTableDef):
            definition.compose(row)


def _without_audit(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in AUDIT_COLUMNS}
