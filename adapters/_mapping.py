"""Declarative mappings from a registry's native HTTP/JSON API to catalogue data items.

One YAML file per registry (adapters/mappings/<registry>.yaml)::

    registry: civil_affairs              # the name the gateway configures a base URL for
    provider: 11330100002482103K         # the providing department's USCC
    resources:
      101002/00001:                      # catalogue resource code
        request:
          method: GET                    # GET (default) or POST
          path: /marriage/v2/persons/{holder_id}/records
          query: {page: "1"}             # optional; values are templates
          json: {gmsfhm: "{holder_id}"}  # optional request body template (POST)
          headers: {X-Request-Id: "{request_id}"}
        not_found:                       # any one rule matching means "no such holder"
          - status: [404]                # HTTP status(es), optionally with a body test:
          - {path: records, empty: true} # missing, null, "", [] or {} at the path
          - {path: code, equals: "40400"}
        success: {path: code, equals: "0"}   # optional; else the answer is a failure
        record: records.0                # required: dotted path, digits index lists; "" = root
        fields:
          certificate_number: {path: certNo}
          registration_date: {path: regDate, type: date, format: "%Y年%m月%d日"}
          marital_status: {path: type, values: {结婚: 已婚, 离婚: 离婚}}
          spouse_name:
            pick: {candidates: [husband, wife], other_than_holder: idNumber}
            path: name

Templates may use ``{holder_id}``, ``{holder_id_type}`` and ``{request_id}``.
A rule with ``status`` matches only those statuses; one without matches a 2xx
answer. Each field is read in this order:

1. ``pick`` (optional): of the ``candidates`` objects in the record, the single
   one whose ``other_than_holder`` value differs from the holder id — the
   other party of a two-party record. ``path`` is then read inside it.
2. ``path``: a missing key, null, an empty string or a value listed in
   ``absent`` (e.g. 长期) leaves the data item out of the record.
3. ``values``: a code table (keys quoted strings); a code not in it makes the
   answer unreadable rather than passing an unknown code on.
4. ``type``: ``string`` (default); ``date`` with ``format`` a strptime format of
   one ``%Y``, ``%m`` and ``%d`` each plus literal text, or ``iso8601`` (optional
   ``timezone: "+08:00"``, within ±14:00, converts aware datetimes first), giving
   ``YYYY-MM-DD``; ``decimal``, giving ``format(Decimal, "f")``
   — never an exponent. With ``scale: N`` the value is padded to exactly N
   places; a value with more significant places is refused, not rounded, so
   an amount is never silently changed. Without ``scale`` the source's digits
   are kept as written. Both are deterministic for a given answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ._base import HolderNotFound, ProviderUnavailable

__all__ = [
    "FieldMapping",
    "NotFoundRule",
    "PickRule",
    "RegistryMapping",
    "RequestTemplate",
    "ResourceMapping",
]


class _Missing:
    """Marks a path that leads nowhere (distinct from a JSON null)."""


_MISSING: Final = _Missing()
# Built once: json.loads with options constructs a new decoder on every call.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal)
# The longest data item a registry may return (a business scope, 经营范围, runs to a
# few thousand characters); longer is a broken or hostile answer, not a record.
_MAX_ITEM_CHARS: Final = 8192
_MAX_EXPONENT: Final = 100


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """How to ask the registry for one holder's record."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    json_body: Any  # None, or a JSON value whose strings are templates
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class NotFoundRule:
    """One way the registry says it holds nothing for the holder."""

    statuses: frozenset[int]  # empty: any 2xx status
    path: tuple[str, ...] | None
    equals: str | None
    empty: bool

    def matches(self, status: int, body: object) -> bool:
        """Whether an answer with `status` and parsed `body` is a not-found."""
        if self.statuses:
            if status not in self.statuses:
                return False
        elif not 200 <= status < 300:
            return False
        if self.path is None:
            return True
        if body is _MISSING:
            return False
        value = _resolve(body, self.path)
        if self.empty:
            return value is _MISSING or value in (None, "", [], {})
        return _is_scalar(value) and _scalar_text(value) == self.equals


@dataclass(frozen=True, slots=True)
class PickRule:
    """Choose the one candidate object that is not the holder's own."""

    candidates: tuple[tuple[str, ...], ...]
    other_than_holder: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where one data item sits in the record and how to canonicalise it."""

    name: str
    path: tuple[str, ...]
    pick: PickRule | None = None
    type: str = "string"
    date_format: str | None = None
    timezone: dt.tzinfo | None = None
    scale: int | None = None
    values: Mapping[str, str] | None = None
    absent: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ResourceMapping:
    """The mapping of one catalogue resource onto one registry endpoint."""

    registry: str
    resource_code: str
    request: RequestTemplate
    not_found: tuple[NotFoundRule, ...]
    success: tuple[tuple[str, ...], str] | None
    record: tuple[str, ...]
    fields: tuple[FieldMapping, ...]

    def interpret(self, status: int, raw: bytes, holder_id: str) -> dict[str, str]:
        """Map an answer (status and body bytes) to data items by catalogue name.

        Raises `HolderNotFound` or `ProviderUnavailable`; neither message
        carries the holder id or any value from the answer.
        """
        body = _parse_json(raw)
        where = f"{self.registry} ({self.resource_code}, HTTP {status})"
        if any(rule.matches(status, body) for rule in self.not_found):
            raise HolderNotFound(f"{where}: no record for the holder")
        if not 200 <= status < 300:
            raise ProviderUnavailable(f"{where}: unexpected status")
        if body is _MISSING:
            raise ProviderUnavailable(f"{where}: answer is not JSON")
        if self.success is not None:
            path, expected = self.success
            value = _resolve(body, path)
            if not (_is_scalar(value) and _scalar_text(value) == expected):
                raise ProviderUnavailable(f"{where}: answer reports a failure")
        record = _resolve(body, self.record)
        if not isinstance(record, dict):
            raise ProviderUnavailable(f"{where}: no record at {'.'.join(self.record) or '<root>'}")
        result: dict[str, str] = {}
        for item in self.fields:
            try:
                value = _field_value(item, record, holder_id)
            except (ValueError, ArithmeticError):
                raise ProviderUnavailable(f"{where}: data item {item.name} unreadable") from None
            if value is not None:
                result[item.name] = value
        return result


@dataclass(frozen=True, slots=True)
class RegistryMapping:
    """A registry's mapping file, validated: what the adapter needs besides a base URL."""

    registry: str
    provider: str
    resources: Mapping[str, ResourceMapping]
    source: str  # the file it came from, for messages


