from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.settings import load_ingress_settings, load_settings, merged_environment, read_local_settings
from shared.core.errors import ConfigurationError

GOOD = {
    "SQUARE_WEBHOOK_SIGNATURE_KEY": "sig-secret-value",
    "SQUARE_WEBHOOK_URL": "https://example.org/api/square/webhooks",
    "SQUARE_ACCESS_TOKEN": "square-secret-value",
    "DATAVERSE_URL": "https://org.crm.dynamics.com",
    "DATAVERSE_AUTH": "static_token",
    "DATAVERSE_TOKEN": "dv-secret-value",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "QUEUE_BACKEND": "storagequeue",
}


def test_good_settings_load() -> None:
    settings = load_settings(GOOD)
    assert settings.queue.backend == "storagequeue"
    assert settings.dataverse.url == "https://org.crm.dynamics.com"
    assert settings.sync.prefix == "tb"


def test_every_problem_is_listed_at_once_by_name() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"DATAVERSE_AUTH": "password", "SQUARE_WEBHOOK_URL": "not a url"})
    message = str(caught.value)
    for name in (
        "SQUARE_WEBHOOK_SIGNATURE_KEY",
        "SQUARE_WEBHOOK_URL",
        "SQUARE_ACCESS_TOKEN",
        "DATAVERSE_URL",
        "DATAVERSE_AUTH",
        "SERVICEBUS_CONNECTION",
        "AzureWebJobsStorage",
    ):
        assert name in message
    assert len(caught.value.problems) >= 7


def test_unresolved_key_vault_reference_is_named_and_value_not_echoed() -> None:
    env = {**GOOD, "SQUARE_ACCESS_TOKEN": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/sq/)"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert "SQUARE_ACCESS_TOKEN: Key Vault reference was not resolved" in str(caught.value)
    assert "kv.vault.azure.net" not in str(caught.value)


def test_secret_values_never_appear_in_errors() -> None:
    env = {**GOOD, "DATAVERSE_AUTH": "client_secret", "DATAVERSE_MAX_CONCURRENCY": "999"}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    text = str(caught.value)
    assert "DATAVERSE_TENANT_ID" in text and "DATAVERSE_MAX_CONCURRENCY: must be between" in text
    for secret in ("sig-secret-value", "square-secret-value", "dv-secret-value"):
        assert secret not in text


def test_ingress_needs_only_webhook_and_queue_settings() -> None:
    env = {k: v for k, v in GOOD.items() if not k.startswith(("DATAVERSE", "SQUARE_ACCESS"))}
    ingress = load_ingress_settings(env)
    assert ingress.storage is not None and ingress.webhook.max_body_bytes == 1_048_576


def test_identity_based_service_bus_and_storage() -> None:
    env = {
        **GOOD,
        "QUEUE_BACKEND": "servicebus",
        "SERVICEBUS_CONNECTION__fullyQualifiedNamespace": "ns.servicebus.windows.net",
    }
    del env["AzureWebJobsStorage"]
    env["AzureWebJobsStorage__accountName"] = "tbstore"
    settings = load_settings(env)
    assert settings.queue.servicebus_namespace == "ns.servicebus.windows.net"
    assert settings.storage.table_endpoint == "https://tbstore.table.core.windows.net"


def test_environment_overrides_local_settings(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "local.settings.json"
    path.write_text('{"IsEncrypted": false, "Values": {"A": "file", "B": "file"}}', encoding="utf-8")
    merged = merged_environment(read_local_settings(path), {"B": "env"})
    assert merged == {"A": "file", "B": "env"}
    assert read_local_settings(path.parent / "missing.json") == {}


def test_location_owners_are_validated_with_their_path() -> None:
    owners = '{"default_owner": "teams/11111111-2222-3333-4444-555555555555", "locations": {"L1": {"owner": "users/x"}, "L2": 5}}'
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**GOOD, "LOCATION_OWNERS": owners})
    text = str(caught.value)
    assert "LOCATION_OWNERS: locations.L1.owner: must be systemusers/<guid> or teams/<guid>" in text
    assert "LOCATION_OWNERS: locations.L2: must be an object" in text
    good = '{"default_owner": "teams/11111111-2222-3333-4444-555555555555", "locations": {"L1": {"owner": "systemusers/AAAAAAAA-2222-3333-4444-555555555555", "territory": "West"}}}'
    sales = load_settings({**GOOD, "LOCATION_OWNERS": good}).sales
    assert sales.location_owners.for_location("L1")[0].owner == "/systemusers(aaaaaaaa-2222-3333-4444-555555555555)"
    assert sales.location_owners.for_location("L9") == (
        type(sales.location_owners.for_location("L1")[0])("/teams(11111111-2222-3333-4444-555555555555)"),
        False,
    )
    with pytest.raises(ConfigurationError, match="LOCATION_OWNERS: not JSON"):
        load_settings({**GOOD, "LOCATION_OWNERS": "{"})


def test_location_owners_file_relative_to_the_app_root_or_absolute(tmp_path: Path) -> None:
    relative = load_settings({**GOOD, "LOCATION_OWNERS_FILE": "tests/fixtures/location_owners.json"}).sales
    assert relative.location_owners.for_location("L1")[0].territory == "West"
    absolute = tmp_path / "owners.json"
    absolute.write_text('{"locations": {"L7": {"owner": "teams/11111111-2222-3333-4444-555555555555"}}}')
    assert load_settings({**GOOD, "LOCATION_OWNERS_FILE": str(absolute)}).sales.location_owners.for_location("L7")[1]
    with pytest.raises(ConfigurationError, match=r"LOCATION_OWNERS_FILE: nowhere\.json does not exist"):
        load_settings({**GOOD, "LOCATION_OWNERS_FILE": "nowhere.json"})
