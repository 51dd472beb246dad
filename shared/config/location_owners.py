"""Which CRM owner (a user or a team), business unit and territory each Square location maps to.

Configured as JSON (setting LOCATION_OWNERS, or a file named by LOCATION_OWNERS_FILE — a relative path
is taken from the app's root, so a file deployed with the app is found wherever the host starts):
    {"default_owner": "teams/<guid>",
     "locations": {"<square location id>":
                   {"owner": "systemusers/<guid>", "business_unit": "West", "territory": "Bay Area"}}}
Errors name the setting (or file), the path inside it and what is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parents[2]  # the app's root (function_app.py lives there)
_OWNER = re.compile(
    r"^(systemusers|teams)/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


@dataclass(frozen=True)
class LocationAssignment:
    owner: str | None  # an @odata.bind path: /systemusers(<guid>) or /teams(<guid>)
    business_unit: str | None = None
    territory: str | None = None


@dataclass(frozen=True)
class LocationOwners:
    default_owner: str | None = None
    locations: dict[str, LocationAssignment] = field(default_factory=dict)

    def for_location(self, location_id: str | None) -> tuple[LocationAssignment, bool]:
        """The assignment, and whether the location is mapped (unmapped → the default owner)."""
        found = self.locations.get(location_id or "")
        if found is not None:
            return found, True
        return LocationAssignment(self.default_owner), False


def owner_bind(value: str) -> str | None:
    """`systemusers/<guid>` or `teams/<guid>` → the @odata.bind path; None when it is neither."""
    match = _OWNER.match(value)
    return f"/{match.group(1)}({match.group(2).lower()})" if match else None


def _owner(value: object, where: str, problems: list[str]) -> str | None:
    if value in (None, ""):
        return None
    bind = owner_bind(str(value))
    if bind is None:
        problems.append(f"{where}: must be systemusers/<guid> or teams/<guid>")
    return bind


def parse_location_owners(text: str, source: str) -> tuple[LocationOwners, list[str]]:
    """The mapping, and every problem found (each naming `source` and the path)."""
    if not text.strip():
        return LocationOwners(), []
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return LocationOwners(), [f"{source}: not JSON (line {error.lineno}, column {error.colno})"]
    if not isinstance(document, dict):
        return LocationOwners(), [f"{source}: must be a JSON object"]
    problems: list[str] = []
    unknown = set(document) - {"default_owner", "locations"}
    if unknown:
        problems.append(f"{source}: unknown keys {sorted(unknown)}")
    default = _owner(document.get("default_owner"), f"{source}: default_owner", problems)
    locations: dict[str, LocationAssignment] = {}
    raw = document.get("locations", {})
    if not isinstance(raw, dict):
        problems.append(f"{source}: locations must be an object keyed by Square location id")
        raw = {}
    for location_id, entry in raw.items():
        where = f"{source}: locations.{location_id}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        locations[location_id] = LocationAssignment(
            _owner(entry.get("owner"), f"{where}.owner", problems), entry.get("business_unit"), entry.get("territory")
        )
    return LocationOwners(default, locations), problems


def load_location_owners(inline: str, file_name: str) -> tuple[LocationOwners, list[str]]:
    if file_name:
        path = Path(file_name)
        if not path.is_absolute():
            path = APP_ROOT / path
        if not path.exists():
            return LocationOwners(), [f"LOCATION_OWNERS_FILE: {file_name} does not exist"]
        return parse_location_owners(path.read_text(encoding="utf-8"), f"LOCATION_OWNERS_FILE ({file_name})")
    return parse_location_owners(inline, "LOCATION_OWNERS")
