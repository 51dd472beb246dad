"""Many ledger rows at once, written as entity-group transactions (≤ 100 operations, one PartitionKey:
reference/azure.md §4) — a transaction that fails (one row changed since it was read) falls back to
row-by-row saves, so each row keeps its own ETag rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ServiceResponseError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.core.errors import ConcurrencyError, TransientError
from shared.core.ports import LedgerRow

TRANSACTION_SIZE = 100  # Table Storage's limit per entity-group transaction


def write_many(
    table: TableClient,
    rows: Sequence[LedgerRow],
    to_entity: Callable[[LedgerRow], dict[str, Any]],
    save_one: Callable[[LedgerRow], LedgerRow],
) -> list[LedgerRow | Exception]:
    results: list[LedgerRow | Exception] = []
    for start in range(0, len(rows), TRANSACTION_SIZE):
        group = list(rows[start : start + TRANSACTION_SIZE])
        operations: list[Any] = []
        for row in group:
            entity = to_entity(row)
            if row.etag is None:
                operations.append(("create", entity))
            else:
                options = {
                    "mode": UpdateMode.REPLACE,
                    "etag": row.etag,
                    "match_condition": MatchConditions.IfNotModified,
                }
                operations.append(("update", entity, options))
        try:
            answers = table.submit_transaction(operations)
        except TableTransactionError:  # one row changed since it was read: each row on its own
            results += [_save_alone(save_one, row) for row in group]
            continue
        except ServiceResponseError as error:  # the connection dropped: nothing is known to have been applied
            raise TransientError(f"ledger transaction not answered: {type(error).__name__}") from error
        for row, answer in zip(group, answers, strict=True):
            row.etag = answer.get("etag")
            results.append(row)
    return results


def _save_alone(save_one: Callable[[LedgerRow], LedgerRow], row: LedgerRow) -> LedgerRow | Exception:
    try:
        return save_one(row)
    except ConcurrencyError as error:
        return error
