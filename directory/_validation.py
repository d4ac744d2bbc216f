"""Check rules for the identifiers the directory and the exchange accept.

- Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters,
  weighted sum mod 31 over the 31-character alphabet.
- Citizen id number (公民身份号码, GB 11643-1999): ISO 7064 MOD 11-2 check and a
  real birth date. Address codes change every year, so they are not checked.
- Certificate identifier (证照标识, GB/T 36903 as issued): ISO 7064 MOD 37,36
  check. Issuers are not consistent, so a bad check is a warning, not an error.
"""

from __future__ import annotations

import datetime as _dt
import operator
import re

__all__ = [
    "HOLDER_ID_TYPE_CITIZEN_ID",
    "HOLDER_ID_TYPE_USCC",
    "certificate_identifier_check_character",
    "citizen_id_check_character",
    "is_valid_certificate_identifier",
    "is_valid_citizen_id",
    "is_valid_holder_id",
    "is_valid_resource_code",
    "is_valid_uscc",
    "uscc_check_character",
]

HOLDER_ID_TYPE_CITIZEN_ID = "111"
HOLDER_ID_TYPE_USCC = "001"

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")

_CITIZEN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CITIZEN_CHECK = "10X98765432"
_CITIZEN_SHAPE = re.compile(r"[0-9]{17}[0-9X]")

_MOD37_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RESOURCE_CODE_SHAPE = re.compile(r"[A-Za-z0-9\-_/]{1,64}")


def uscc_check_character(first17: str) -> str:
    """Return the GB 32100 check character for the first 17 characters."""
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """Whether `code` is an 18-character USCC with a correct check character."""
    if _USCC_SHAPE.fullmatch(code) is None:
        return False
    return uscc_check_character(code[:17]) == code[17]


def citizen_id_check_character(first17: str) -> str:
    """Return the GB 11643 (ISO 7064 MOD 11-2) check character."""
    if len(first17) != len(_CITIZEN_WEIGHTS):
        raise ValueError("a citizen id check needs exactly 17 characters")
    # map over the pairs rather than a generator: it is on every exchange call.
    total = sum(map(operator.mul, map(int, first17), _CITIZEN_WEIGHTS))
    return _CITIZEN_CHECK[total % 11]


def is_valid_citizen_id(number: str) -> bool:
    """Whether `number` is an 18-digit citizen id with a real birth date and check."""
    if _CITIZEN_SHAPE.fullmatch(number) is None:
        return False
    try:
        birth = _dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if birth.year < 1800 or birth > _dt.date.today():
        return False
    return citizen_id_check_character(number[:17]) == number[17]


def is_valid_holder_id(id_type: str, holder_id: str) -> bool:
    """Whether `holder_id` is valid for its holder id type (111 or 001)."""
    if id_type == HOLDER_ID_TYPE_CITIZEN_ID:
        return is_valid_citizen_id(holder_id)
    if id_type == HOLDER_ID_TYPE_USCC:
        return is_valid_uscc(holder_id)
    return False


def certificate_identifier_check_character(body: str) -> str:
    """Return the ISO 7064 MOD 37,36 check character over `body` (no dots)."""
    modulus = 36
    product = modulus
    for ch in body.upper():
        total = (product + _MOD37_ALPHABET.index(ch)) % modulus
        product = ((total or modulus) * 2) % (modulus + 1)
    return _MOD37_ALPHABET[(modulus + 1 - product) % modulus]


def is_valid_certificate_identifier(identifier: str) -> bool:
    """Whether a `1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>` id checks."""
    parts = identifier.split(".")
    if len(parts) != 10 or parts[:5] != ["1", "2", "156", "3005", "2"]:
        return False
    body = "".join(parts[5:9])
    if not body.isalnum() or not body.isascii():
        return False
    return certificate_identifier_check_character(body) == parts[9].upper()


def is_valid_resource_code(code: str) -> bool:
    """Whether `code` fits the resource-code alphabet `[A-Za-z0-9-_/]{1,64}`."""
    return _RESOURCE_CODE_SHAPE.fullmatch(code) is not None
