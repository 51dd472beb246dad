"""Typed settings read from the environment; one error lists every bad setting by name, never its value."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar, cast
from urllib.parse import urlsplit

from shared.config.location_owners import LocationOwners, load_location_owners
from shared.core.errors import ConfigurationError

KEY_VAULT_PREFIX = "@Microsoft.KeyVault("
# Settings that function bindings read as %NAME% (a trigger's queue, a timer's schedule). The Functions
# host needs each of them defined: the Bicep template writes every one, local.settings.sample.json lists
# them, and the local host fills a missing one from here — one definition of each default.
BINDING_DEFAULTS: dict[str, str] = {
    "SQUARE_EVENTS_QUEUE": "square-events",
    "RECONCILE_SCHEDULE": "0 */15 * * * *",
    "SEGMENTS_SCHEDULE": "0 5 * * * *",  # hourly: segment membership and inactivity rules
    "CRM_EVENTS_QUEUE": "crm-events",  # CRM contact changes for the crm-contacts flow (two-way sync)
    "CRM_CHANGES_SCHEDULE": "0 * * * * *",  # the change-tracking poll: every minute
}
DataverseAuth = Literal["managed_identity", "client_secret", "static_token"]
QueueBackend = Literal["servicebus", "storagequeue"]
T = TypeVar("T")


class _Reader:
    """Reads settings and collects every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        if value.startswith(KEY_VAULT_PREFIX):
            self.problems.append(
                f"{name}: Key Vault reference was not resolved (check the app identity's "
                "'Key Vault Secrets User' role and that the secret exists)"
            )
            return None
        return value.strip()

    def required(self, name: str, why: str = "") -> str:
        value = self.raw(name)
        if value is None and not self._already_reported(name):
            self.problems.append(f"{name}: missing{(' (' + why + ')') if why else ''}")
        return value or ""

    def optional(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def url(self, name: str, *, required: bool = True, default: str = "") -> str:
        value = self.required(name) if required else self.optional(name, default)
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.problems.append(f"{name}: not an absolute http(s) URL")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(name) or default
        if value is None:
            if not self._already_reported(name):
                self.problems.append(f"{name}: missing (one of {', '.join(allowed)})")
            return allowed[0]
        if value not in allowed:
            self.problems.append(f"{name}: must be one of {', '.join(allowed)}")
            return allowed[0]
        return value

    def number(self, name: str, default: T, parse: Callable[[str], T], low: float, high: float) -> T:
        text = self.raw(name)
        if text is None:
            return default
        try:
            value = parse(text)
        except ValueError:
            self.problems.append(f"{name}: not a number")
            return default
        if not low <= cast(float, value) <= high:
            self.problems.append(f"{name}: must be between {low:g} and {high:g}")
            return default
        return value

    def _already_reported(self, name: str) -> bool:
        return any(p.startswith(name + ":") for p in self.problems)


@dataclass(frozen=True)
class WebhookSettings:
    signature_key: str
    notification_url: str
    max_body_bytes: int


@dataclass(frozen=True)
class QueueSettings:
    backend: QueueBackend
    events_queue: str
    servicebus_connection: str
    servicebus_namespace: str
    servicebus_client_id: str
    # one message, headers included: 256 KB on Standard, the queue's maxMessageSizeInKilobytes on Premium
    # (up to 100 MB; reference/azure.md §3 "Size limits")
    servicebus_max_message_bytes: int
    max_delivery_attempts: int
    crm_events_queue: str
    retry_base_seconds: float
    retry_max_seconds: float
    held_redelivery_seconds: float  # a paused flow's (or an invalid configuration's) messages come back after


@dataclass(frozen=True)
class StorageSettings:
    connection_string: str
    account_name: str
    table_endpoint: str
    queue_endpoint: str
    blob_endpoint: str
    client_id: str
    table_prefix: str


@dataclass(frozen=True)
class SquareSettings:
    base_url: str
    access_token: str
    api_version: str
    timeout_seconds: float


@dataclass(frozen=True)
class DataverseSettings:
    url: str
    auth: DataverseAuth
    static_token: str
    tenant_id: str
    client_id: str
    client_secret: str
    api_version: str
    max_concurrency: int
    timeout_seconds: float
    max_inline_wait_seconds: float
    max_instances: int = 1  # instances that may share one application user's budget (the plan's maximum)
    requests_per_window: int = 6000  # service protection per application user per 5 minutes
    execution_seconds_per_window: float = 1200.0

    @property
    def user_count(self) -> int:
        """Application users: several comma-separated client ids (or static tokens) scale past one budget."""
        listed = self.static_token if self.auth == "static_token" else self.client_id
        return max(1, len([part for part in listed.split(",") if part.strip()]))


@dataclass(frozen=True)
class BulkSettings:
    backfill_chunk: int = 2000  # records per committed chunk (the resume point moves after each)
    request_size: int = 200  # records per UpsertMultiple/CreateMultiple request (several in flight)
    worker_batch_threshold: int = 4  # a delivered batch of at least this many messages is written in bulk


@dataclass(frozen=True)
class SyncSettings:
    prefix: str
    default_phone_region: str
    reconcile_lag_seconds: float = 300.0
    reconcile_first_lookback_hours: float = 24.0
    reconcile_sweep_batch: int = 1000
    trace_retention_days: float = 14.0
    trace_snapshots: str = "all"


@dataclass(frozen=True)
class TwoWaySettings:
    """Two-way contact sync besides the owners (those are in the configuration file's contact mapping)."""

    conflicts: str = "latest"  # latest | review
    crm_deletes: str = "ignore"  # ignore | delete
    create_in_square: bool = False
    catch_up_lag_seconds: float = 300.0
    page_size: int = 5000


@dataclass(frozen=True)
class SalesSettings:
    guest_checkout: str
    location_owners: LocationOwners
    refund_case_threshold: float | None


@dataclass(frozen=True)
class Settings:
    webhook: WebhookSettings
    queue: QueueSettings
    storage: StorageSettings
    square: SquareSettings
    dataverse: DataverseSettings
    sync: SyncSettings
    sales: SalesSettings
    two_way: TwoWaySettings = TwoWaySettings()
    bulk: BulkSettings = BulkSettings()


def _webhook(r: _Reader) -> WebhookSettings:
    return WebhookSettings(
        signature_key=r.required("SQUARE_WEBHOOK_SIGNATURE_KEY", "the subscription's signature key"),
        notification_url=r.url("SQUARE_WEBHOOK_URL"),
        max_body_bytes=r.number("WEBHOOK_MAX_BODY_BYTES", 1_048_576, int, 1024, 1_048_576),
    )


def _queue(r: _Reader) -> QueueSettings:
    backend = cast(QueueBackend, r.choice("QUEUE_BACKEND", ("servicebus", "storagequeue"), "servicebus"))
    connection = namespace = ""
    if backend == "servicebus":  # the storage-queue backend never reads (or checks) the Service Bus settings
        connection = r.raw("SERVICEBUS_CONNECTION") or ""
        namespace = r.raw("SERVICEBUS_CONNECTION__fullyQualifiedNamespace") or ""
        if not (connection or namespace):
            r.problems.append("SERVICEBUS_CONNECTION: missing (or set SERVICEBUS_CONNECTION__fullyQualifiedNamespace)")
    return QueueSettings(
        backend=backend,
        events_queue=r.optional("SQUARE_EVENTS_QUEUE", BINDING_DEFAULTS["SQUARE_EVENTS_QUEUE"]),
        servicebus_connection=connection,
        servicebus_namespace=namespace,
        servicebus_client_id=r.optional("SERVICEBUS_CONNECTION__clientId", ""),
        servicebus_max_message_bytes=r.number("SERVICEBUS_MAX_MESSAGE_BYTES", 262_144, int, 65_536, 104_857_600),
        max_delivery_attempts=r.number("MAX_DELIVERY_ATTEMPTS", 8, int, 1, 100),
        crm_events_queue=r.optional("CRM_EVENTS_QUEUE", BINDING_DEFAULTS["CRM_EVENTS_QUEUE"]),
        retry_base_seconds=r.number("RETRY_BASE_SECONDS", 5.0, float, 0, 3600),
        retry_max_seconds=r.number("RETRY_MAX_SECONDS", 900.0, float, 0, 86400),
        held_redelivery_seconds=r.number("HELD_REDELIVERY_SECONDS", 30.0, float, 1, 3600),
    )


def _storage(r: _Reader) -> StorageSettings:
    connection = r.raw("AzureWebJobsStorage") or ""
    account = r.raw("AzureWebJobsStorage__accountName") or ""
    tables = r.raw("AzureWebJobsStorage__tableServiceUri") or ""
    queues = r.raw("AzureWebJobsStorage__queueServiceUri") or ""
    blobs = r.raw("AzureWebJobsStorage__blobServiceUri") or ""
    if not connection and not account and not tables:
        r.problems.append("AzureWebJobsStorage: missing (or set AzureWebJobsStorage__accountName)")
    return StorageSettings(
        connection_string=connection,
        account_name=account,
        table_endpoint=tables or (f"https://{account}.table.core.windows.net" if account else ""),
        queue_endpoint=queues or (f"https://{account}.queue.core.windows.net" if account else ""),
        blob_endpoint=blobs or (f"https://{account}.blob.core.windows.net" if account else ""),
        client_id=r.optional("AzureWebJobsStorage__clientId", ""),
        table_prefix=r.optional("TILLBRIDGE_TABLE_PREFIX", "tillbridge"),
    )


def _square(r: _Reader) -> SquareSettings:
    return SquareSettings(
        base_url=r.url("SQUARE_BASE_URL", required=False, default="https://connect.squareup.com"),
        access_token=r.required("SQUARE_ACCESS_TOKEN"),
        api_version=r.optional("SQUARE_VERSION", "2025-08-20"),
        timeout_seconds=r.number("SQUARE_TIMEOUT_SECONDS", 20.0, float, 1, 120),
    )


# What each DATAVERSE_AUTH mode reads: a setting is required (and its Key Vault reference checked) only
# in the mode that uses it, so a reference to a secret that a deployment never created is never read.
AUTH_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # mode → (required, optional)
    "managed_identity": ((), ("DATAVERSE_CLIENT_ID",)),  # a client id selects a user-assigned identity
    "client_secret": (("DATAVERSE_TENANT_ID", "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET"), ()),
    "static_token": (("DATAVERSE_TOKEN",), ()),
}


