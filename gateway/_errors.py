"""Every ErrorInfo reason the gateway sends, and its gRPC status code.

Errors reach callers as `google.rpc.Status` with one `ErrorInfo`
(domain "govshare") in the `grpc-status-details-bin` trailer::

    reason                 gRPC code            when
    ---------------------  -------------------  ----------------------------------------
    CALLER_UNKNOWN         PERMISSION_DENIED    certificate names no registered principal
    CALLER_SUSPENDED       PERMISSION_DENIED    the calling department is suspended
    ROLE_REQUIRED          PERMISSION_DENIED    the caller's role may not call the method
    RESOURCE_NOT_FOUND     NOT_FOUND            no such resource or certificate type
    RESOURCE_NOT_SHARED    PERMISSION_DENIED    NOT_SHARED, or not PUBLISHED
    GRANT_REQUIRED         PERMISSION_DENIED    CONDITIONAL and no grant for the caller
    GRANT_EXPIRED          PERMISSION_DENIED    the caller's grants are outside validity
    FIELD_NOT_GRANTED      PERMISSION_DENIED    a requested data item is not granted
    FIELD_UNKNOWN          INVALID_ARGUMENT     a requested data item is not in the resource
    MATTER_NOT_COVERED     PERMISSION_DENIED    no such matter, or no valid grant covers it
    CONSENT_REQUIRED       PERMISSION_DENIED    holder consent needed and missing (*)
    CONSENT_INVALID        PERMISSION_DENIED    consent token bad, expired or for another use (*)
    QUOTA_EXCEEDED         RESOURCE_EXHAUSTED   the caller's quota is used up (*)
    HOLDER_ID_INVALID      INVALID_ARGUMENT     holder id fails its check rule or type
    REQUEST_INVALID        INVALID_ARGUMENT     a required field is missing or malformed
    HOLDER_NOT_FOUND       NOT_FOUND            the registry holds no record
    PROVIDER_UNAVAILABLE   UNAVAILABLE          the registry refused, failed or is unknown
    PROVIDER_TIMEOUT       DEADLINE_EXCEEDED    the registry did not answer in time
    AUDIT_UNAVAILABLE      UNAVAILABLE          the access could not be logged durably
    INTERNAL_ERROR         INTERNAL             a defect; the message names the request id
    CALL_CANCELLED         CANCELLED            the caller went away mid-call (logged only)

(*) Reserved: DESIGN.md names them, but consent tokens and quotas are not built
yet, so nothing raises them (docs/architecture.md lists what is not built).

DirectoryService also passes on the directory room's own, more specific reasons
(directory/_errors.py): ETAG_MISMATCH (ABORTED), ALREADY_EXISTS,
INVALID_TRANSITION / RESOURCE_STATE_TRANSITION / APPLICATION_STATE / DATA_ITEMS_IN_USE
(FAILED_PRECONDITION), DIRECTORY_UNAVAILABLE (UNAVAILABLE: the directory's database
could not be reached or stayed locked; a retry with the same request_id is safe),
PAGE_TOKEN_INVALID / FILTER_INVALID / UPDATE_MASK_INVALID / REQUEST_ID_REUSED
(INVALID_ARGUMENT, with a google.rpc.BadRequest naming the fields).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Final

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "ERROR_DOMAIN",
    "GovshareError",
    "Reason",
    "error_info_of",
    "grpc_code_of",
    "name_list",
    "rich_status",
    "to_grpc_status",
]

ERROR_DOMAIN = "govshare"


class Reason(StrEnum):
    """ErrorInfo.reason values; see the module docstring for codes."""

    CALLER_UNKNOWN = "CALLER_UNKNOWN"
    CALLER_SUSPENDED = "CALLER_SUSPENDED"
    ROLE_REQUIRED = "ROLE_REQUIRED"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    RESOURCE_NOT_SHARED = "RESOURCE_NOT_SHARED"
    GRANT_REQUIRED = "GRANT_REQUIRED"
    GRANT_EXPIRED = "GRANT_EXPIRED"
    FIELD_NOT_GRANTED = "FIELD_NOT_GRANTED"
    FIELD_UNKNOWN = "FIELD_UNKNOWN"
    MATTER_NOT_COVERED = "MATTER_NOT_COVERED"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    CONSENT_INVALID = "CONSENT_INVALID"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    HOLDER_ID_INVALID = "HOLDER_ID_INVALID"
    REQUEST_INVALID = "REQUEST_INVALID"
    HOLDER_NOT_FOUND = "HOLDER_NOT_FOUND"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CALL_CANCELLED = "CALL_CANCELLED"


_CODES: dict[Reason, grpc.StatusCode] = {
    Reason.CALLER_UNKNOWN: grpc.StatusCode.PERMISSION_DENIED,
    Reason.CALLER_SUSPENDED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.ROLE_REQUIRED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.RESOURCE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.RESOURCE_NOT_SHARED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.GRANT_REQUIRED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.GRANT_EXPIRED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.FIELD_NOT_GRANTED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.FIELD_UNKNOWN: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.MATTER_NOT_COVERED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.CONSENT_REQUIRED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.CONSENT_INVALID: grpc.StatusCode.PERMISSION_DENIED,
    Reason.QUOTA_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.HOLDER_ID_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.REQUEST_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.HOLDER_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.PROVIDER_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.PROVIDER_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Reason.AUDIT_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.INTERNAL_ERROR: grpc.StatusCode.INTERNAL,
    Reason.CALL_CANCELLED: grpc.StatusCode.CANCELLED,
}


def grpc_code_of(reason: Reason) -> grpc.StatusCode:
    return _CODES[reason]


class GovshareError(Exception):
    """A decision or failure to report to the caller; never carries a holder id."""

    def __init__(self, reason: Reason, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata: Mapping[str, str] = metadata


def to_grpc_status(error: GovshareError) -> grpc.Status:
    """The rich status (google.rpc.Status + ErrorInfo) for `error`."""
    return rich_status(_CODES[error.reason], error.reason.value, error.message, error.metadata)


def rich_status(
    code: grpc.StatusCode,
    reason: str,
    message: str,
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[tuple[str, str]] = (),
) -> grpc.Status:
    """A google.rpc.Status with one ErrorInfo and, for bad fields, a BadRequest.

    What a caller sent may be echoed back, and the whole status travels in the
    trailers, which a client refuses beyond 16 KiB (the caller would get
    RESOURCE_EXHAUSTED and no ErrorInfo). So echoes are bounded in UTF-8 bytes —
    the message (percent-encoded on the wire: up to 3 characters a byte) to
    `_MAX_MESSAGE_BYTES`, each metadata value to `_MAX_ECHO_BYTES`, each violation's
    texts likewise — and violations beyond `_MAX_VIOLATION_BYTES` in all are
    summarised in one last entry. Worst case about 11 KiB.
    """
    info = error_details_pb2.ErrorInfo(
        reason=reason,
        domain=ERROR_DOMAIN,
        metadata={k: _bounded(v, _MAX_ECHO_BYTES) for k, v in (metadata or {}).items()},
    )
    details = [any_pb2.Any()]
    details[0].Pack(info)
    if violations:
        details.append(any_pb2.Any())
        details[1].Pack(_bad_request(violations))
    status = status_pb2.Status(
        code=code.value[0], message=_bounded(message, _MAX_MESSAGE_BYTES), details=details
    )
    return rpc_status.to_status(status)


_MAX_ECHO_BYTES: Final = 512
_MAX_MESSAGE_BYTES: Final = 1024
_MAX_VIOLATION_BYTES: Final = 4096
_MAX_VIOLATION_TEXT_BYTES: Final = 256


def _bad_request(violations: Sequence[tuple[str, str]]) -> error_details_pb2.BadRequest:
    bad_request = error_details_pb2.BadRequest()
    for position, (field_path, description) in enumerate(violations):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_bounded(field_path, _MAX_VIOLATION_TEXT_BYTES),
            description=_bounded(description, _MAX_VIOLATION_TEXT_BYTES),
        )
        if bad_request.ByteSize() + violation.ByteSize() > _MAX_VIOLATION_BYTES:
            bad_request.field_violations.add(
                field="", description=f"(+{len(violations) - position} more violations)"
            )
            break
        bad_request.field_violations.append(violation)
    return bad_request


def name_list(names: Sequence[str]) -> str:
    """Comma-joined `names` for ErrorInfo metadata, cut between whole names (with a
    count of the rest) so that it fits the echo bound and no name arrives mangled."""
    joined = ",".join(names)
    if _utf8_size(joined) <= _MAX_ECHO_BYTES:
        return joined
    kept: list[str] = []
    size = len(",(+99999 more)")
    for name in names:
        size += _utf8_size(name) + 1
        if size > _MAX_ECHO_BYTES:
            break
        kept.append(name)
    return ",".join([*kept, f"(+{len(names) - len(kept)} more)"])


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _bounded(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marked with "…" when cut."""
    if len(text) * 4 <= limit or _utf8_size(text) <= limit:
        return text
    # 3 bytes for the ellipsis; "ignore" drops a character split by the cut.
    head = text.encode("utf-8", "surrogatepass")[: limit - 3].decode("utf-8", "ignore")
    return head + "…"


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a failed call carried in its google.rpc.Status, if any (client side)."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None
