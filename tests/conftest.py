"""Shared test helpers: paths to the official Square examples."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parent / "fixtures" / "square_examples"


@functools.cache
def app_functions() -> list[Any]:
    """`app.get_functions()` may be called once per app object (azure-functions raises on a second call)."""
    import function_app

    return list(function_app.app.get_functions())


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture
def square_example() -> Any:
    return example
