from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import Stack, StackOptions
from tests.stackkit import StackKit

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with Stack(StackOptions(log_dir=ARTIFACTS / "stack-logs" / "integration")) as running:
        yield running


@pytest.fixture
def kit(stack: Stack) -> Iterator[StackKit]:
    helper = StackKit(stack)
    helper.delivery(paused=False, duplicate_rate=0.0, reorder_window=1, delay_ms_max=0, concurrency=8)
    yield helper
    helper.reset_dataverse_faults()
    helper.delivery(paused=False, duplicate_rate=0.0, reorder_window=1, delay_ms_max=0)
    helper.close()
