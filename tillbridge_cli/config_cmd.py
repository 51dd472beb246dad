"""`tillbridge config check | preview` and `tillbridge segments`: the configuration file for integration
engineers — check it (every problem at once), and see what it would do with one Square object."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from tillbridge_cli.ops import client, console, print_json, print_rows


def _environment(args: argparse.Namespace) -> dict[str, str]:
    from tillbridge_cli.main import environment

    env = environment()
    if args.config:
        env["TILLBRIDGE_CONFIG"] = str(Path(args.config).resolve())
    return env


def check(args: argparse.Namespace) -> int:
    from shared.config.file import load_for_app
    from shared.config.location_owners import load_location_owners

    env = _environment(args)
    owners, owner_problems = load_location_owners(env.get("LOCATION_OWNERS", ""), env.get("LOCATION_OWNERS_FILE", ""))
    prefix = env.get("DATAVERSE_PUBLISHER_PREFIX") or "tb"
    config, status = load_for_app(env, prefix=prefix, legacy_owners=owners)
    problems = [*status.problems, *owner_problems]
    if problems:
        lines = [f"{status.file}: {len(problems)} problem(s)", *(f"  {p}" for p in problems)]
        console().print("\n".join(lines), soft_wrap=True, markup=False)
        return 1
    assert config is not None
    columns = sum(len(m.fields) for m in config.mappings.values())
    off = [name for name, enabled in config.flows.items() if not enabled]
    console().print(
        f"{status.file} is valid: {columns} mapped columns, {len(config.rules)} rule(s), "
        f"{len(config.segments)} segment(s); flows off: {', '.join(off) or 'none'}",
        soft_wrap=True,
        markup=False,
    )
    return 0


def _print_preview(result: dict[str, Any]) -> None:
    console().print(
        f"{result['kind']} {result['square_id']} with {result['configuration']}: "
        f"{result['outcome'] or result['error']}  (nothing was written)\n"
        f"matched contact: {result['matched_contact'] or 'none'}",
        soft_wrap=True,
        markup=False,
    )
    writes = [[w["method"], w["path"], json.dumps(w["body"], default=str)] for w in result["writes"]]
    print_rows(("method", "path", "body"), writes, title="Dataverse writes it would send")
    rules = [[r["rule"], "yes" if r["matched"] else "no", r["status"], r["why"]] for r in result["rules"]]
    print_rows(("rule", "matched", "outcome", "why"), rules, title="Rules")
    segments = [[s["segment"], "yes" if s["member"] else "no", s["move"], s["why"]] for s in result["segments"]]
    print_rows(("segment", "member", "move", "why"), segments, title="Segments")


def preview(args: argparse.Namespace) -> int:
    """Locally (this file, the environment's Square/Dataverse/Storage settings), or with --api the deployed
    app's file through the admin API."""
    if args.api:
        result = client().call("GET", f"preview/{args.kind}/{args.square_id}")
    else:
        from shared.composition import Backend
        from shared.core.errors import ConfigurationError
        from shared.flows.preview import preview as run_preview

        backend = Backend(_environment(args), None)
        if backend.config is None:
            raise ConfigurationError(list(backend.config_status.problems))
        result = asyncio.run(run_preview(backend.flow_context, args.kind, args.square_id))
    if args.json:
        print_json(json.loads(json.dumps(result, default=str)))
    else:
        _print_preview(result)
    return 0 if not result.get("error") else 1


def segments(args: argparse.Namespace) -> int:
    summary = client().call("GET", "segments")
    rows = [
        [name, str(size), str(summary.get("entered", {}).get(name, 0)), str(summary.get("left", {}).get(name, 0))]
        for name, size in summary.get("sizes", {}).items()
    ]
    print_rows(
        ("segment", "members", "entered", "left"), rows, title=f"Segments (last run {summary.get('run_at') or 'never'})"
    )
    return 0


def add_commands(groups: Any) -> None:
    config = groups.add_parser("config", help="the configuration file").add_subparsers(dest="command", required=True)
    checking = config.add_parser("check", help="validate the file (TILLBRIDGE_CONFIG or --config); exit 1 if not")
    checking.add_argument("--config", default=os.environ.get("TILLBRIDGE_CONFIG", ""))
    checking.set_defaults(run=check)
    previewing = config.add_parser("preview", help="what the file would do with one Square object (writes nothing)")
    previewing.add_argument("kind", choices=("customer", "payment", "order", "refund", "location"))
    previewing.add_argument("square_id")
    previewing.add_argument("--config", default=os.environ.get("TILLBRIDGE_CONFIG", ""))
    previewing.add_argument("--api", action="store_true", help="ask the deployed app (TILLBRIDGE_URL) instead")
    previewing.add_argument("--json", action="store_true")
    previewing.set_defaults(run=preview)
    groups.add_parser("segments", help="each segment's size and the last run").set_defaults(run=segments)
