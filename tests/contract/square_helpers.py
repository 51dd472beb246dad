"""Small helpers shared by the Square emulator contract tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.support import ThreadedServer, WebhookReceiver

Receiver = tuple[WebhookReceiver, ThreadedServer]


def refusal(response: httpx.Response) -> tuple[int, str, str | None]:
    """(status, Square error code, field) of an error answer, checking Square's error body on the way."""
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) <= {"category", "code", "detail", "field"} and {"category", "code", "detail"} <= set(error)
    return response.status_code, error["code"], error.get("field")


def seed(square: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = square.post("/_control/customers", json=fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def history(square: httpx.Client, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = square.post("/_control/history/customers", json=items)
    assert response.status_code == 200, response.text
    return list(response.json()["customers"])


def flush(square: httpx.Client) -> None:
    assert square.post("/_control/flush", params={"timeout": "20"}).json()["idle"]


def delivered(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in receiver[0].deliveries]


def every_page(fetch: Callable[[str | None], httpx.Response], name: str) -> tuple[list[dict[str, Any]], int]:
    """All objects over every page (following `cursor`), and the number of pages."""
    objects: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        response = fetch(cursor)
        assert response.status_code == 200, response.text
        body = response.json()
        objects.extend(body.get(name, []))
        pages += 1
        cursor = body.get("cursor")
        if not cursor:
            return objects, pages
