"""Reading the configuration file: YAML → plain values, with the line of every value and every problem
collected (never the first only). Duplicate keys are refused: PyYAML would silently keep the last one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]
_BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false (YAML 1.1 also reads on/off/yes/no as booleans, so a rule's
    `on: sale` key would become True)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def render_path(path: Path) -> str:
    """`("rules", 2, "when", "order_total", "gte")` → `rules[2].when.order_total.gte`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in the file: where (file, line, path inside it), what, and what is allowed."""

    file: str
    path: str
    message: str
    allowed: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        allowed = f" (allowed: {self.allowed})" if self.allowed else ""
        return f"{where}: {self.path}: {self.message}{allowed}"


@dataclass
class Problems:
    """Collects problems for one file, each placed on the line its path was read from."""

    file: str
    lines: dict[Path, int] = field(default_factory=dict)
    found: list[ConfigProblem] = field(default_factory=list)

    def add(self, path: Path, message: str, allowed: str = "") -> None:
        self.found.append(ConfigProblem(self.file, render_path(path), message, allowed, self.line_of(path)))

    def line_of(self, path: Path) -> int | None:
        for cut in range(len(path), -1, -1):  # the nearest enclosing value that has a line
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


def _walk(node: yaml.Node, path: Path, problems: Problems) -> None:
    problems.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.lines[(*path, key)] = key_node.start_mark.line + 1
                problems.add((*path, key), "appears twice", "each key once")
            seen.add(key)
            _walk(value_node, (*path, key), problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), problems)


def parse_yaml(text: str, problems: Problems) -> Any:
    """The document's value (None when it cannot be read; the reason is in `problems`)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _walk(node, (), problems)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problems.found.append(ConfigProblem(problems.file, "(file)", f"not valid YAML: {error.problem}", "", line))
        return None
    except yaml.YAMLError as error:
        problems.found.append(ConfigProblem(problems.file, "(file)", f"not valid YAML: {error}"))
        return None
    finally:
        loader.dispose()


def expect_mapping(
    value: Any, path: Path, problems: Problems, allowed: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The value as a mapping whose keys are all allowed (unknown keys are problems), or None."""
    if not isinstance(value, dict):
        problems.add(path, f"must be a mapping, found {type_name(value)}", "keys " + ", ".join(allowed))
        return None
    for key in value:
        if str(key) not in allowed:
            problems.add((*path, str(key)), "unknown key", ", ".join(allowed))
    for key in required:
        if key not in value:
            problems.add(path, f"missing the key '{key}'")
    return {str(k): v for k, v in value.items()}


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a text", bool: "true/false", int: "a number"}.get(
        type(value), type(value).__name__
    )
