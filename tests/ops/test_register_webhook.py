"""`tillbridge square register-webhook` against the Square emulator, storing the key in a fake vault."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.square_emulator.app import create_app
from devstack.square_emulator.delivery import DeliveryConfig
from tests.support import ThreadedServer
from tillbridge_cli.square_webhooks import RegistrationError, WebhookRegistrar, handled_event_types

TOKEN = "app-personal-token"
URL = "https://func-tillbridge.azurewebsites.net/api/square/webhooks"


class FakeVault:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}

    def set_secret(self, name: str, value: str) -> None:
        self.secrets[name] = value


@pytest.fixture
def registrar() -> Iterator[WebhookRegistrar]:
    server = ThreadedServer(create_app(TOKEN, DeliveryConfig())).start()
    with httpx.Client() as http:
        yield WebhookRegistrar(http, server.url, TOKEN)
    server.stop()


def test_first_run_creates_the_subscription_and_stores_its_key(registrar: WebhookRegistrar) -> None:
    vault = FakeVault()
    result = registrar.register(URL, vault)
    assert result.created and result.key_stored
    assert list(result.event_types) == handled_event_types()
    assert {
        "customer.created",
        "payment.created",
        "refund.updated",
        "location.created",
        "catalog.version.updated",
    } <= set(result.event_types)
    assert len(vault.secrets["square-webhook-signature-key"]) >= 16
    found = registrar.find(URL)
    assert found is not None and "signature_key" not in found  # list responses never carry the key


def test_second_run_updates_in_place_and_keeps_the_key_unless_rotated(registrar: WebhookRegistrar) -> None:
    vault = FakeVault()
    first = registrar.register(URL, vault)
    original = vault.secrets["square-webhook-signature-key"]
    again = registrar.register(URL, vault)
    assert not again.created and again.subscription_id == first.subscription_id and not again.key_stored
    assert vault.secrets["square-webhook-signature-key"] == original
    rotated = registrar.register(URL, vault, rotate_key=True)
    assert rotated.key_stored and vault.secrets["square-webhook-signature-key"] != original


def test_square_errors_are_reported(registrar: WebhookRegistrar) -> None:
    with pytest.raises(RegistrationError, match="INVALID_VALUE"):
        registrar.register("ftp://not-https.example/hook", FakeVault())


def test_wrong_token_is_refused() -> None:
    server = ThreadedServer(create_app(TOKEN, DeliveryConfig())).start()
    try:
        with httpx.Client() as http, pytest.raises(RegistrationError, match="401"):
            WebhookRegistrar(http, server.url, "wrong").register(URL, FakeVault())
    finally:
        server.stop()