def _dataverse(r: _Reader) -> DataverseSettings:
    auth = cast(DataverseAuth, r.choice("DATAVERSE_AUTH", ("managed_identity", "client_secret", "static_token")))
    required, optional = AUTH_SETTINGS[auth]
    values = {name: r.required(name, f"needed when DATAVERSE_AUTH={auth}") for name in required}
    values.update({name: r.raw(name) or "" for name in optional})
    return DataverseSettings(
        url=r.url("DATAVERSE_URL").rstrip("/"),
        auth=auth,
        static_token=values.get("DATAVERSE_TOKEN", ""),
        tenant_id=values.get("DATAVERSE_TENANT_ID", ""),
        client_id=values.get("DATAVERSE_CLIENT_ID", ""),
        client_secret=values.get("DATAVERSE_CLIENT_SECRET", ""),
        api_version=r.optional("DATAVERSE_API_VERSION", "v9.2"),
        max_concurrency=r.number("DATAVERSE_MAX_CONCURRENCY", 16, int, 1, 52),
        timeout_seconds=r.number("DATAVERSE_TIMEOUT_SECONDS", 30.0, float, 1, 230),
        max_inline_wait_seconds=r.number("DATAVERSE_MAX_INLINE_WAIT_SECONDS", 20.0, float, 0, 120),
        max_instances=r.number("DATAVERSE_MAX_INSTANCES", 1, int, 1, 1000),
        requests_per_window=r.number("DATAVERSE_REQUESTS_PER_WINDOW", 6000, int, 1, 1_000_000),
        execution_seconds_per_window=r.number("DATAVERSE_EXECUTION_SECONDS_PER_WINDOW", 1200.0, float, 1, 1_000_000),
    )


