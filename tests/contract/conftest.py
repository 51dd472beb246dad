from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.dataverse_emulator.app import create_app as dataverse_app
from devstack.dataverse_emulator.server import Emulator
from devstack.square_emulator.app import create_app as square_app
from devstack.square_emulator.delivery import DeliveryConfig
from tests.support import ThreadedServer, WebhookReceiver

SQUARE_TOKEN = "square-test-token"
DATAVERSE_TOKEN = "dataverse-test-token"
SIGNATURE_KEY = "contract-signature-key"
NOTIFICATION_URL = "https://tillbridge.example/api/square/webhooks"


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ThreadedServer]]:
    hook = WebhookReceiver()
    server = ThreadedServer(hook.app).start()
    yield hook, server
    server.stop()


@pytest.fixture
def square(receiver: tuple[WebhookReceiver, ThreadedServer]) -> Iterator[httpx.Client]:
    _, hook_server = receiver
    config = DeliveryConfig(
        target_url=f"{hook_server.url}/hook", signature_key=SIGNATURE_KEY, notification_url=NOTIFICATION_URL
    )
    server = ThreadedServer(square_app(SQUARE_TOKEN, config)).start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {SQUARE_TOKEN}"}, timeout=30) as client:
        yield client
    server.stop()


@pytest.fixture
def dataverse() -> Iterator[httpx.Client]:
    server = ThreadedServer(dataverse_app(Emulator(token=DATAVERSE_TOKEN))).start()
    headers = {"Authorization": f"Bearer {DATAVERSE_TOKEN}", "OData-Version": "4.0", "Accept": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client
    server.stop()
