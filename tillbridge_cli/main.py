"""Entry point of the `tillbridge` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx

from shared.config.settings import (
    load_dataverse_settings,
    load_square_settings,
    merged_environment,
    read_local_settings,
)
from shared.core.errors import ConfigurationError
from tillbridge_cli.backfill import add_command as add_backfill_command
from tillbridge_cli.config_cmd import add_commands as add_config_commands
from tillbridge_cli.ops import add_commands as add_ops_commands
from tillbridge_cli.reconcile_report import add_command as add_reconcile_command

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "infra" / "dataverse" / "schema.json"


def environment() -> dict[str, str]:
    """local.settings.json in the current folder, overridden by the environment (like the host)."""
    return merged_environment(read_local_settings(Path.cwd() / "local.settings.json"), os.environ)


async def _dataverse_token(use_azure_cli: bool) -> tuple[str, str, str]:
    settings, sync = load_dataverse_settings(environment())
    if use_azure_cli:
        from azure.identity import AzureCliCredential

        return settings.url, AzureCliCredential().get_token(f"{settings.url}/.default").token, sync.prefix
    from shared.adapters.dataverse_auth import token_provider

    return settings.url, await token_provider(settings).token(), sync.prefix


def schema_apply(args: argparse.Namespace) -> int:
    from tillbridge_cli.schema import SchemaApplier, load_schema

    async def run() -> int:
        url, token, prefix = await _dataverse_token(args.azure_cli)
        async with httpx.AsyncClient(timeout=60) as http:
            applier = SchemaApplier(
                http, url, token, solution=args.solution, key_timeout=args.key_timeout, poll=args.poll
            )
            report = await applier.apply(load_schema(Path(args.schema)), prefix)
        print(
            f"schema applied: {len(report.created)} created, {len(report.existing)} already there, "
            f"keys active: {', '.join(report.keys_active) or 'none'}"
        )
        return 0

    return asyncio.run(run())


def register_webhook(args: argparse.Namespace) -> int:
    from tillbridge_cli.square_webhooks import KeyVaultSecrets, WebhookRegistrar

    settings = load_square_settings(environment())
    secrets = KeyVaultSecrets(args.vault) if args.vault else None
    with httpx.Client(timeout=30) as http:
        registrar = WebhookRegistrar(http, settings.base_url, settings.access_token, settings.api_version)
        result = registrar.register(args.url, secrets, name=args.name, rotate_key=args.rotate_key)
    action = "created" if result.created else "updated"
    print(f"subscription {result.subscription_id} {action} for {args.url}: {', '.join(result.event_types)}")
    if result.key_stored:
        print(f"signature key stored in Key Vault {args.vault} as square-webhook-signature-key")
    elif not result.created and not args.rotate_key:
        print("signature key unchanged (use --rotate-key to issue a new one and store it)")
    else:
        print("signature key NOT stored: pass --vault, or copy it from the Square Developer Dashboard")
    return 0


def app_user(args: argparse.Namespace) -> int:
    from azure.identity import AzureCliCredential

    from tillbridge_cli.app_user import AppUserSetup, privileges_for
    from tillbridge_cli.schema import load_schema

    settings, sync = load_dataverse_settings(environment())
    privileges = privileges_for(sync.prefix, load_schema(Path(args.schema)))
    credential = AzureCliCredential()
    dataverse_token = credential.get_token(f"{settings.url}/.default").token
    bap_token = credential.get_token("https://api.bap.microsoft.com/.default").token
    with httpx.Client(timeout=60) as http:
        AppUserSetup(http, settings.url, dataverse_token, bap_token, privileges=privileges).run(
            args.environment_id, args.client_id
        )
    return 0


def secret_set(args: argparse.Namespace) -> int:
    """Secrets come from an environment variable, never the command line (visible in process lists)."""
    from tillbridge_cli.square_webhooks import KeyVaultSecrets

    value = os.environ.get(args.from_env, "")
    if not value:
        print(f"tillbridge: {args.from_env} is empty", file=sys.stderr)
        return 2
    KeyVaultSecrets(args.vault).set_secret(args.name, value)
    print(f"stored {args.name} in Key Vault {args.vault}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tillbridge",
        description="Tillbridge operations. status, failures, replay and flows call the admin API at "
        "TILLBRIDGE_URL with the function key in TILLBRIDGE_FUNCTION_KEY (`make serve-demo` prints both for the "
        "local stack); listings take --json for scripts. See docs/operations.md.",
    )
    groups = root.add_subparsers(dest="group", required=True)
    add_ops_commands(groups)
    add_config_commands(groups)
    add_backfill_command(groups)
    add_reconcile_command(groups)

    schema = groups.add_parser("schema", help="Dataverse schema").add_subparsers(dest="command", required=True)
    apply = schema.add_parser("apply", help="create missing columns and alternate keys (idempotent)")
    apply.add_argument("--schema", default=str(SCHEMA_PATH))
    apply.add_argument("--solution", default="", help="unmanaged solution to add the customisations to")
    apply.add_argument("--key-timeout", type=float, default=600.0)
    apply.add_argument("--poll", type=float, default=5.0)
    apply.add_argument(
        "--azure-cli", action="store_true", help="use your `az login` identity instead of DATAVERSE_AUTH"
    )
    apply.set_defaults(run=schema_apply)

    square = groups.add_parser("square", help="Square").add_subparsers(dest="command", required=True)
    webhook = square.add_parser("register-webhook", help="create or update the webhook subscription")
    webhook.add_argument("--url", required=True, help="the deployed https://…/api/square/webhooks")
    webhook.add_argument("--vault", default="", help="Key Vault to store the signature key in")
    webhook.add_argument("--name", default="Tillbridge")
    webhook.add_argument(
        "--rotate-key", action="store_true", help="issue a new signature key for an existing subscription"
    )
    webhook.set_defaults(run=register_webhook)

    secret = groups.add_parser("secret", help="Key Vault secrets").add_subparsers(dest="command", required=True)
    put = secret.add_parser("set", help="store a secret read from an environment variable")
    put.add_argument("--vault", required=True)
    put.add_argument("--name", required=True)
    put.add_argument("--from-env", required=True, help="name of the environment variable holding the value")
    put.set_defaults(run=secret_set)

    dataverse = groups.add_parser("dataverse", help="Dataverse access").add_subparsers(dest="command", required=True)
    user = dataverse.add_parser("app-user", help="application user + least-privilege role for the app identity")
    user.add_argument("--environment-id", required=True, help="Power Platform environment id")
    user.add_argument("--client-id", required=True, help="managed identity or app registration client id")
    user.add_argument("--schema", default=str(SCHEMA_PATH), help="the schema whose tables the role may use")
    user.set_defaults(run=app_user)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except ConfigurationError as error:
        print(f"tillbridge: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the message of our own errors is the user's next step
        print(f"tillbridge: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
