"""Bearer tokens for Dataverse: managed identity or client secret (azure-identity), or a static token."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Protocol

from shared.config.settings import DataverseSettings


class TokenProvider(Protocol):
    async def token(self) -> str: ...

    def invalidate(self) -> None: ...


class StaticToken:
    """For the emulator and for tests: the token comes from DATAVERSE_TOKEN."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self) -> None:
        return None


class _AccessToken(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class _SyncCredential(Protocol):
    def get_token(self, *scopes: str) -> _AccessToken: ...


class CredentialToken:
    """Wraps an azure-identity credential; caches the token until five minutes before it expires."""

    def __init__(self, credential: _SyncCredential, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._token = ""
        self._expires_on = 0.0
        self._lock: asyncio.Lock | None = None

    async def token(self) -> str:
        if self._token and time.time() < self._expires_on - 300:
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._token or time.time() >= self._expires_on - 300:
                access = await asyncio.to_thread(self._credential.get_token, self._scope)
                self._token = str(access.token)
                self._expires_on = float(access.expires_on)
        return self._token

    def invalidate(self) -> None:
        self._token = ""


def token_provider(settings: DataverseSettings) -> TokenProvider:
    """Built once by the composition root; azure.identity is imported only when it is needed."""
    if settings.auth == "static_token":
        return StaticToken(settings.static_token)
    scope = f"{settings.url}/.default"
    if settings.auth == "client_secret":
        from azure.identity import ClientSecretCredential

        credential: _SyncCredential = ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret
        )
    else:
        from azure.identity import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=settings.client_id or None)
    return CredentialToken(credential, scope)


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def app_users(settings: DataverseSettings) -> list[tuple[str, TokenProvider]]:
    """Every configured application user as (key for its rate gate, token provider). Several users are
    given as comma-separated DATAVERSE_CLIENT_ID (with as many DATAVERSE_CLIENT_SECRET values, same order,
    for client_secret) or DATAVERSE_TOKEN values (static_token): each has its own service-protection budget."""
    if settings.auth == "static_token":
        tokens = _listed(settings.static_token) or [settings.static_token]
        return [(f"{settings.url}|static|{n}", StaticToken(token)) for n, token in enumerate(tokens)]
    client_ids = _listed(settings.client_id) or [settings.client_id]
    secrets = _listed(settings.client_secret) or [settings.client_secret] * len(client_ids)
    users = []
    for client_id, secret in zip(client_ids, secrets, strict=False):
        single = replace(settings, client_id=client_id, client_secret=secret)
        users.append((user_key(single), token_provider(single)))
    return users


def user_key(settings: DataverseSettings) -> str:
    """Identifies the application user, so all clients acting as it share one rate gate."""
    return f"{settings.url}|{settings.auth}|{settings.client_id}"