def _check_users(r: _Reader, settings: DataverseSettings) -> None:
    """Several application users: as many secrets as client ids, in the same order."""
    if settings.auth == "client_secret":
        ids = [p for p in settings.client_id.split(",") if p.strip()]
        secrets = [p for p in settings.client_secret.split(",") if p.strip()]
        if len(ids) != len(secrets):
            r.problems.append(
                f"DATAVERSE_CLIENT_SECRET: {len(secrets)} secret(s) for {len(ids)} client id(s) in DATAVERSE_CLIENT_ID"
            )


def _bulk(r: _Reader) -> BulkSettings:
    return BulkSettings(
        backfill_chunk=r.number("BACKFILL_CHUNK_SIZE", 2000, int, 1, 100_000),
        request_size=r.number("BULK_REQUEST_SIZE", 200, int, 1, 1000),
        worker_batch_threshold=r.number("WORKER_BATCH_THRESHOLD", 4, int, 1, 1000),
    )


def _sync(r: _Reader) -> SyncSettings:
    prefix = r.optional("DATAVERSE_PUBLISHER_PREFIX", "tb")
    if not prefix.isalnum() or not prefix.islower():
        r.problems.append("DATAVERSE_PUBLISHER_PREFIX: must be lower-case letters and digits")
    region = r.optional("DEFAULT_PHONE_REGION", "US")
    if len(region) != 2 or not region.isalpha():
        r.problems.append("DEFAULT_PHONE_REGION: must be a two-letter ISO country code")
    return SyncSettings(
        prefix=prefix,
        default_phone_region=region.upper(),
        reconcile_lag_seconds=r.number("RECONCILE_LAG_SECONDS", 300.0, float, 0, 86400),
        reconcile_first_lookback_hours=r.number("RECONCILE_FIRST_LOOKBACK_HOURS", 24.0, float, 0, 24 * 365),
        reconcile_sweep_batch=r.number("RECONCILE_SWEEP_BATCH", 1000, int, 0, 100_000),
        trace_retention_days=r.number("TRACE_RETENTION_DAYS", 14.0, float, 0.01, 365),
        trace_snapshots=r.choice("TRACE_SNAPSHOTS", ("all", "failures"), "all"),
    )


