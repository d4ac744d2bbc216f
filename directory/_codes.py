"""Resource codes: 分类码 + "/" + 顺序码 (政务信息资源目录编制指南).

分类码 = 类 (1 digit: 1 基础, 2 主题, 3 部门) + 项 (2 digits) + 目 (3 digits) +
细目 (optional, any number of digits). 顺序码 is five digits here, unique within
its 分类码, so `105001/00002` follows `105001/00001`. Deployed systems allow
`[A-Za-z0-9-_/]{1,64}` for the whole code, which bounds the 细目.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._errors import FailedPrecondition, InvalidArgument

__all__ = [
    "CLASSIFICATION_LABELS",
    "classification_label",
    "is_valid_classification_code",
    "next_resource_code",
]

CLASSIFICATION_LABELS = {"1": "基础", "2": "主题", "3": "部门"}

_SEQUENCE_DIGITS = 5
# 64 characters in all: the classification, "/" and five sequence digits.
_CLASSIFICATION = re.compile(r"[123][0-9]{2}[0-9]{3}[0-9]{0,52}")


def is_valid_classification_code(code: str) -> bool:
    """Whether `code` is 类 (1-3) + 项 (2 digits) + 目 (3 digits) + optional 细目 digits."""
    return _CLASSIFICATION.fullmatch(code) is not None


def classification_label(classification_code: str) -> str:
    """基础 / 主题 / 部门 for a classification code (or "" when it is not one)."""
    if not is_valid_classification_code(classification_code):
        return ""
    return CLASSIFICATION_LABELS[classification_code[0]]


def next_resource_code(classification_code: str, existing: Iterable[str]) -> str:
    """The next free `分类码/顺序码` after the highest sequence already used under the prefix.

    Gaps left by deleted resources are not reused: a code, once published,
    keeps naming the same resource in every consumer's records.
    """
    if not is_valid_classification_code(classification_code):
        raise InvalidArgument(
            [("classification_code", "must be 类(1-3) + 项(2 digits) + 目(3 digits) + 细目 digits")]
        )
    prefix = classification_code + "/"
    highest = 0
    for code in existing:
        sequence = code[len(prefix) :] if code.startswith(prefix) else ""
        if len(sequence) == _SEQUENCE_DIGITS and sequence.isascii() and sequence.isdigit():
            highest = max(highest, int(sequence))
    if highest >= 10**_SEQUENCE_DIGITS - 1:
        raise FailedPrecondition(
            f"no sequence number left under {classification_code}",
            reason="RESOURCE_CODES_EXHAUSTED",
            metadata={"classification_code": classification_code},
        )
    return f"{prefix}{highest + 1:0{_SEQUENCE_DIGITS}d}"
