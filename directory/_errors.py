"""Directory errors, independent of any RPC framework.

The gRPC layer maps them one to one: NotFound → NOT_FOUND, AlreadyExists →
ALREADY_EXISTS, EtagMismatch → ABORTED, FailedPrecondition and its subclass
InvalidTransition → FAILED_PRECONDITION, InvalidArgument → INVALID_ARGUMENT
(with `violations` as BadRequest field violations). `reason` is a stable
UPPER_SNAKE token for ErrorInfo.reason; `metadata` holds safe identifiers only
(resource codes, USCCs, application ids) — never a citizen id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "AlreadyExists",
    "DirectoryError",
    "EtagMismatch",
    "FailedPrecondition",
    "ImportRejected",
    "InvalidArgument",
    "InvalidTransition",
    "NotFound",
]


class DirectoryError(Exception):
    """Base class: a directory operation was refused."""

    default_reason = "DIRECTORY_ERROR"

    def __init__(
        self, message: str, *, reason: str = "", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class NotFound(DirectoryError):
    """The named item does not exist (soft-deleted items still exist)."""

    default_reason = "NOT_FOUND"


class AlreadyExists(DirectoryError):
    """An item with that natural key exists already, possibly soft-deleted."""

    default_reason = "ALREADY_EXISTS"


class EtagMismatch(DirectoryError):
    """The caller's etag is stale: someone changed the item since it was read."""

    default_reason = "ETAG_MISMATCH"


class FailedPrecondition(DirectoryError):
    """The request is well formed but the directory is not in a state that allows it."""

    default_reason = "FAILED_PRECONDITION"


class InvalidTransition(FailedPrecondition):
    """A lifecycle or workflow transition that the state machine does not allow."""

    default_reason = "INVALID_TRANSITION"


class InvalidArgument(DirectoryError):
    """The request itself is wrong; `violations` lists every (field, description)."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[tuple[str, str]],
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.violations: list[tuple[str, str]] = list(violations)
        message = "; ".join(f"{f}: {d}" if f else d for f, d in self.violations)
        super().__init__(message or "invalid argument", reason=reason, metadata=metadata)


class ImportRejected(InvalidArgument):
    """An import file has bad rows and nothing was imported.

    `problems` reads "FILE:LINE: what is wrong", one per bad row (or field),
    ordered by line; `lines` holds the line numbers alone.
    """

    default_reason = "IMPORT_REJECTED"

    def __init__(self, problems: Iterable[tuple[int, str]], *, source: str) -> None:
        ordered = sorted(problems, key=lambda problem: problem[0])
        self.source = source
        self.lines = tuple(line for line, _ in ordered)
        self.problems = tuple(f"{source}:{line}: {text}" for line, text in ordered)
        super().__init__([(f"{source}:{line}", text) for line, text in ordered])
