"""End to end: the follow-up store day on a fresh stack — rules and segments from devstack/followup.yaml,
webhooks duplicated and reordered; the expected leads, opportunities, tasks and list members are written out
in devstack/followup_scenario.py from the Square data (never computed with the rule engine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.followup_scenario import STACK_ENV, drive_followup, followup_summary, wait_for_followup
from devstack.stack import Stack, StackOptions

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    options = StackOptions(
        dataverse_latency_ms=10, log_dir=ARTIFACTS / "stack-logs" / "e2e-followup", extra_env=STACK_ENV
    )
    with Stack(options) as running:
        yield running


def test_rules_and_segments_give_exactly_the_expected_follow_up(stack: Stack) -> None:
    square, dataverse = stack.client("square"), stack.client("dataverse")
    square.post("/_control/delivery", json={"duplicate_rate": 0.5, "reorder_window": 4}).raise_for_status()
    expected = drive_followup(square, dataverse)
    square.post("/_control/flush", params={"timeout": "120"}, timeout=130)
    result = wait_for_followup(dataverse, expected, timeout=120)
    report = followup_summary(result)
    assert result.differences == [], report
    assert result.found.leads == [("g1.followup@example.com", "Guest spent 18.00 USD", expected.leads[0][2])]
    assert len(result.found.tasks) == 2 and len(result.found.opportunities) == 1