@dataclass(frozen=True)
class IngressSettings:
    """What the webhook needs: it must keep accepting events while the CRM side is misconfigured."""

    webhook: WebhookSettings
    queue: QueueSettings
    storage: StorageSettings | None


def _ingress(r: _Reader) -> IngressSettings:
    queue = _queue(r)
    return IngressSettings(
        webhook=_webhook(r),
        queue=queue,
        storage=_storage(r) if queue.backend == "storagequeue" else None,
    )


def _sales(r: _Reader) -> SalesSettings:
    owners, problems = load_location_owners(r.raw("LOCATION_OWNERS") or "", r.raw("LOCATION_OWNERS_FILE") or "")
    r.problems.extend(problems)
    threshold = r.raw("REFUND_CASE_THRESHOLD")
    value: float | None = None
    if threshold is not None:
        value = r.number("REFUND_CASE_THRESHOLD", 0.0, float, 0, 1e12)
    return SalesSettings(
        guest_checkout=r.choice("GUEST_CHECKOUT", ("match_or_create", "match", "ignore"), "match_or_create"),
        location_owners=owners,
        refund_case_threshold=value,
    )


def _two_way(r: _Reader) -> TwoWaySettings:
    return TwoWaySettings(
        conflicts=r.choice("CRM_CONFLICTS", ("latest", "review"), "latest"),
        crm_deletes=r.choice("CRM_DELETES", ("ignore", "delete"), "ignore"),
        create_in_square=r.choice("CRM_CREATE_IN_SQUARE", ("false", "true"), "false") == "true",
        catch_up_lag_seconds=r.number("CRM_CHANGES_LAG_SECONDS", 300.0, float, 0, 86400),
        page_size=r.number("CRM_CHANGES_PAGE_SIZE", 5000, int, 1, 5000),
    )


def _all(r: _Reader) -> Settings:
    dataverse = _dataverse(r)
    _check_users(r, dataverse)
    return Settings(
        webhook=_webhook(r),
        queue=_queue(r),
        storage=_storage(r),
        square=_square(r),
        dataverse=dataverse,
        sync=_sync(r),
        sales=_sales(r),
        two_way=_two_way(r),
        bulk=_bulk(r),
    )


def _load(env: Mapping[str, str], build: Callable[[_Reader], T]) -> T:
    reader = _Reader(env)
    built = build(reader)
    if reader.problems:
        raise ConfigurationError(reader.problems)
    return built


def load_ingress_settings(env: Mapping[str, str]) -> IngressSettings:
    """Settings for the webhook alone, or one ConfigurationError listing every bad one."""
    return _load(env, _ingress)


def load_dataverse_settings(env: Mapping[str, str]) -> tuple[DataverseSettings, SyncSettings]:
    """What the schema and access commands need."""
    return _load(env, lambda r: (_dataverse(r), _sync(r)))


def load_square_settings(env: Mapping[str, str]) -> SquareSettings:
    return _load(env, _square)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Every setting, or one ConfigurationError listing every bad one."""
    return _load(env, _all)


def read_local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a Core Tools style local.settings.json (missing file → empty)."""
    if not path.exists():
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    values = document.get("Values", {})
    return {str(k): str(v) for k, v in values.items()}


def merged_environment(local_values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables override local.settings.json, as with Core Tools."""
    merged = dict(local_values)
    merged.update(environ)
    return merged
