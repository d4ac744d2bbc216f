"""One exchange call: what its audit record says, and the checks on its request.

Internal to ExchangeService (`_exchange`), kept apart so the servicer module holds
only the request path.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from govshare.api.exchange.v1 import exchange_pb2
from govshare.directory import Catalogue, is_valid_holder_id

from ._clock import utc_text
from ._errors import GovshareError, Reason

if TYPE_CHECKING:
    from ._policy import Decision

# Helpers of the exchange servicer only; nothing here is part of the package surface.
__all__: list[str] = []

_log = logging.getLogger("govshare.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_EVIDENCE_RECORD_TYPE = "govshare.evidence.v1"
# Built once: json.dumps with options constructs a new encoder on every call.
_LINE_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)


@dataclass(slots=True)
class CallRecord:
    """What the audit record of one call says; filled in as the call proceeds."""

    method: str
    request_id: str
    matter_code: str
    purpose: str
    started: float = field(default_factory=time.perf_counter)
    consumer: str = ""
    provider: str = ""
    resource_code: str = ""
    certificate_type: str = ""
    holder_id_hash: str = ""
    holder_id_masked: str = ""
    fields_returned: Sequence[str] = ()
    grant_ids: Sequence[str] = ()
    evidence_digest: str = ""
    logged: bool = False

    def record(self, outcome: str, reason: str, now: _dt.datetime) -> dict[str, Any]:
        return {
            "time": utc_text(now),
            "method": self.method,
            "request_id": self.request_id,
            "consumer": self.consumer,
            "provider": self.provider,
            "resource_code": self.resource_code,
            "certificate_type": self.certificate_type,
            "matter_code": clipped(self.matter_code, MAX_CODE),
            "purpose": clipped(self.purpose, MAX_PURPOSE),
            "outcome": outcome,
            "reason": reason,
            "fields_returned": list(self.fields_returned),
            "grant_ids": list(self.grant_ids),
            "holder_id_hash": self.holder_id_hash,
            "holder_id_masked": self.holder_id_masked,
            "evidence_digest": self.evidence_digest,
            "latency_us": int((time.perf_counter() - self.started) * 1e6),
        }


def applicant_for(
    applicants: Sequence[exchange_pb2.Holder], id_type: str | None
) -> exchange_pb2.Holder:
    """The first applicant of the holder id type a certificate needs (any, if none)."""
    if id_type is None:
        return applicants[0]
    for applicant in applicants:
        if applicant.id_type == id_type:
            return applicant
    raise GovshareError(
        Reason.HOLDER_ID_INVALID,
        f"no applicant has holder id type {id_type} for this material",
        expected_id_type=id_type,
    )


def holder_id_type_of(catalogue: Catalogue, resource_code: str) -> str | None:
    """The holder id type of the certificate types a resource backs, if they agree."""
    kinds = {
        c.holder_id_type
        for c in catalogue.certificate_types.values()
        if c.resource == resource_code
    }
    return kinds.pop() if len(kinds) == 1 else None


def request_id_of(given: str) -> tuple[str, GovshareError | None]:
    """The id to log the call under, and the error if the caller's id is unusable.

    It travels to registries as an HTTP header and into logs, so only a short,
    plain alphabet is accepted; a bad one is logged under a fresh id.
    """
    if not given:
        return new_request_id(), None
    if _REQUEST_ID.fullmatch(given) is None:
        return new_request_id(), GovshareError(
            Reason.REQUEST_INVALID,
            "request_id must be 1-128 characters of A-Z a-z 0-9 . _ : / -",
            field="request_id",
        )
    return given, None


# Codes (certificate type, resource, matter) are a few dozen characters at most;
# anything longer is refused before it reaches the catalogue or the audit log.
MAX_CODE: Final = 64
MAX_PURPOSE: Final = 200  # DOMAIN.md: 事由 ≤ 200 characters
MAX_HOLDER_ID: Final = 32
MAX_FIELDS: Final = 256
MAX_APPLICANTS: Final = 32


def require(value: str, name: str, max_length: int = MAX_CODE) -> None:
    if not value:
        raise GovshareError(Reason.REQUEST_INVALID, f"{name} is required", field=name)
    if len(value) > max_length:
        raise GovshareError(
            Reason.REQUEST_INVALID,
            f"{name} is longer than {max_length} characters",
            field=name,
        )


def require_at_most(count: int, name: str, limit: int) -> None:
    if count > limit:
        raise GovshareError(
            Reason.REQUEST_INVALID, f"{name} has more than {limit} entries", field=name
        )


def clipped(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters: what the audit log keeps of an over-long input
    (the call is refused, but the attempt is still recorded, at a bounded size)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_holder_length(holder: exchange_pb2.Holder) -> None:
    """Refuse an id too long to be any holder id before it is hashed or masked."""
    if len(holder.id) > MAX_HOLDER_ID:
        raise GovshareError(
            Reason.HOLDER_ID_INVALID,
            f"holder id is longer than {MAX_HOLDER_ID} characters",
            id_type=clipped(holder.id_type, MAX_CODE),
        )


def check_holder(
    holder: exchange_pb2.Holder,
    expected_id_type: str | None,
    exceptions: Mapping[str, AbstractSet[str]],
) -> None:
    """Refuse a holder id of the wrong type or failing its check rule, unless it is
    in `exceptions` (id type -> ids really issued with a bad check character)."""
    if expected_id_type is not None and holder.id_type != expected_id_type:
        raise GovshareError(
            Reason.HOLDER_ID_INVALID,
            f"holder id type must be {expected_id_type} for this certificate type",
            expected_id_type=expected_id_type,
        )
    if not is_valid_holder_id(holder.id_type, holder.id):
        # Consulted only once the check has failed, so valid ids pay nothing for it.
        if holder.id in exceptions.get(holder.id_type, ()):
            return
        raise GovshareError(
            Reason.HOLDER_ID_INVALID,
            "holder id fails its check rule (GB 11643 for 111, GB 32100 for 001)",
            id_type=clipped(holder.id_type, MAX_CODE),
        )


def evidence_record(
    access: CallRecord,
    decision: Decision,
    holder: exchange_pb2.Holder,
    fields: Mapping[str, str],
    now: _dt.datetime,
) -> dict[str, Any]:
    # The consumer already knows the holder id it asked about; the evidence
    # must name it to be usable, so only logs and the audit trail mask it.
    return {
        "type": _EVIDENCE_RECORD_TYPE,
        "request_id": access.request_id,
        "issued_at": utc_text(now, "seconds"),
        "consumer": access.consumer,
        "provider": access.provider,
        "resource_code": decision.resource.code,
        "certificate_type": access.certificate_type,
        "matter_code": access.matter_code,
        "purpose": access.purpose,
        "holder": {"id_type": holder.id_type, "id": holder.id},
        "fields": dict(fields),
    }


def log_access_line(access: CallRecord, outcome: str, reason: str, index: int) -> None:
    if _log.isEnabledFor(logging.INFO):
        _log.info(
            _LINE_ENCODER.encode(
                {
                    "method": access.method,
                    "request_id": access.request_id,
                    "consumer": access.consumer,
                    "resource": access.resource_code,
                    "matter": clipped(access.matter_code, MAX_CODE),
                    "holder": access.holder_id_masked,
                    "outcome": outcome,
                    "reason": reason,
                    "log_index": index,
                    "latency_ms": round((time.perf_counter() - access.started) * 1e3, 3),
                }
            )
        )


# The exchange methods that write their own access line for every decision.
_DECIDING_METHODS: Final = frozenset(
    f"/govshare.exchange.v1.ExchangeService/{name}"
    for name in ("GetCertificate", "QueryRecord", "ResolveMaterials")
)


def log_refused_before_handler(method: str, consumer: str, reason: str) -> None:
    """The access line of an exchange decision made before its handler ran: a request
    that could not be decoded or a revoked certificate (`method` is grpc's full path).
    Directory and audit calls get theirs from the AccessLines interceptor."""
    if method in _DECIDING_METHODS and _log.isEnabledFor(logging.INFO):
        _log.info(
            _LINE_ENCODER.encode(
                {
                    "method": method.rsplit("/", 1)[-1],
                    "consumer": consumer,
                    "outcome": "DENIED",
                    "reason": reason,
                }
            )
        )


# Ids the gateway makes up for calls that bring none: a random per-process prefix
# and a counter. uuid4 read the kernel's random source on every call (~2 % of the
# loop's time under load); this stays unique across processes and restarts.
_ID_PREFIX: Final = secrets.token_hex(8)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_id_counter)}"
