"""A small AIP-160 filter subset and AIP-132 order_by, evaluated in Python.

Grammar (AIP-160 precedence: OR binds tighter than AND)::

    expression  := factor { "AND" factor }
    factor      := term { "OR" term }
    term        := "NOT" term | "(" expression ")" | restriction
    restriction := FIELD op VALUE
    op          := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"

VALUE is a "quoted string" or a bare word (`CONDITIONAL`, `2025-03-01`,
`true`, `42`). `=` / `!=` work on every scalar field; `<`, `<=`, `>`, `>=` on
dates, timestamps and integers; `:` ("has") on list fields only. A string
value ending in `*` matches by prefix (`code = "105001/*"`). Reference fields
accept the AIP name too (`provider = "departments/1133…"`). Implicit AND by
juxtaposition, functions and traversal are not supported: they are refused
with INVALID_ARGUMENT, never silently ignored.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import InvalidArgument

__all__ = ["FieldKind", "FilterField", "order_items", "parse_filter", "parse_order_by"]

_T = TypeVar("_T")
Predicate = Callable[[_T], bool]


class FieldKind(enum.Enum):
    """How a field's values compare."""

    STRING = "string"
    ENUM = "enum"
    DATE = "date"
    TIMESTAMP = "timestamp"
    INT = "int"
    BOOL = "bool"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class FilterField(Generic[_T]):
    """One filterable, orderable field: its kind and how to read it from an item."""

    kind: FieldKind
    get: Callable[[_T], Any]
    values: frozenset[str] = frozenset()
    prefix: str = ""


_ORDERED_KINDS = frozenset({FieldKind.DATE, FieldKind.TIMESTAMP, FieldKind.INT})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | (?P<op><=|>=|!=|=|<|>|:)
      | "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>(?:[^'\\]|\\.)*)'
      | (?P<word>[^\s()<>=!:"']+)
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "op", "string", "word", "end"
    text: str
    position: int


def _bad(message: str, field: str = "filter") -> InvalidArgument:
    return InvalidArgument([(field, message)], reason="FILTER_INVALID")


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            column = len(text) - len(text[position:].lstrip()) + 1
            raise _bad(f"unexpected character at column {column}")
        start = match.start(match.lastgroup or 0)
        if match.group("paren"):
            found.append(_Token(match.group("paren"), match.group("paren"), start))
        elif match.group("op"):
            found.append(_Token("op", match.group("op"), start))
        elif match.group("word") is not None:
            found.append(_Token("word", match.group("word"), start))
        else:
            quoted = match.group("dq") if match.group("dq") is not None else match.group("sq")
            found.append(_Token("string", _ESCAPE.sub(r"\1", quoted), start))
        position = match.end()
    found.append(_Token("end", "", len(text)))
    return found


class _Parser(Generic[_T]):
    def __init__(self, text: str, fields: Mapping[str, FilterField[_T]]) -> None:
        self._tokens = _tokens(text)
        self._at = 0
        self._fields = fields

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _next(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token.kind == "word" and token.text == word:
            self._at += 1
            return True
        return False

    def parse(self) -> Predicate[_T]:
        predicate = self._expression()
        token = self._peek()
        if token.kind != "end":
            raise _bad(f"expected AND, OR or the end at column {token.position + 1}")
        return predicate

    def _expression(self) -> Predicate[_T]:
        parts = [self._factor()]
        while self._keyword("AND"):
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda item: all(p(item) for p in parts))

    def _factor(self) -> Predicate[_T]:
        parts = [self._term()]
        while self._keyword("OR"):
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda item: any(p(item) for p in parts))

    def _term(self) -> Predicate[_T]:
        if self._keyword("NOT"):
            inner = self._term()
            return lambda item: not inner(item)
        token = self._next()
        if token.kind == "(":
            inner = self._expression()
            if self._next().kind != ")":
                raise _bad(f"missing ')' for the '(' at column {token.position + 1}")
            return inner
        if token.kind != "word":
            raise _bad(f"expected a field name at column {token.position + 1}")
        return self._restriction(token)

    def _restriction(self, name: _Token) -> Predicate[_T]:
        field = self._fields.get(name.text)
        if field is None:
            known = ", ".join(sorted(self._fields))
            raise _bad(f"unknown field {name.text!r} (known: {known})")
        op = self._next()
        if op.kind != "op":
            raise _bad(f"expected a comparison after {name.text!r} at column {op.position + 1}")
        value = self._next()
        if value.kind not in ("string", "word"):
            raise _bad(f"expected a value after {name.text!r} {op.text}")
        return _compare(name.text, field, op.text, value.text)


def _literal(name: str, field: FilterField[_T], text: str) -> Any:
    kind = field.kind
    try:
        if kind is FieldKind.DATE:
            return _dt.date.fromisoformat(text)
        if kind is FieldKind.TIMESTAMP:
            if len(text) == 10:
                day = _dt.date.fromisoformat(text)
                return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)
            moment = _dt.datetime.fromisoformat(text)
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=_dt.UTC)
        if kind is FieldKind.INT:
            return int(text)
    except ValueError:
        raise _bad(f"{text!r} is not a valid {kind.value} for {name!r}") from None
    if kind is FieldKind.BOOL:
        if text not in ("true", "false"):
            raise _bad(f"{name!r} takes true or false")
        return text == "true"
    if kind is FieldKind.ENUM and text not in field.values:
        raise _bad(
            f"{text!r} is not a value of {name!r} (one of {', '.join(sorted(field.values))})"
        )
    if field.prefix and text.startswith(field.prefix):
        return text[len(field.prefix) :]
    return text


