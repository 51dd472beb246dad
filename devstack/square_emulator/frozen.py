"""Shared read-only JSON objects."""

from __future__ import annotations

from typing import Any


class Frozen(dict[str, Any]):
    """A read-only JSON object that many records share (a Money amount repeats across thousands of orders: one
    copy each keeps 100,000 customers and tens of thousands of orders within a few hundred MB)."""

    def __setitem__(self, key: str, value: Any) -> None:
        raise TypeError("a shared read-only object; assign a new one instead")

    def __delitem__(self, key: str) -> None:
        raise TypeError("a shared read-only object; assign a new one instead")

    def __deepcopy__(self, memo: dict[int, Any]) -> Frozen:
        return self
