"""The organisation's data with the platform behaviour around every write: the standard tables' rules
(crm_tables.py), the caller recorded in createdby/modifiedby/ownerid (identity.py), the tombstones of deleted rows
that change tracking reports (change_tracking.py), and list memberships a delete takes with it (memberships.py).

Every write path — single requests, $batch parts, bulk messages, list actions — goes through these methods, and
each lands in the base Store's undo log: the platform's columns are written with the row (so the undo restores
them too), and a tombstone is withdrawn when its delete is rolled back.
"""

from __future__ import annotations

from typing import Any

from devstack.dataverse_emulator.crm_tables import CrmTableDef
from devstack.dataverse_emulator.delta_tokens import ChangeTracking
from devstack.dataverse_emulator.identity import audit_values
from devstack.dataverse_emulator.memberships import after_delete
from devstack.dataverse_emulator.store import AUDIT_COLUMNS, Store, Table


class OrgStore(Store):
    def __init__(self, tables: list[Any]) -> None:
        super().__init__(tables)
        self.tombstones: dict[str, dict[str, int]] = {}  # entity set → deleted row id → version of the delete
        self.tracking = ChangeTracking()  # organisation settings: tables that track changes, issued tokens

    def create(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        """A caller's create: the table's column rules, then the platform's columns."""
        definition = table.definition
        if isinstance(definition, CrmTableDef):
            values = definition.prepare_create(values)
        return self.insert(table, _without_audit(values), now, row_id)

    def insert(self, table: Table, values: dict[str, Any], now: str, row_id: str | None = None) -> dict[str, Any]:
        """A row the platform itself writes (list members): no caller-facing column rules, still audited."""
        return super().create(table, _with_platform_columns(table, values, None), now, row_id)

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        """A caller's update: create-only and system-maintained columns keep their values."""
        definition = table.definition
        if isinstance(definition, CrmTableDef):
            values = definition.prepare_update(values)
        return self.maintain(table, row, _without_audit(values), now)

    def maintain(self, table: Table, row: dict[str, Any], values: dict[str, Any], now: str) -> dict[str, Any]:
        """A column the platform updates itself (list.membercount): a new version, audited."""
        return super().update(table, row, _with_platform_columns(table, values, row), now)

    def delete(self, table: Table, row: dict[str, Any]) -> None:
        super().delete(table, row)
        self._tombstone(table, str(row[table.definition.id_column]))
        after_delete(self, table, row)

    def table_version(self, table: Table) -> int:
        """The newest change in a table: the version a delta token issued now stands for."""
        versions = [int(row["versionnumber"]) for row in table.rows.values()]
        versions += self.tombstones.get(table.definition.entity_set, {}).values()
        return max(versions, default=0)

    def _tombstone(self, table: Table, row_id: str) -> None:
        deleted = self.tombstones.setdefault(table.definition.entity_set, {})
        earlier = deleted.get(row_id)  # the same id deleted before (and created again)
        deleted[row_id] = next(self._versions)

        def withdraw() -> None:
            if earlier is None:
                deleted.pop(row_id, None)
            else:
                deleted[row_id] = earlier

        self.on_undo(withdraw)


def _with_platform_columns(table: Table, values: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The values plus what the platform writes with them: the caller's audit columns and composed columns."""
    definition = table.definition
    written = {**values, **audit_values(row is None, "_ownerid_value" in definition.columns, values)}
    if isinstance(definition, CrmTableDef):
        written.update(definition.composed({**(row or {}), **written}))
    return written


def _without_audit(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in AUDIT_COLUMNS}
