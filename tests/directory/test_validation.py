"""Check rules for USCCs (GB 32100), citizen ids (GB 11643), certificate
identifiers (GB/T 36903 as issued), resource codes and holder ids."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from govshare.directory import (
    HOLDER_ID_TYPE_CITIZEN_ID,
    HOLDER_ID_TYPE_USCC,
    certificate_identifier_check_character,
    citizen_id_check_character,
    is_valid_certificate_identifier,
    is_valid_citizen_id,
    is_valid_holder_id,
    is_valid_resource_code,
    is_valid_uscc,
    uscc_check_character,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALID_USCC = "91110108551385082Q"
VALID_CITIZEN_ID = "360426199101010071"
CITIZEN_ID_ENDING_X = "11010519900307005X"
VALID_CERTIFICATE_ID = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
MOD37_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def reference_uscc_check(first17: str) -> str:
    """GB 32100 as DOMAIN.md states it: weights 3^(i-1) mod 31."""
    total = sum(USCC_ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(first17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def reference_citizen_check(first17: str) -> str:
    """ISO 7064 MOD 11-2: weights 2^(17-i) mod 11, Σ mod 11 indexes `10X98765432`."""
    total = sum(int(ch) * pow(2, 17 - i, 11) for i, ch in enumerate(first17))
    return "10X98765432"[total % 11]


def citizen_id(birth: str, order: str = "007", address: str = "360426") -> str:
    body = address + birth + order
    return body + citizen_id_check_character(body)


class TestUscc:
    def test_published_example_is_valid(self) -> None:
        """The GB 32100 example 91110108551385082Q passes."""
        assert is_valid_uscc(VALID_USCC)
        assert uscc_check_character(VALID_USCC[:17]) == "Q"

    def test_wrong_check_character_is_invalid(self) -> None:
        """Every check character but the right one is refused."""
        wrong = [VALID_USCC[:17] + ch for ch in USCC_ALPHABET if ch != "Q"]
        assert [code for code in wrong if is_valid_uscc(code)] == []

    def test_lowercase_is_invalid(self) -> None:
        """A lowercase check character is not accepted as its uppercase form."""
        assert not is_valid_uscc(VALID_USCC[:17] + "q")
        assert not is_valid_uscc(VALID_USCC.lower())

    @pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
    def test_forbidden_letters_are_invalid(self, letter: str) -> None:
        """I, O, S, V and Z are outside the alphabet, in the body or as check."""
        assert not is_valid_uscc(VALID_USCC[:17] + letter)
        assert not is_valid_uscc(VALID_USCC[:10] + letter + VALID_USCC[11:])

    def test_region_code_must_be_digits(self) -> None:
        """Characters 3-8 (行政区划码) are digits even when the check sum fits."""
        body = "91A10108551385082"
        code = body + uscc_check_character(body)
        assert not is_valid_uscc(code)

    @pytest.mark.parametrize(
        "code", ["", VALID_USCC[:17], VALID_USCC + "0", " " + VALID_USCC, VALID_USCC + "\n"]
    )
    def test_wrong_length_is_invalid(self, code: str) -> None:
        """Anything but exactly 18 characters is refused."""
        assert not is_valid_uscc(code)

    def test_seed_departments_have_valid_codes(self) -> None:
        """The check function agrees with an independent implementation on real codes."""
        codes = ["11330100002482101D", "11330100002482106W", "113301000024821070"]
        assert all(is_valid_uscc(code) for code in codes)
        assert [reference_uscc_check(code[:17]) for code in codes] == [c[17] for c in codes]

    def test_random_bodies_accept_only_the_computed_check(self) -> None:
        """For 200 random bodies, body + check is valid and every other check is not."""
        rng = random.Random(20261123)
        for _ in range(200):
            body = (
                "".join(rng.choice(USCC_ALPHABET) for _ in range(2))
                + "".join(rng.choice("0123456789") for _ in range(6))
                + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
            )
            check = uscc_check_character(body)
            assert check == reference_uscc_check(body), body
            assert is_valid_uscc(body + check), body
            accepted = [ch for ch in USCC_ALPHABET if ch != check and is_valid_uscc(body + ch)]
            assert accepted == [], body


class TestCitizenId:
    def test_published_example_is_valid(self) -> None:
        """The example 360426199101010071 passes."""
        assert is_valid_citizen_id(VALID_CITIZEN_ID)
        assert citizen_id_check_character(VALID_CITIZEN_ID[:17]) == "1"

    def test_check_character_needs_exactly_17_digits(self) -> None:
        """16 or 18 characters are refused, not silently weighted short."""
        for body in (VALID_CITIZEN_ID[:16], VALID_CITIZEN_ID):
            with pytest.raises(ValueError, match="exactly 17"):
                citizen_id_check_character(body)

    def test_wrong_check_digit_is_invalid(self) -> None:
        """360426199101010072 differs only in the check digit and is refused."""
        assert not is_valid_citizen_id("360426199101010072")

    def test_check_character_x(self) -> None:
        """A body whose check is 10 ends in X and is valid with X, not with a digit."""
        assert citizen_id_check_character(CITIZEN_ID_ENDING_X[:17]) == "X"
        assert is_valid_citizen_id(CITIZEN_ID_ENDING_X)
        assert not any(is_valid_citizen_id(CITIZEN_ID_ENDING_X[:17] + d) for d in "0123456789")

    def test_lowercase_x_is_invalid(self) -> None:
        """GB 11643 writes the check character as uppercase X only."""
        assert not is_valid_citizen_id(CITIZEN_ID_ENDING_X[:17] + "x")

    @pytest.mark.parametrize("birth", ["19910230", "19910431", "19911301", "19910001", "19000229"])
    def test_impossible_birth_date_is_invalid_with_correct_check(self, birth: str) -> None:
        """A birth date that is not a real day is refused even when the check fits."""
        number = citizen_id(birth)
        assert number[17] == reference_citizen_check(number[:17])
        assert not is_valid_citizen_id(number)

    def test_leap_day_is_valid(self) -> None:
        """29 February of a leap year is a real birth date."""
        assert is_valid_citizen_id(citizen_id("20000229"))

    def test_future_birth_date_is_invalid(self) -> None:
        """Nobody is born tomorrow; today is the last acceptable birth date."""
        today = dt.date.today()
        tomorrow = today + dt.timedelta(days=1)
        assert is_valid_citizen_id(citizen_id(f"{today:%Y%m%d}"))
        assert not is_valid_citizen_id(citizen_id(f"{tomorrow:%Y%m%d}"))
        assert not is_valid_citizen_id(citizen_id(f"{today.year + 5}0101"))

    def test_unknown_address_code_is_accepted(self) -> None:
        """Address codes change yearly, so an unassigned one is not a reason to refuse."""
        assert is_valid_citizen_id(citizen_id("19910101", address="999999"))

    @pytest.mark.parametrize(
        "number",
        [
            "",
            VALID_CITIZEN_ID[:17],
            VALID_CITIZEN_ID + "1",
            "36042619910101007A",
            "3604261991O1010071",
        ],
    )
    def test_wrong_shape_is_invalid(self, number: str) -> None:
        """Anything but 17 digits and a digit-or-X check is refused."""
        assert not is_valid_citizen_id(number)

    def test_random_bodies_accept_only_the_computed_check(self) -> None:
        """For 200 random bodies with real birth dates, only the computed check passes."""
        rng = random.Random(11643)
        start = dt.date(1920, 1, 1)
        for _ in range(200):
            birth = start + dt.timedelta(days=rng.randrange(365 * 100))
            body = f"{rng.randrange(10**6):06d}{birth:%Y%m%d}{rng.randrange(1000):03d}"
            check = citizen_id_check_character(body)
            assert check == reference_citizen_check(body), body
            assert is_valid_citizen_id(body + check), body
            accepted = [
                ch for ch in "0123456789X" if ch != check and is_valid_citizen_id(body + ch)
            ]
            assert accepted == [], body


class TestCertificateIdentifier:
    def test_published_example_is_valid(self) -> None:
        """The DOMAIN.md example identifier checks, with check character F."""
        assert is_valid_certificate_identifier(VALID_CERTIFICATE_ID)
        body = "".join(VALID_CERTIFICATE_ID.split(".")[5:9])
        assert certificate_identifier_check_character(body) == "F"

    def test_changed_serial_is_invalid(self) -> None:
        """Changing one serial digit breaks the check."""
        changed = VALID_CERTIFICATE_ID.replace(".2430599.", ".2430598.")
        assert not is_valid_certificate_identifier(changed)

    def test_every_single_substitution_is_detected(self) -> None:
        """MOD 37,36 catches any one changed character anywhere in the body."""
        parts = VALID_CERTIFICATE_ID.split(".")
        missed = []
        for index in range(5, 9):
            for position, original in enumerate(parts[index]):
                replacement = MOD37_ALPHABET[(MOD37_ALPHABET.index(original) + 7) % 36]
                changed = list(parts)
                changed[index] = (
                    parts[index][:position] + replacement + parts[index][position + 1 :]
                )
                if is_valid_certificate_identifier(".".join(changed)):
                    missed.append((index, position))
        assert missed == []

    def test_wrong_check_character_is_invalid(self) -> None:
        """Every check character but F is refused."""
        prefix = VALID_CERTIFICATE_ID[:-1]
        assert [ch for ch in MOD37_ALPHABET if is_valid_certificate_identifier(prefix + ch)] == [
            "F"
        ]

    @pytest.mark.parametrize(
        "identifier",
        [
            "",
            VALID_CERTIFICATE_ID.replace("1.2.156.3005.2.", "1.2.156.3005.3.", 1),
            VALID_CERTIFICATE_ID.rsplit(".", 1)[0],
            VALID_CERTIFICATE_ID + ".F",
            VALID_CERTIFICATE_ID.replace(".2430599.", ".243-599."),
            VALID_CERTIFICATE_ID.replace(".2430599.", ".２430599."),
        ],
    )
    def test_malformed_identifier_is_invalid(self, identifier: str) -> None:
        """Wrong prefix, part count or non-ASCII-alphanumeric body is refused, not raised."""
        assert not is_valid_certificate_identifier(identifier)


class TestResourceCode:
    @pytest.mark.parametrize("code", ["105001/00001", "a-b_c/D9", "1", "x" * 64])
    def test_valid_codes(self, code: str) -> None:
        """Letters, digits, '-', '_' and '/' up to 64 characters are accepted."""
        assert is_valid_resource_code(code)

    @pytest.mark.parametrize(
        "code", ["", "x" * 65, "105001 00001", "105001.00001", "电子证照/1", "105001/00001\n"]
    )
    def test_invalid_codes(self, code: str) -> None:
        """Empty, too long, or any other character is refused."""
        assert not is_valid_resource_code(code)


class TestHolderId:
    def test_type_constants(self) -> None:
        """111 is a citizen id and 001 a USCC (GB/T 36903 holder id types)."""
        assert (HOLDER_ID_TYPE_CITIZEN_ID, HOLDER_ID_TYPE_USCC) == ("111", "001")

    @pytest.mark.parametrize(
        ("id_type", "holder_id", "expected"),
        [
            ("111", VALID_CITIZEN_ID, True),
            ("111", CITIZEN_ID_ENDING_X, True),
            ("111", "360426199101010072", False),
            ("111", VALID_USCC, False),
            ("001", VALID_USCC, True),
            ("001", VALID_CITIZEN_ID, False),
            ("001", "91110108551385082A", False),
            ("999", VALID_CITIZEN_ID, False),
            ("", VALID_USCC, False),
            ("11", VALID_CITIZEN_ID, False),
        ],
    )
    def test_holder_id_is_checked_by_its_type(
        self, id_type: str, holder_id: str, expected: bool
    ) -> None:
        """The id type picks the rule; an unknown type is never valid."""
        assert is_valid_holder_id(id_type, holder_id) is expected
