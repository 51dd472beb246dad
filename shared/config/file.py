"""The configuration file (YAML, `TILLBRIDGE_CONFIG`, default config/tillbridge.yaml): field mappings,
flows on/off, location → owner, follow-up rules and segments — loaded and validated as a whole.

Public API (kept small and stable): `load_config(path, prefix=...) -> TillbridgeConfig`, raising one
`ConfigFileError` that lists every problem (file, line, path inside the file, what is wrong, what is
allowed); `config_path(env)`; `default_config(prefix)`. A mapping kind the file leaves out keeps the
shipped default (the repo's file), so a short file changes only what it names.
"""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from shared.config.columns import APP_ROOT, SCHEMA_FILE, ColumnCatalog, load_catalog
from shared.config.followup import Rule, Segment, parse_rules, parse_segments
from shared.config.location_owners import LocationAssignment, LocationOwners, owner_bind
from shared.config.mappings import Mapping, column_name, parse_mappings
from shared.config.two_way import owner_problems
from shared.config.yaml_source import ConfigProblem, Problems, expect_mapping, parse_yaml, type_name
from shared.core.errors import ConfigurationError
from shared.pipeline.registry import FLOWS

DEFAULT_FILE = APP_ROOT / "config" / "tillbridge.yaml"
VERSIONS = (1,)
EXTRA_FLOWS = ("rules", "segments")  # flows that are not Square kinds (follow-up rules, the segment timer)
TOP_LEVEL = ("version", "flows", "mappings", "locations", "rules", "segments")


class ConfigFileError(ConfigurationError):
    """The configuration file is invalid; `problems` holds every problem found, each with its place."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.config_problems = tuple(problems)
        super().__init__([str(p) for p in problems])
        listing = "\n".join(f"  - {p}" for p in problems)
        self.args = (f"{len(problems)} problem(s) in the configuration file {file}:\n{listing}",)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class TillbridgeConfig:
    """The validated file. `mappings["contact"].fields[i].owner` is each contact field's owner."""

    source: str  # the file it came from
    version: int
    flows: dict[str, bool]
    mappings: dict[str, Mapping]
    locations: LocationOwners = field(default_factory=LocationOwners)
    rules: tuple[Rule, ...] = ()
    segments: tuple[Segment, ...] = ()

    def flow_enabled(self, flow: str) -> bool:
        return self.flows.get(flow, True)

    def mapping(self, kind: str) -> Mapping:
        return self.mappings[kind]

    @property
    def contact_mapping(self) -> Mapping:
        return self.mappings["contact"]


def all_flows() -> tuple[str, ...]:
    return (*FLOWS, *EXTRA_FLOWS)


def _version(value: Any, problems: Problems) -> int:
    if value not in VERSIONS or isinstance(value, bool):
        problems.add(("version",), f"{value!r} is not a configuration version", ", ".join(map(str, VERSIONS)))
        return VERSIONS[-1]
    return int(value)


def _flows(value: Any, problems: Problems) -> dict[str, bool]:
    names = all_flows()
    flows = dict.fromkeys(names, True)
    if value is None:
        return flows
    found = expect_mapping(value, ("flows",), problems, names)
    for name, enabled in (found or {}).items():
        if not isinstance(enabled, bool):
            problems.add(("flows", name), f"must be true or false, found {type_name(enabled)}", "true, false")
        elif name in flows:
            flows[name] = enabled
    return flows


def _owner(value: Any, path: tuple[str, ...], problems: Problems) -> str | None:
    if value is None:
        return None
    bind = owner_bind(str(value))
    if bind is None:
        problems.add(path, f"{value!r} is not an owner", "systemusers/<guid> or teams/<guid>")
    return bind


def _locations(value: Any, problems: Problems) -> LocationOwners:
    if value is None:
        return LocationOwners()
    found = expect_mapping(value, ("locations",), problems, ("default_owner", "stores"))
    if found is None:
        return LocationOwners()
    default = _owner(found.get("default_owner"), ("locations", "default_owner"), problems)
    stores: dict[str, LocationAssignment] = {}
    raw_stores = found.get("stores") or {}
    if not isinstance(raw_stores, dict):
        problems.add(("locations", "stores"), "must be a mapping keyed by Square location id")
        raw_stores = {}
    for location_id, entry in raw_stores.items():
        path = ("locations", "stores", str(location_id))
        spec = expect_mapping(entry, path, problems, ("owner", "business_unit", "territory"))
        if spec is None:
            continue
        for text_key in ("business_unit", "territory"):
            if spec.get(text_key) is not None and not isinstance(spec[text_key], str):
                problems.add((*path, text_key), f"must be a text, found {type_name(spec[text_key])}")
        stores[str(location_id)] = LocationAssignment(
            _owner(spec.get("owner"), (*path, "owner"), problems), spec.get("business_unit"), spec.get("territory")
        )
    return LocationOwners(default, stores)


