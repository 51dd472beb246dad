"""The Azure templates, checked offline: they parse, they pass the policy linter (each skip justified in
infra/.checkov.yaml), they provide every setting the app reads, and no secret is a plain app setting."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lark.exceptions import LarkError
from pycep import BicepParser

from shared.config.settings import BINDING_DEFAULTS, load_settings
from shared.core.errors import ConfigurationError
from tests.conftest import app_functions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
SECRET_SETTINGS = {"SQUARE_ACCESS_TOKEN", "SQUARE_WEBHOOK_SIGNATURE_KEY", "DATAVERSE_CLIENT_SECRET", "DATAVERSE_TOKEN"}
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{secretUri\}/[a-z0-9-]+/\)$")
EXPECTED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner (host storage, deployment package)
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor (ledger, failures)
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor (host)
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",  # Service Bus Data Sender (webhook, retry copies)
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",  # Service Bus Data Receiver (worker trigger)
    "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User (Key Vault references)
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",  # Key Vault Secrets Officer (the deploying user only)
    "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher (AAD telemetry ingestion)
}


def parse(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = BicepParser().parse(text=path.read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return parse(INFRA / "app" / "resources.bicep")


def _evaluate(node: Any, resources: dict[str, Any], parameters: dict[str, str]) -> Any:
    """The few Bicep expressions the settings object uses: union(), variables, `(p == 'x') ? a : b`."""
    if isinstance(node, str) and node in resources["variables"]:
        return _evaluate(resources["variables"][node]["value"], resources, parameters)
    if isinstance(node, dict) and node.get("function", {}).get("type") == "union":
        merged: dict[str, Any] = {}
        for argument in node["function"]["parameters"].values():
            merged.update(_evaluate(argument, resources, parameters))
        return merged
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "conditional":
        operands = node["operator"]["operands"]
        condition = operands["condition"]["operator"]
        assert condition["type"] == "equals"
        left, right = condition["operands"]["operand_1"], condition["operands"]["operand_2"]
        chosen = "true_value" if parameters[left] == right else "false_value"
        return _evaluate(operands[chosen], resources, parameters)
    return node


def settings_for(resources: dict[str, Any], dataverse_auth: str) -> dict[str, Any]:
    """The app settings the template writes for one deployment mode."""
    properties = resources["resources"]["appSettings"]["config"]["properties"]
    settings: dict[str, Any] = _evaluate(properties, resources, {"dataverseAuth": dataverse_auth})
    return settings


@pytest.fixture(scope="module")
def app_settings(resources: dict[str, Any]) -> dict[str, Any]:
    return settings_for(resources, "managed_identity")  # main.bicep's default


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(ROOT)) for p in BICEP_FILES])
def test_every_bicep_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed["resources"] or parsed.get("modules")


def test_the_parser_rejects_a_broken_template() -> None:
    broken = (
        (INFRA / "main.bicep")
        .read_text(encoding="utf-8")
        .replace("targetScope = 'subscription'", "targetScope = = 'subscription'")
    )
    with pytest.raises(LarkError):
        BicepParser().parse(text=broken)


# What the deployer passes for the parameters that feed typed settings (main.parameters.json)
PARAMETER_EXAMPLES = {
    "guestCheckout": "match",
    "locationOwnersFile": "tests/fixtures/location_owners.json",
    "refundCaseThreshold": "100",
    "maximumInstanceCount": "40",
}


# The Key Vault secrets each deployment mode creates (infra/scripts/postprovision.sh, docs/deploy.md):
# the Square token and webhook key always, the Dataverse client secret only in client-secret mode.
CREATED_SECRETS = {
    "managed_identity": {"square-access-token", "square-webhook-signature-key"},
    "client_secret": {"square-access-token", "square-webhook-signature-key", "dataverse-client-secret"},
}


def _as_environment(
    settings: dict[str, Any],
    variables: set[str],
    parameters: set[str],
    created_secrets: set[str] = CREATED_SECRETS["managed_identity"],
) -> dict[str, str]:
    """Template values as the running app would see them: references to secrets that exist resolved, any
    other reference left as Azure leaves it (the literal @Microsoft.KeyVault(...) text), expressions filled."""
    env: dict[str, str] = {}
    for name, value in settings.items():
        literal = isinstance(value, str) and "${" not in value and value not in variables | parameters
        if isinstance(value, str) and value in PARAMETER_EXAMPLES:
            env[name] = PARAMETER_EXAMPLES[value]
        elif isinstance(value, str) and value.startswith("@Microsoft.KeyVault("):
            secret = re.search(r"/secrets/([^/)]+)/?\)", value.replace("${secretUri}", "https://kv/secrets"))
            resolved = secret is not None and secret.group(1) in created_secrets
            env[name] = "resolved-secret" if resolved else value
        elif literal:
            env[name] = str(value)
        elif isinstance(value, dict) and value.get("function", {}).get("type") == "string":  # string(param)
            env[name] = PARAMETER_EXAMPLES[value["function"]["parameters"]["value_to_convert"]]
        elif name.endswith("_URL"):
            env[name] = "https://placeholder.example"
        elif name in ("DATAVERSE_AUTH",):
            env[name] = "managed_identity"
        else:
            env[name] = "placeholder"
    return env


def test_templates_provide_every_setting_the_app_needs(resources: dict[str, Any], app_settings: dict[str, Any]) -> None:
    env = _as_environment(app_settings, set(resources["variables"]), set(resources["parameters"]))
    settings = load_settings(env)  # raises, naming each missing or malformed setting
    assert settings.queue.backend == "servicebus" and settings.queue.servicebus_namespace
    assert settings.storage.account_name and settings.storage.client_id
    assert settings.dataverse.auth == "managed_identity"
    assert settings.dataverse.max_instances == 40  # each instance's share of the budget (decision 0012f)
    assert settings.sales.guest_checkout == "match" and settings.sales.refund_case_threshold == 100
    assert settings.sales.location_owners.locations["L1"].territory == "West"


@pytest.mark.parametrize("mode", ["managed_identity", "client_secret"])
def test_the_settings_load_in_every_auth_mode_as_the_template_writes_them(resources: dict[str, Any], mode: str) -> None:
    settings = settings_for(resources, mode)
    env = _as_environment(settings, set(resources["variables"]), set(resources["parameters"]), CREATED_SECRETS[mode])
    env["DATAVERSE_AUTH"] = mode
    loaded = load_settings(env)  # raises on a missing setting or an unresolved reference it reads
    assert loaded.dataverse.auth == mode
    assert ("DATAVERSE_CLIENT_SECRET" in settings) == (mode == "client_secret")
    if mode == "client_secret":
        assert loaded.dataverse.client_secret == "resolved-secret" and loaded.dataverse.tenant_id


def test_a_reference_a_mode_never_reads_does_not_stop_the_app(resources: dict[str, Any]) -> None:
    """Even if an old deployment left the client-secret reference behind, managed identity ignores it."""
    settings = {**settings_for(resources, "managed_identity"), "DATAVERSE_CLIENT_SECRET": "@Microsoft.KeyVault(x)"}
    env = _as_environment(settings, set(resources["variables"]), set(resources["parameters"]))
    env["DATAVERSE_AUTH"] = "managed_identity"
    assert load_settings(env).dataverse.client_secret == ""
    env["DATAVERSE_AUTH"] = "client_secret"
    with pytest.raises(ConfigurationError, match="DATAVERSE_CLIENT_SECRET: Key Vault reference was not resolved"):
        load_settings(env)


def test_trigger_setting_expressions_are_defined(app_settings: dict[str, Any]) -> None:
    expressions: set[str] = set()
    for function in app_functions():
        trigger = function.get_trigger()
        for attribute in ("queue_name", "schedule", "connection"):
            expressions.update(re.findall(r"%([^%]+)%", str(getattr(trigger, attribute, "") or "")))
        connection = getattr(trigger, "connection", None)
        if connection:
            assert f"{connection}__fullyQualifiedNamespace" in app_settings  # identity-based, no connection string
    assert expressions == set(BINDING_DEFAULTS)  # the local host's defaults cover every binding setting
    assert expressions <= set(app_settings)
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert expressions <= set(sample)  # `func start` with the sample settings resolves them too


def test_no_secret_is_a_plain_app_setting(app_settings: dict[str, Any]) -> None:
    for name in SECRET_SETTINGS & set(app_settings):
        assert isinstance(app_settings[name], str) and KEY_VAULT_REFERENCE.match(app_settings[name]), name
    for name, value in app_settings.items():
        text = json.dumps(value)
        assert not re.search(r"AccountKey=|SharedAccessKey=|sig=|password|client_secret=", text, re.IGNORECASE), name
    assert "AzureWebJobsStorage" not in app_settings and "SERVICEBUS_CONNECTION" not in app_settings


def test_queue_is_built_for_at_least_once_delivery(resources: dict[str, Any]) -> None:
    queue = resources["resources"]["eventsQueue"]["config"]["properties"]
    assert queue["requiresDuplicateDetection"] and queue["deadLetteringOnMessageExpiration"]
    assert queue["requiresSession"] is False  # order comes from the version gate; batches serialise sessions (0011f)
    assert queue["lockDuration"] in ("PT1M", "PT2M", "PT5M")  # a batch has no lock renewal
    assert queue["duplicateDetectionHistoryTimeWindow"] in ("P1D", "P2D", "P3D", "P7D")  # covers Square's 24 h retries
    assert 5 <= queue["maxDeliveryCount"] <= 20


def test_every_queue_takes_messages_without_a_session_id(resources: dict[str, Any]) -> None:
    """The sender sets no SessionId (decision 0011f); Service Bus refuses such a message on a session queue."""
    from shared.pipeline.messages import contact_command, fresh_fetch_command, outbound

    sent = [
        outbound(fresh_fetch_command("customer", "C1", "2026-12-01T00:00:00Z")),
        outbound(contact_command("contact.changed", "c1", "2026-12-01T00:00:00Z")),
    ]
    assert {message.session_id for message in sent} == {""}
    queues = [r for r in resources["resources"].values() if r["type"] == "Microsoft.ServiceBus/namespaces/queues"]
    assert len(queues) == 2
    for queue in queues:
        assert queue["config"]["properties"]["requiresSession"] is False, queue["config"]["name"]


def test_identity_gets_only_the_roles_it_needs(resources: dict[str, Any]) -> None:
    granted = set(resources["variables"]["roles"]["value"].values())
    assert granted == EXPECTED_ROLES
    assignments = [r for r in resources["resources"].values() if r["type"] == "Microsoft.Authorization/roleAssignments"]
    assert len(assignments) == 5  # storage ×3 (loop), service bus ×2 (loop), key vault user, officer, metrics
    text = json.dumps(resources)
    for broad in ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c"):  # Owner, Contributor
        assert broad not in text


def test_local_auth_and_shared_keys_are_off(resources: dict[str, Any]) -> None:
    res = resources["resources"]
    assert res["storage"]["config"]["properties"]["allowSharedKeyAccess"] is False
    assert res["serviceBus"]["config"]["properties"]["disableLocalAuth"] is True
    assert res["appInsights"]["config"]["properties"]["DisableLocalAuth"] is True
    assert res["keyVault"]["config"]["properties"]["enableRbacAuthorization"] is True


def test_parameters_file_maps_every_required_parameter() -> None:
    main = parse(INFRA / "main.bicep")
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    required = {name for name, spec in main["parameters"].items() if spec.get("default") is None}
    assert required <= set(mapped)
    assert set(mapped) <= set(main["parameters"])


def test_azd_project_deploys_this_folder_as_a_python_function() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert "host: function" in text and "language: python" in text and "project: ." in text
    assert (ROOT / "infra" / "scripts" / "postprovision.sh").exists()


def test_policy_linter_passes_with_every_skip_justified() -> None:
    checkov = ROOT / ".venv-infra" / "bin" / "checkov"
    assert checkov.exists(), "run `make setup-infra` (it creates .venv-infra with checkov; `make test` does it)"
    result = subprocess.run(
        [str(checkov), "--config-file", str(INFRA / ".checkov.yaml"), "-d", str(INFRA), "-o", "json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(ROOT)},
    )
    report = json.loads(result.stdout)
    report = report if isinstance(report, dict) else report[0]
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report.get("results", {}).get("failed_checks", [])]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0 and summary["passed"] > 0, failed
    assert result.returncode == 0
    for line in (INFRA / ".checkov.yaml").read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("- CKV_"):
            assert re.search(r"#\s*\S.{10,}", line), f"every skip carries its reason: {line}"


def test_alerts_and_workbook_watch_what_the_app_emits(resources: dict[str, Any]) -> None:
    res = resources["resources"]
    assert (
        res["deadLetterAlert"]["config"]["properties"]["criteria"]["allOf"][0]["metricName"] == "DeadletteredMessages"
    )
    failure_query = res["failureRateAlert"]["config"]["properties"]["criteria"]["allOf"][0]["query"]
    lag_query = res["lagAlert"]["config"]["properties"]["criteria"]["allOf"][0]["query"]
    workbook = json.loads((INFRA / "app" / "workbook.json").read_text(encoding="utf-8"))
    queries = " ".join(item["content"].get("query", "") for item in workbook["items"])
    emitted = {
        "tillbridge_failures",
        "tillbridge_e2e_lag_seconds",
        "tillbridge_dataverse_throttled",
        "tillbridge_events_received",
        "tillbridge_records_written",
    }
    for name in emitted:
        assert name in queries, name
    assert "tillbridge_failures" in failure_query and "tillbridge_e2e_lag_seconds" in lag_query
    source = " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "shared").rglob("*.py"))
    for name in emitted:  # each metric the dashboards read is one the code increments or records
        assert f'"{name.removeprefix("tillbridge_")}"' in source, name
