"""Helpers over a running local stack: drive the Square emulator, read the CRM, compare the two."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from devstack.crm_check import differences
from devstack.stack import Stack
from shared.adapters.table_state import table_state_store
from shared.core.ports import FailureRecord

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Poll `check` until it returns without raising (its value) or the timeout passes (its last error)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


class StackKit:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.square = stack.client("square")
        self.dataverse = stack.client("dataverse")
        self.host = stack.client("host")

    # -- Square side
    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.square.post("/_control/customers", json=fields)
        response.raise_for_status()
        return dict(response.json())

    def create_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.square.post("/_control/customers", json=items)
        response.raise_for_status()
        return list(response.json())

    def update(self, customer_id: str, **fields: Any) -> dict[str, Any]:
        response = self.square.patch(f"/_control/customers/{customer_id}", json=fields)
        response.raise_for_status()
        return dict(response.json())

    def delete(self, customer_id: str) -> None:
        self.square.delete(f"/_control/customers/{customer_id}").raise_for_status()

    def merge(self, *customer_ids: str) -> dict[str, Any]:
        response = self.square.post("/_control/merge", json={"customer_ids": list(customer_ids)})
        response.raise_for_status()
        return dict(response.json())

    def delivery(self, **config: Any) -> dict[str, Any]:
        return dict(self.square.post("/_control/delivery", json=config).json())

    def flush(self, timeout: float = 60) -> dict[str, Any]:
        response = self.square.post("/_control/flush", params={"timeout": str(timeout)}, timeout=timeout + 5)
        assert response.json()["idle"], "webhook delivery did not finish"
        return dict(response.json()["stats"])

    def square_state(self) -> dict[str, Any]:
        return dict(self.square.get("/_control/customers").json())

    # -- the Point-of-Sale side
    def add_store(self, **fields: Any) -> dict[str, Any]:
        response = self.square.post("/_control/locations", json=fields)
        response.raise_for_status()
        return dict(response.json())

    def edit_catalog(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.square.post("/_control/catalog", json={"items": items})
        response.raise_for_status()
        return list(response.json()["objects"])

    def sale(self, **sale: Any) -> dict[str, Any]:
        response = self.square.post("/_control/sales", json=sale)
        response.raise_for_status()
        return dict(response.json())

    def refund(self, payment_id: str, amount: int | None = None, reason: str = "Customer request") -> dict[str, Any]:
        response = self.square.post(
            "/_control/refunds", json={"payment_id": payment_id, "amount": amount, "reason": reason}
        )
        response.raise_for_status()
        return dict(response.json())

    def commerce_state(self) -> dict[str, Any]:
        return dict(self.square.get("/_control/commerce").json())

    def crm_table(self, entity_set: str) -> list[dict[str, Any]]:
        return list(self.dataverse.get(f"/_control/tables/{entity_set}").json())

    def crm_commerce(self) -> dict[str, list[dict[str, Any]]]:
        return {
            name: self.crm_table(name)
            for name in ("tb_transactions", "tb_transactionlines", "tb_payments", "tb_refunds", "tb_locations")
        }

    # -- CRM side
    def contacts(self) -> list[dict[str, Any]]:
        return list(self.dataverse.get("/_control/tables/contacts").json())

    def failures(self, flow: str | None = "customers") -> list[FailureRecord]:
        store = table_state_store(self.stack.env["AzureWebJobsStorage"], "", "", "tillbridge")
        return asyncio.run(store.list_failures(flow))

    def open_failures_for(self, ids: set[str]) -> list[FailureRecord]:
        return [f for f in self.failures() if f.record_id in ids and f.status == "open"]

    # -- comparison
    def assert_crm_matches_square(self, customer_ids: set[str]) -> None:
        """Only the given customers are checked (other tests share the stack)."""
        problems = differences(customer_ids, self.square_state(), self.contacts())
        assert not problems, f"CRM differs from Square: {problems}"

    def converge(self, customer_ids: set[str], timeout: float = 90) -> None:
        self.flush()
        wait_until(lambda: self.assert_crm_matches_square(customer_ids), timeout=timeout)

    def reset_dataverse_faults(self) -> None:
        self.dataverse.delete("/_control/faults")
        self.dataverse.post(
            "/_control/limits",
            json={
                "requests_per_window": 6000,
                "window_seconds": 300,
                "max_concurrency": 52,
                "retry_after_seconds": 5,
                "latency_ms": 0,
                "jitter_ms": 0,
            },
        )

    def close(self) -> None:
        for client in (self.square, self.dataverse, self.host):
            client.close()


def signed_post(kit: StackKit, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-square-hmacsha256-signature"] = signature
    return kit.host.post("/api/square/webhooks", content=body, headers=headers)


class OpsClient:
    """The admin API with the stack's function key (and without it, to check the refusal)."""

    def __init__(self, stack: Stack) -> None:
        self.key = stack.env["LOCAL_FUNCTION_KEY"]
        self.http = httpx.Client(
            base_url=f"{stack.urls['host']}/api/ops/", headers={"x-functions-key": self.key}, timeout=60
        )

    def get(self, path: str, **params: str) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()
