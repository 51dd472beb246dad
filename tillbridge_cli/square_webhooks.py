"""`tillbridge square register-webhook`: create or update the Square webhook subscription for the deployed
URL with the event types Tillbridge handles, and put its signature key in Key Vault.

Square's Webhook Subscriptions API (square/square-ruby-sdk doc/api/webhook-subscriptions.md):
GET/POST /v2/webhooks/subscriptions, PUT /v2/webhooks/subscriptions/{id},
POST /v2/webhooks/subscriptions/{id}/signature-key. It needs the application's personal access token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from shared.pipeline.registry import ROUTES

SUBSCRIPTIONS = "/v2/webhooks/subscriptions"


class RegistrationError(Exception):
    """Square refused; the message carries Square's error code."""


class SecretStore(Protocol):
    def set_secret(self, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class Registration:
    subscription_id: str
    created: bool
    key_stored: bool
    event_types: tuple[str, ...]


def handled_event_types() -> list[str]:
    return sorted(ROUTES)


class WebhookRegistrar:
    def __init__(self, http: httpx.Client, base_url: str, token: str, api_version: str = "2025-08-20") -> None:
        self.http, self.base = http, base_url.rstrip("/")
        self.api_version = api_version
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Square-Version": api_version,
            "Content-Type": "application/json",
        }

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.http.request(method, self.base + path, json=body, params=params, headers=self.headers)
        document: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            errors = document.get("errors") or [{}]
            raise RegistrationError(
                f"Square {response.status_code} {errors[0].get('code', '')}: {errors[0].get('detail', '')}"
            )
        return document

    def find(self, notification_url: str) -> dict[str, Any] | None:
        cursor: str | None = None
        while True:
            params = {"include_disabled": "true", **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", SUBSCRIPTIONS, params=params)
            for subscription in page.get("subscriptions", []):
                if subscription.get("notification_url") == notification_url:
                    return dict(subscription)
            cursor = page.get("cursor")
            if not cursor:
                return None

    def register(
        self,
        notification_url: str,
        secrets: SecretStore | None,
        *,
        name: str = "Tillbridge",
        rotate_key: bool = False,
        secret_name: str = "square-webhook-signature-key",
    ) -> Registration:
        events = handled_event_types()
        existing = self.find(notification_url)
        if existing is None:
            body = {
                "idempotency_key": str(uuid.uuid4()),
                "subscription": {
                    "name": name,
                    "event_types": events,
                    "notification_url": notification_url,
                    "api_version": self.api_version,
                },
            }
            subscription = self._call("POST", SUBSCRIPTIONS, body)["subscription"]
            key: str | None = subscription.get("signature_key")
            created = True
        else:
            update = {"subscription": {"name": name, "event_types": events, "enabled": True}}
            subscription = self._call("PUT", f"{SUBSCRIPTIONS}/{existing['id']}", update)["subscription"]
            key = None
            if rotate_key:
                rotated = self._call(
                    "POST", f"{SUBSCRIPTIONS}/{existing['id']}/signature-key", {"idempotency_key": str(uuid.uuid4())}
                )
                key = rotated.get("signature_key")
            created = False
        stored = False
        if key and secrets is not None:
            secrets.set_secret(secret_name, key)
            stored = True
        return Registration(str(subscription["id"]), created, stored, tuple(subscription.get("event_types", events)))


class KeyVaultSecrets:
    """Writes secrets with the caller's Azure identity (needs Key Vault Secrets Officer on the vault)."""

    def __init__(self, vault_name: str) -> None:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        self._client = SecretClient(f"https://{vault_name}.vault.azure.net", DefaultAzureCredential())

    def set_secret(self, name: str, value: str) -> None:
        self._client.set_secret(name, value, content_type="text/plain")