def parse_config(
    text: str, *, file: str, prefix: str, catalog: ColumnCatalog, defaults: TillbridgeConfig | None
) -> TillbridgeConfig:
    """The config in `text`, or ConfigFileError listing every problem."""
    problems = Problems(file)
    document = parse_yaml(text, problems)
    if document is None and not problems.found:
        problems.add((), "the file is empty", "a mapping with at least `version: 1`")
    top = expect_mapping(document, (), problems, TOP_LEVEL, required=("version",)) if document is not None else None
    top = top or {}
    version = _version(top.get("version"), problems) if "version" in top else VERSIONS[-1]
    mappings = dict(defaults.mappings) if defaults else {}
    if top.get("mappings") is not None:
        mappings.update(parse_mappings(top["mappings"], ("mappings",), problems, catalog, prefix))
        _check_owners(mappings.get("contact"), top["mappings"], problems, prefix)
    config = TillbridgeConfig(
        source=file,
        version=version,
        flows=_flows(top.get("flows"), problems),
        mappings=mappings,
        locations=_locations(top.get("locations"), problems),
    )
    config = _followup(config, top, problems, catalog, prefix)
    if problems.found:
        raise ConfigFileError(file, problems.found)
    return config


def _check_owners(contact: Mapping | None, raw: Any, problems: Problems, prefix: str) -> None:
    """Contact owners that two-way sync could not honour (shared/config/two_way.py)."""
    if contact is None or not isinstance(raw, dict) or not isinstance(raw.get("contact"), dict):
        return
    raw_names = {column_name(str(name), prefix): str(name) for name in raw["contact"]}
    for column, message in owner_problems(contact):
        problems.add(("mappings", "contact", raw_names.get(column, column), "owner"), message, "square, crm_if_empty")


def _followup(
    config: TillbridgeConfig, top: dict[str, Any], problems: Problems, catalog: ColumnCatalog, prefix: str
) -> TillbridgeConfig:
    """Rules and segments (validated by shared/config/followup.py)."""
    segments = parse_segments(top.get("segments"), problems)
    rules = parse_rules(top.get("rules"), problems)
    return TillbridgeConfig(
        config.source, config.version, config.flows, config.mappings, config.locations, rules, segments
    )


def display_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(APP_ROOT))
    except ValueError:
        return str(path)


def load_config(
    path: Path | str | None = None, *, prefix: str = "tb", schema_file: Path = SCHEMA_FILE
) -> TillbridgeConfig:
    """Read and validate a configuration file (default: the shipped one)."""
    file = resolve_path(str(path)) if path else DEFAULT_FILE
    name = display_name(file)
    if not file.exists():
        raise ConfigFileError(name, [ConfigProblem(name, "(file)", "does not exist", "a readable YAML file")])
    catalog = load_catalog(prefix, schema_file)
    defaults = None if file.resolve() == DEFAULT_FILE.resolve() else default_config(prefix)
    return parse_config(file.read_text(encoding="utf-8"), file=name, prefix=prefix, catalog=catalog, defaults=defaults)


def resolve_path(text: str) -> Path:
    """A relative path is taken from the app's root (the file deploys with the app)."""
    path = Path(text)
    return path if path.is_absolute() else APP_ROOT / path


def config_path(env: AnyMapping[str, str]) -> Path:
    value = (env.get("TILLBRIDGE_CONFIG") or "").strip()
    return resolve_path(value) if value else DEFAULT_FILE


@cache
def default_config(prefix: str = "tb") -> TillbridgeConfig:
    """The shipped file (today's behaviour), for code and tests that are given no other."""
    return load_config(DEFAULT_FILE, prefix=prefix)


def _is_empty(owners: LocationOwners) -> bool:
    return owners.default_owner is None and not owners.locations


def with_legacy_owners(config: TillbridgeConfig, legacy: LocationOwners) -> TillbridgeConfig:
    """The older settings LOCATION_OWNERS / LOCATION_OWNERS_FILE still work: they apply when the file's
    `locations` section is empty; setting both is an error (which one wins would be a guess)."""
    if _is_empty(legacy):
        return config
    if not _is_empty(config.locations):
        problem = ConfigProblem(
            config.source,
            "locations",
            "store owners are set both here and in LOCATION_OWNERS / LOCATION_OWNERS_FILE",
            "one of them: move the setting's stores into this section and remove the setting",
        )
        raise ConfigFileError(config.source, [problem])
    return replace(config, locations=legacy)


@dataclass(frozen=True)
class ConfigStatus:
    """What health, the console and the CLI show about the configuration file."""

    file: str
    valid: bool
    problems: tuple[str, ...] = ()
    rules: int = 0
    segments: int = 0

    def to_document(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "valid": self.valid,
            "problems": list(self.problems),
            "rules": self.rules,
            "segments": self.segments,
        }


def load_for_app(
    env: AnyMapping[str, str], *, prefix: str, legacy_owners: LocationOwners
) -> tuple[TillbridgeConfig | None, ConfigStatus]:
    """The app's configuration at start-up: the file, validated, with the older owner settings folded in;
    (None, status with every problem) when it is invalid — the caller then processes nothing."""
    path = config_path(env)
    try:
        config = with_legacy_owners(load_config(path, prefix=prefix), legacy_owners)
    except ConfigFileError as error:
        return None, ConfigStatus(error.file, False, tuple(str(p) for p in error.config_problems))
    return config, ConfigStatus(config.source, True, (), len(config.rules), len(config.segments))
