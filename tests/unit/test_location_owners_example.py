"""The example store → owner map the docs point to (config/location-owners.json) exists and loads."""

from __future__ import annotations

from shared.config.location_owners import load_location_owners


def test_the_documented_example_file_loads_without_problems() -> None:
    owners, problems = load_location_owners("", "config/location-owners.json")  # the path docs/deploy.md gives
    assert problems == []
    assert owners.default_owner == "/teams(00000000-0000-0000-0000-000000000001)"
    west, mapped = owners.for_location("L1A2B3C4D5E6F")
    assert mapped and west.business_unit == "West" and west.territory == "Bay Area"
    assert west.owner == "/systemusers(00000000-0000-0000-0000-000000000002)"
