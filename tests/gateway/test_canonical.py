"""canonical_json agrees byte for byte with the rfc8785 library (RFC 8785 / JCS)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import rfc8785
from govshare.gateway import canonical_json

# Characters that make encoders differ if anything does: escapes, controls,
# DEL, line separators, CJK, astral plane (surrogate pairs in UTF-16).
_ALPHABET = 'aZ09 "\\/\b\f\n\r\t\x00\x01\x1f\x7f\u2028\u2029中文证照é\U0001f600\U00010000\ue000'


def _string(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 12)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return _string(rng)
    if kind == "int":
        return rng.choice([0, -1, 1, 2**53 - 1, -(2**53 - 1), rng.randrange(-(10**12), 10**12)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    keys = ["a", "B", "time", "consumer", "_x", "z9", "fields_returned", "A", "aa", ""]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randrange(0, 6))}


class TestAgreementWithTheLibrary:
    def test_two_thousand_random_documents_encode_identically(self) -> None:
        """Random records of strings, integers, booleans, nulls, lists and objects match rfc8785."""
        rng = random.Random(8785)
        for _ in range(2000):
            document = {"record": _value(rng), "n": rng.randrange(10**9)}
            assert canonical_json(document) == rfc8785.dumps(document)

    @pytest.mark.parametrize(
        "document",
        [
            {"amount": 12345.67},  # floats take the library's path
            {"中文键": 1, "b": 2},  # non-ASCII keys: UTF-16 order is the library's job
            {"\U0001f600": 1, "\ue000": 2},
        ],
        ids=["float", "cjk-key", "astral-key"],
    )
    def test_documents_outside_the_fast_path_still_match(self, document: dict[str, Any]) -> None:
        """What the fast path does not cover is left to rfc8785, so the bytes still agree."""
        assert canonical_json(document) == rfc8785.dumps(document)

    def test_integers_beyond_the_safe_range_are_refused_as_by_the_library(self) -> None:
        """2^60 is not an I-JSON number: the library's error, not silently different bytes."""
        with pytest.raises(rfc8785.IntegerDomainError):
            canonical_json({"big": 2**60})

    def test_an_access_record_is_sorted_and_compact(self) -> None:
        """A typical record comes out with sorted keys, no spaces, and UTF-8 text."""
        record = {
            "purpose": "核验身份",
            "outcome": "ALLOWED",
            "latency_us": 1234,
            "fields": ["name"],
        }
        assert canonical_json(record) == (
            '{"fields":["name"],"latency_us":1234,"outcome":"ALLOWED","purpose":"核验身份"}'.encode()
        )
