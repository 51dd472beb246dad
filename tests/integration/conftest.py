from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import Stack, StackOptions
from tests.stackkit import StackKit

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WEST_TEAM = "33333333-3333-3333-3333-333333333333"
MAPPED_STORE, UNMAPPED_STORE, TOKYO_STORE = "STOREWEST0001", "STOREEAST0002", "STORETOKYO003"
OWNERS = (
    '{"default_owner": "systemusers/00000000-0000-0000-0000-0000000000a1", '
    f'"locations": {{"{MAPPED_STORE}": {{"owner": "teams/{WEST_TEAM}", "business_unit": "West", "territory": "Bay Area"}}, '
    f'"{TOKYO_STORE}": {{"owner": "teams/{WEST_TEAM}", "territory": "Kanto"}}}}}}'
)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    options = StackOptions(
        log_dir=ARTIFACTS / "stack-logs" / "integration",
        extra_env={"LOCATION_OWNERS": OWNERS, "REFUND_CASE_THRESHOLD": "10"},
    )
    with Stack(options) as running:
        with running.client("dataverse") as dataverse:
            dataverse.post("/_control/tables/teams", json=[{"teamid": WEST_TEAM, "name": "West"}]).raise_for_status()
        yield running


@pytest.fixture
def kit(stack: Stack) -> Iterator[StackKit]:
    helper = StackKit(stack)
    helper.delivery(paused=False, duplicate_rate=0.0, reorder_window=1, delay_ms_max=0, concurrency=8)
    yield helper
    helper.reset_dataverse_faults()
    helper.delivery(paused=False, duplicate_rate=0.0, reorder_window=1, delay_ms_max=0)
    helper.close()