def _resolve(document: object, path: tuple[str, ...]) -> object:
    """The value at `path` in a parsed JSON document, or `_MISSING`."""
    node = document
    for segment in path:
        if isinstance(node, dict):
            if segment not in node:
                return _MISSING
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit():
            index = int(segment)
            if index >= len(node):
                return _MISSING
            node = node[index]
        else:
            return _MISSING
    return node


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | Decimal)  # bool is an int


def _scalar_text(value: object) -> str:
    """The canonical text of a JSON scalar; raises ValueError for objects and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        # Positional notation of 1e6000000 is six million digits: beyond a sane
        # magnitude keep the scientific spelling (a data item refuses it later).
        if number.is_finite() and abs(number.adjusted()) > _MAX_EXPONENT:
            return str(number)
        return format(number, "f")
    raise ValueError("not a scalar")


def _picked(rule: PickRule, record: dict[str, Any], holder_id: str) -> object:
    others = [
        candidate
        for path in rule.candidates
        if isinstance(candidate := _resolve(record, path), dict)
        and _resolve(candidate, rule.other_than_holder) != holder_id
    ]
    if len(others) != 1:
        # Zero: the holder is every party; two: the holder is none. Either
        # way the answer does not describe the holder's record.
        raise ValueError("no single other party")
    return others[0]


def _field_value(item: FieldMapping, record: dict[str, Any], holder_id: str) -> str | None:
    source: object = record if item.pick is None else _picked(item.pick, record, holder_id)
    raw = _resolve(source, item.path)
    if raw is _MISSING or raw is None:
        return None
    text = _scalar_text(raw).strip()
    if not text or text in item.absent:
        return None
    if len(text) > _MAX_ITEM_CHARS:
        raise ValueError("longer than any data item")
    if not text.isascii():
        text.encode("utf-8")  # UnicodeEncodeError (a ValueError) on lone surrogates
    if item.values is not None:
        if text not in item.values:
            raise ValueError("code not in the value table")
        text = item.values[text]
    if item.type == "date":
        return _canonical_date(item, text)
    if item.type == "decimal":
        return _canonical_decimal(item, text)
    return text


def _canonical_date(item: FieldMapping, text: str) -> str:
    if item.date_format == "iso8601":
        moment = dt.datetime.fromisoformat(text)
        if item.timezone is not None and moment.tzinfo is not None:
            moment = moment.astimezone(item.timezone)
        return moment.date().isoformat()
    assert item.date_format is not None  # validated on load
    fixed = _fixed_width_date(item.date_format)
    if fixed is not None and (match := fixed.fullmatch(text)) is not None:
        return dt.date(int(match["Y"]), int(match["m"]), int(match["d"])).isoformat()
    return dt.datetime.strptime(text, item.date_format).date().isoformat()


_WIDTHS: Final = {"%Y": r"(?P<Y>[0-9]{4})", "%m": r"(?P<m>[0-9]{2})", "%d": r"(?P<d>[0-9]{2})"}


@functools.cache
def _fixed_width_date(date_format: str) -> re.Pattern[str] | None:
    """A strict pattern for formats of only %Y, %m, %d and literal text, else None.

    strptime costs ~20 µs a call on the request path. This pattern accepts only the
    zero-padded spelling, a subset of what strptime accepts and read the same way;
    anything else still goes to strptime, so results never differ.
    """
    parts = re.split(r"(%.)", date_format)
    if sorted(parts[1::2]) != ["%Y", "%d", "%m"]:
        return None
    return re.compile("".join(_WIDTHS.get(part) or re.escape(part) for part in parts))


def _canonical_decimal(item: FieldMapping, text: str) -> str:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a decimal") from None
    if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
        raise ValueError("not a finite decimal of sane magnitude")
    if item.scale is not None:
        padded = number.quantize(Decimal(1).scaleb(-item.scale))
        if padded != number:
            raise ValueError("more decimal places than the mapping's scale")
        number = padded
    return format(number, "f")


def _parse_json(raw: bytes) -> object:
    """Parse an answer body, decimals kept exact; `_MISSING` when it is not JSON."""
    try:
        return _DECODER.decode(raw.decode("utf-8-sig"))
    # ValueError includes UnicodeDecodeError and JSONDecodeError; RecursionError
    # is a document nested deeper than the parser's stack.
    except (ValueError, RecursionError):
        return _MISSING
