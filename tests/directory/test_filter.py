"""The AIP-160 filter subset, order_by, and page tokens bound to their query."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from govshare.directory import (
    FieldKind,
    FilterField,
    InvalidArgument,
    Page,
    order_items,
    paginate,
    parse_filter,
    parse_order_by,
)


@dataclass(frozen=True)
class Row:
    code: str
    provider: str
    kind: str
    day: dt.date | None
    size: int
    tags: tuple[str, ...] = ()


FIELDS: dict[str, FilterField[Row]] = {
    "code": FilterField(FieldKind.STRING, lambda r: r.code),
    "provider": FilterField(FieldKind.STRING, lambda r: r.provider, prefix="departments/"),
    "kind": FilterField(FieldKind.ENUM, lambda r: r.kind, values=frozenset({"A", "B", "C"})),
    "day": FilterField(FieldKind.DATE, lambda r: r.day),
    "size": FilterField(FieldKind.INT, lambda r: r.size),
    "tags": FilterField(FieldKind.LIST, lambda r: r.tags),
}

ROWS = [
    Row("r1", "P1", "A", dt.date(2025, 1, 1), 5, ("x",)),
    Row("r2", "P1", "B", dt.date(2025, 6, 1), 10, ("x", "y")),
    Row("r3", "P2", "A", dt.date(2026, 1, 1), 15),
    Row("r4", "P2", "C", None, 20, ("y",)),
]


def codes(text: str) -> list[str]:
    predicate = parse_filter(text, FIELDS)
    return [r.code for r in ROWS if predicate(r)]


def refused(text: str) -> str:
    with pytest.raises(InvalidArgument) as raised:
        parse_filter(text, FIELDS)
    ((field, message),) = raised.value.violations
    assert field == "filter"
    return message


class TestFilter:
    def test_empty_matches_everything(self) -> None:
        """An empty or blank filter keeps every row."""
        assert codes("") == codes("   ") == ["r1", "r2", "r3", "r4"]

    def test_quoted_and_bare_values(self) -> None:
        """`=` takes a quoted string or a bare word; bare enum values work."""
        assert codes('provider = "P1"') == ["r1", "r2"]
        assert codes("provider = P2") == ["r3", "r4"]
        assert codes("kind = A") == ["r1", "r3"]
        assert codes("kind != A") == ["r2", "r4"]

    def test_and_or_parentheses_not(self) -> None:
        """AND, OR, NOT and parentheses combine restrictions."""
        assert codes('provider = "P1" AND kind = B') == ["r2"]
        assert codes("kind = B OR kind = C") == ["r2", "r4"]
        assert codes("(kind = B OR kind = C) AND provider = P2") == ["r4"]
        assert codes("NOT kind = A") == ["r2", "r4"]

    def test_or_binds_tighter_than_and(self) -> None:
        """AIP-160 precedence: `a AND b OR c` is `a AND (b OR c)`."""
        assert codes("provider = P1 AND kind = B OR kind = C") == ["r2"]
        assert codes("(provider = P1 AND kind = B) OR kind = C") == ["r2", "r4"]

    def test_date_comparisons(self) -> None:
        """Dates compare with < <= > >=; an unset date never matches an ordering."""
        assert codes('day >= "2025-06-01"') == ["r2", "r3"]
        assert codes("day < 2025-06-01") == ["r1"]
        assert codes("day <= 2025-06-01 AND day > 2025-01-01") == ["r2"]
        assert codes("day = 2026-01-01") == ["r3"]

    def test_integer_comparisons(self) -> None:
        """Integers compare numerically, not as text."""
        assert codes("size > 9") == ["r2", "r3", "r4"]

    def test_prefix_wildcard_and_aip_names(self) -> None:
        """A trailing * matches a prefix; a reference field accepts the AIP name."""
        assert codes('code = "r*"') == ["r1", "r2", "r3", "r4"]
        assert codes('code != "r1*"') == ["r2", "r3", "r4"]
        assert codes('provider = "departments/P2"') == ["r3", "r4"]

    def test_has_on_lists(self) -> None:
        """`:` tests membership of a list field."""
        assert codes("tags:y") == ["r2", "r4"]
        assert codes('tags:"x" AND NOT tags:y') == ["r1"]

    def test_escaped_quotes(self) -> None:
        """A backslash escapes a quote inside a quoted value."""
        assert codes('code = "r\\"1"') == []


class TestFilterErrors:
    def test_unknown_field(self) -> None:
        """An unknown field is named, with the fields that exist."""
        message = refused('owner = "P1"')
        assert "unknown field 'owner'" in message
        assert "provider" in message

    def test_unknown_enum_value(self) -> None:
        """A bare value outside the enum is refused, listing the values."""
        assert "one of A, B, C" in refused("kind = D")

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ('provider < "P2"', "supports only = and !="),
            ("day > yesterday", "not a valid date"),
            ("size = ten", "not a valid int"),
            ("tags = x", "is a list"),
            ("code:r1", "list fields only"),
            ('code = "r1', "unexpected character"),
            ("(kind = A", "missing ')'"),
            ("kind = A kind = B", "expected AND, OR or the end"),
            ("kind =", "expected a value"),
            ("kind A", "expected a comparison"),
            ("= A", "expected a field name"),
            ("kind ! A", "unexpected character"),
        ],
    )
    def test_malformed(self, text: str, fragment: str) -> None:
        """Every malformed filter is INVALID_ARGUMENT with a readable reason."""
        assert fragment in refused(text)


class TestOrderBy:
    def test_several_keys_and_directions(self) -> None:
        """`provider desc, size` sorts by provider descending, then size ascending."""
        order = parse_order_by("provider desc, size", FIELDS)
        assert order == [("provider", True), ("size", False)]
        assert [r.code for r in order_items(ROWS, order, FIELDS, "code")] == [
            "r3",
            "r4",
            "r1",
            "r2",
        ]

    def test_unset_values_sort_first(self) -> None:
        """Rows without a date come before dated rows in ascending order."""
        order = parse_order_by("day", FIELDS)
        assert next(r.code for r in order_items(ROWS, order, FIELDS, "code")) == "r4"

    @pytest.mark.parametrize(
        "text", ["owner", "size sideways", "tags", "size, size", "size desc x"]
    )
    def test_refused(self, text: str) -> None:
        """Unknown, list-valued, repeated or malformed keys are refused."""
        with pytest.raises(InvalidArgument) as raised:
            parse_order_by(text, FIELDS)
        assert raised.value.violations[0][0] == "order_by"


def many() -> list[Row]:
    return [
        Row(f"r{i:03d}", "P1" if i % 5 else "P2", "A" if i % 3 else "B", None, i)
        for i in range(120)
    ]


def page(
    token: str = "", *, filter: str = "kind = A", order_by: str = "", size: int = 25
) -> Page[Row]:
    return paginate(
        "rows",
        many(),
        FIELDS,
        tiebreak="code",
        filter=filter,
        order_by=order_by,
        page_size=size,
        page_token=token,
    )


class TestPagination:
    def test_pages_cover_the_filtered_rows_exactly_once(self) -> None:
        """80 matching rows in pages of 25: 25, 25, 25, 5, no overlap, no gap."""
        seen: list[str] = []
        sizes: list[int] = []
        token = ""
        while True:
            current = page(token)
            assert current.total_size == 80
            sizes.append(len(current.items))
            seen += [r.code for r in current.items]
            token = current.next_page_token
            if not token:
                break
        assert sizes == [25, 25, 25, 5]
        assert seen == [r.code for r in many() if r.kind == "A"]

    def test_order_is_kept_across_pages(self) -> None:
        """With order_by, the pages continue the same order."""
        first = page(order_by="size desc", size=10)
        second = page(first.next_page_token, order_by="size desc", size=10)
        sizes = [r.size for r in first.items + second.items]
        assert sizes == sorted(sizes, reverse=True)

    @pytest.mark.parametrize(
        "changes",
        [{"filter": "kind = B"}, {"order_by": "size desc"}, {"filter": "kind = A "}],
    )
    def test_token_is_bound_to_filter_and_order(self, changes: dict[str, str]) -> None:
        """A token presented with another filter or order_by is INVALID_ARGUMENT."""
        token = page().next_page_token
        with pytest.raises(InvalidArgument) as raised:
            page(token, **changes)
        assert raised.value.violations[0][0] == "page_token"

    def test_token_is_bound_to_its_collection(self) -> None:
        """A token of one collection is refused by another."""
        token = page().next_page_token
        with pytest.raises(InvalidArgument):
            paginate("others", many(), FIELDS, tiebreak="code", filter="kind = A", page_token=token)

    @pytest.mark.parametrize("token", ["garbage", "e30", "eyJjIjoicm93cyIsInEiOiJ4IiwibyI6LTF9"])
    def test_forged_tokens_are_refused(self, token: str) -> None:
        """Undecodable tokens, tokens without fields and negative offsets are refused."""
        with pytest.raises(InvalidArgument):
            page(token)

    def test_page_size_defaults_and_limits(self) -> None:
        """0 means 50, anything above 1000 is cut to 1000, negative is refused."""
        assert len(page(filter="", size=0).items) == 50
        assert len(page(filter="", size=5000).items) == 120
        with pytest.raises(InvalidArgument):
            page(size=-1)

    def test_last_page_has_no_token(self) -> None:
        """A result that fits one page has an empty next_page_token."""
        result = page(filter="provider = P2", size=100)
        assert (len(result.items), result.next_page_token) == (24, "")