def _compare(name: str, field: FilterField[_T], op: str, text: str) -> Predicate[_T]:
    get = field.get
    if field.kind is FieldKind.LIST:
        if op != ":":
            raise _bad(f"{name!r} is a list: use {name}:VALUE")
        member = _literal(name, field, text)
        return lambda item: member in get(item)
    if op == ":":
        raise _bad(f"':' applies to list fields only, not {name!r}")
    if op not in ("=", "!=") and field.kind not in _ORDERED_KINDS:
        raise _bad(f"{name!r} supports only = and !=")
    if field.kind is FieldKind.STRING and op in ("=", "!=") and text.endswith("*"):
        start = _literal(name, field, text[:-1])

        def prefixed(item: _T) -> bool:
            return str(get(item)).startswith(start)

        return prefixed if op == "=" else (lambda item: not prefixed(item))
    wanted = _literal(name, field, text)
    if op == "=":
        return lambda item: get(item) == wanted
    if op == "!=":
        return lambda item: get(item) != wanted
    comparisons: Mapping[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    compare = comparisons[op]

    def ordered(item: _T) -> bool:
        # An unset date or time (a draft's publish date, an undecided application) never matches.
        value = get(item)
        return value is not None and compare(value, wanted)

    return ordered


# Generous for people, small enough that parsing stays cheap and shallow.
MAX_FILTER_LENGTH = 2000


def parse_filter(text: str, fields: Mapping[str, FilterField[_T]]) -> Predicate[_T]:
    """Compile `text` into a predicate; an empty filter matches everything."""
    if not text.strip():
        return lambda item: True
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad(f"longer than {MAX_FILTER_LENGTH} characters", "filter")
    try:
        return _Parser(text, fields).parse()
    except RecursionError:
        # Thousands of nested NOTs or parentheses: refuse rather than crash.
        raise _bad("nested too deeply", "filter") from None


def parse_order_by(text: str, fields: Mapping[str, FilterField[Any]]) -> list[tuple[str, bool]]:
    """`field [asc|desc], …` as (field, descending) pairs; unknown fields are refused."""
    order: list[tuple[str, bool]] = []
    if not text.strip():
        return order
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _bad(f"cannot read {part.strip()!r}: use 'field' or 'field desc'", "order_by")
        name = words[0]
        field = fields.get(name)
        if field is None or field.kind is FieldKind.LIST:
            raise _bad(f"cannot order by {name!r}", "order_by")
        if any(existing == name for existing, _ in order):
            raise _bad(f"{name!r} is named twice", "order_by")
        order.append((name, len(words) == 2 and words[1] == "desc"))
    return order


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value)


def _sort_key(get: Callable[[_T], Any]) -> Callable[[_T], tuple[int, Any]]:
    return lambda item: _sortable(get(item))


def order_items(
    items: Iterable[_T],
    order: Sequence[tuple[str, bool]],
    fields: Mapping[str, FilterField[_T]],
    tiebreak: str,
) -> list[_T]:
    """Sort by `order`, then by the natural key so that pages never overlap or skip."""
    result = sorted(items, key=_sort_key(fields[tiebreak].get))
    for name, descending in reversed(order):
        # Stable sorts applied from the last key to the first give a multi-key order.
        result.sort(key=_sort_key(fields[name].get), reverse=descending)
    return result
