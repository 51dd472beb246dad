"""A small OData $filter parser: eq ne gt ge lt le, and/or/not, parentheses, contains/startswith/endswith.

String comparison is case-insensitive, as with Dataverse's default collation. Date-time literals are unquoted
(OData ABNF dateTimeOffsetValue, e.g. `modifiedon ge 2026-11-22T12:00:00Z`) and compare as instants.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]
Test = Callable[[Any, Any], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_][\w./@-]*))"
)
_COMPARE: dict[str, Test] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}
_FUNCTIONS: dict[str, Test] = {
    "contains": lambda a, b: a is not None and b in a,
    "startswith": lambda a, b: a is not None and a.startswith(b),
    "endswith": lambda a, b: a is not None and a.endswith(b),
}


class _Eq:
    """`column eq literal`; kept as data so a long `or` of them becomes one set look-up per column."""

    __slots__ = ("column", "value")

    def __init__(self, column: str, value: Any) -> None:
        self.column, self.value = column, value

    def __call__(self, row: dict[str, Any]) -> bool:
        return bool(_fold(row.get(self.column)) == self.value)


class _EndsWith:
    """`endswith(column,'…')`, optionally `and` more tests: indexed by suffix inside a long `or`."""

    __slots__ = ("also", "column", "suffix")

    def __init__(self, column: str, suffix: str, also: tuple[Predicate, ...] = ()) -> None:
        self.column, self.suffix, self.also = column, suffix, also

    def __call__(self, row: dict[str, Any]) -> bool:
        value = _fold(row.get(self.column))
        return isinstance(value, str) and value.endswith(self.suffix) and all(test(row) for test in self.also)


def _both(a: Predicate, b: Predicate) -> Predicate:
    if isinstance(a, _EndsWith):
        return _EndsWith(a.column, a.suffix, (*a.also, b))
    return lambda row: a(row) and b(row)


def _suffix_index(terms: list[_EndsWith]) -> Predicate:
    """Suffix look-ups per column instead of one test per term."""
    index: dict[tuple[str, str], list[_EndsWith]] = {}
    lengths: dict[str, set[int]] = {}
    for term in terms:
        index.setdefault((term.column, term.suffix), []).append(term)
        lengths.setdefault(term.column, set()).add(len(term.suffix))

    def predicate(row: dict[str, Any]) -> bool:
        for column, sizes in lengths.items():
            value = _fold(row.get(column))
            if not isinstance(value, str):
                continue
            for size in sizes:
                for term in index.get((column, value[-size:] if size else ""), ()):
                    if all(test(row) for test in term.also):
                        return True
        return False

    return predicate


def _any_of(terms: list[Predicate]) -> Predicate:
    """`a or b or …` — the same answer as evaluating each term in turn, but the `eq` terms of one column
    are a set (the bulk path's match queries `or` hundreds of them together)."""
    if len(terms) == 1:
        return terms[0]
    lookups: dict[str, set[Any]] = {}
    suffixes: list[_EndsWith] = []
    rest: list[Predicate] = []
    for term in terms:
        if isinstance(term, _Eq):
            lookups.setdefault(term.column, set()).add(term.value)
        elif isinstance(term, _EndsWith):
            suffixes.append(term)
        else:
            rest.append(term)
    if suffixes:
        rest.append(_suffix_index(suffixes))

    def predicate(row: dict[str, Any]) -> bool:
        for column, values in lookups.items():
            value = _fold(row.get(column))
            try:
                if value in values:
                    return True
            except TypeError:  # an unhashable cell: compare one by one
                if any(value == candidate for candidate in values):
                    return True
        return any(term(row) for term in rest)

    return predicate


class FilterError(ValueError):
    """The $filter text is not in the supported subset."""


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def _comparable(row_value: Any, literal: Any) -> Any:
    """A row's date-time text as an instant when it is compared with a date-time literal."""
    if isinstance(literal, datetime) and isinstance(row_value, str):
        try:
            return _instant(row_value)
        except ValueError:
            return None
    return _fold(row_value)


def _tokens(text: str) -> list[tuple[str, str]]:
    position, found = 0, []
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"unexpected text at {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.columns: set[str] = set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of $filter")
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        _kind, text = self.take()
        if text != value:
            raise FilterError(f"expected {value!r}, found {text!r}")

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    def or_expr(self) -> Predicate:
        terms = [self.and_expr()]
        while (token := self.peek()) is not None and token[1] == "or":
            self.take()
            terms.append(self.and_expr())
        return _any_of(terms)

    def and_expr(self) -> Predicate:
        left = self.unary()
        while (token := self.peek()) is not None and token[1] == "and":
            self.take()
            left = _both(left, self.unary())
        return left

    def unary(self) -> Predicate:
        token = self.peek()
        if token is not None and token[1] == "not":
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        if token is not None and token[1] == "(":
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        if token is not None and token[1] in _FUNCTIONS:
            return self.function()
        return self.comparison()

    def function(self) -> Predicate:
        name = self.take()[1]
        self.expect("(")
        column = self.take()[1]
        self.columns.add(column)
        self.expect(",")
        value = _fold(self.literal())
        self.expect(")")
        if name == "endswith" and isinstance(value, str):
            return _EndsWith(column, value)
        test = _FUNCTIONS[name]
        return lambda row: bool(test(_fold(row.get(column)), value))

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text) if "." in text else int(text)
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if kind == "guid":
            return text.lower()
        if kind == "datetime":
            return _instant(text)
        raise FilterError(f"expected a value, found {text!r}")

    def comparison(self) -> Predicate:
        kind, column = self.take()
        if kind != "word":
            raise FilterError(f"expected a column name, found {column!r}")
        self.columns.add(column)
        operator = self.take()[1]
        if operator not in _COMPARE:
            raise FilterError(f"unsupported operator {operator!r}")
        value = _fold(self.literal())
        if operator == "eq":
            return _Eq(column, value)
        compare = _COMPARE[operator]
        return lambda row: bool(compare(_comparable(row.get(column), value), value))


def parse_filter(text: str) -> Predicate:
    return _Parser(text).parse()


def parse_filter_columns(text: str) -> tuple[Predicate, set[str]]:
    """The predicate and every column it names (Dataverse refuses a $filter on an unknown property)."""
    parser = _Parser(text)
    return parser.parse(), parser.columns
