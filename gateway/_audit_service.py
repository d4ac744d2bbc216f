"""AuditService: search the access log, prove entries and append-only growth,
export for offline verification, and usage statistics.

Only auditors may call it; administrators may read usage statistics.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, NoReturn, Protocol, TypeAlias, TypeVar, cast

import grpc
from google.protobuf import timestamp_pb2
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.directory import is_valid_holder_id

from ._auditlog import AccessLogError, SignedCheckpoint
from ._auditquery import AccessQuery, AuditReader, StoredRecord
from ._clock import utc_text
from ._decisions import DecisionRecorder
from ._errors import GovshareError, Reason, to_grpc_status
from ._holder import HolderIdProtector, mask_holder_id
from ._identity import Principal, Role, principal_from_auth_context
from ._merkle import leaf_hash, verify_consistency, verify_inclusion

__all__ = ["AuditServicer", "ProofSource"]

_log = logging.getLogger("govshare.gateway")

_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_EXPORT_CHUNK = 500
_OUTCOMES = {
    audit_pb2.OUTCOME_ALLOWED: "ALLOWED",
    audit_pb2.OUTCOME_DENIED: "DENIED",
}


class ProofSource(Protocol):
    """What the audit service needs from the transparency log."""

    @property
    def verifier_key(self) -> str: ...

    async def checkpoint(self, *, refresh: bool) -> SignedCheckpoint: ...

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...

    async def root(self, size: int) -> bytes: ...


Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _log_unavailable(error: AccessLogError) -> GovshareError:
    """A log that failed (or closed) answers AUDIT_UNAVAILABLE, as the exchange does."""
    _log.error("access log unavailable: %s", error)
    return GovshareError(Reason.AUDIT_UNAVAILABLE, "the access log is unavailable")


def _refuse(reason: Reason, message: str) -> NoReturn:
    """Refuse the call: `_logged` writes the denial to the audit log and answers."""
    raise GovshareError(reason, message)


_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])
_Stream = TypeVar("_Stream", bound=Callable[..., AsyncIterator[Any]])


def _logged(method: _Method) -> _Method:
    """Every refusal of `method`, whatever its reason, reaches the audit log (DESIGN:
    every decision, allowed or denied, is written to the log) before the caller hears it."""

    @functools.wraps(method)
    async def serve(self: AuditServicer, request: Any, context: Context) -> Any:
        try:
            return await method(self, request, context)
        except GovshareError as error:
            await self._refused(method.__name__, context, error)
        except AccessLogError as error:
            await self._refused(method.__name__, context, _log_unavailable(error))

    return cast(_Method, serve)


def _logged_stream(method: _Stream) -> _Stream:
    """`_logged` for a server-streaming method (still an async generator for grpc)."""

    @functools.wraps(method)
    async def serve(self: AuditServicer, request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except GovshareError as error:
            await self._refused(method.__name__, context, error)
        except AccessLogError as error:
            await self._refused(method.__name__, context, _log_unavailable(error))

    return cast(_Stream, serve)


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """The auditor's window on the access log."""

    def __init__(
        self,
        *,
        decisions: DecisionRecorder,
        reader: AuditReader,
        proofs: ProofSource,
        holder_ids: HolderIdProtector,
        trust_domain: str,
        holder_id_exceptions: Mapping[str, AbstractSet[str]] | None = None,
    ) -> None:
        # The exchange admits these ids despite a failed check: auditors must be able
        # to search the log for them.
        self._holder_id_exceptions = holder_id_exceptions or {}
        self._decisions = decisions
        self._reader = reader
        self._proofs = proofs
        self._holder_ids = holder_ids
        self._trust_domain = trust_domain

    @_logged
    async def ListAccessRecords(
        self,
        request: audit_pb2.ListAccessRecordsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> audit_pb2.ListAccessRecordsResponse:
        caller = await self._require(context, "ListAccessRecords", Role.AUDITOR)
        if request.holder_id and not request.holder_id_type:
            _refuse(Reason.REQUEST_INVALID, "holder_id needs holder_id_type")
        if (
            request.holder_id
            and not is_valid_holder_id(request.holder_id_type, request.holder_id)
            and request.holder_id not in self._holder_id_exceptions.get(request.holder_id_type, ())
        ):
            # Refused like the exchange refuses it, and logged as every refusal is.
            error = GovshareError(
                Reason.HOLDER_ID_INVALID,
                "holder id fails its check rule (GB 11643 for 111, GB 32100 for 001)",
                id_type=request.holder_id_type,
            )
            raise error
        if request.outcome and request.outcome not in _OUTCOMES:
            # An unknown value (a newer client's) must not quietly mean "any outcome".
            _refuse(Reason.REQUEST_INVALID, f"outcome {request.outcome} is unknown")
        start_time, end_time = await _time_range(context, request)
        query = AccessQuery(
            consumer=request.consumer,
            provider=request.provider,
            resource_code=request.resource_code,
            holder_id_hash=(
                self._holder_ids.hash(request.holder_id_type, request.holder_id)
                if request.holder_id
                else ""
            ),
            matter_code=request.matter_code,
            outcome=_OUTCOMES.get(request.outcome, ""),
            start_time=start_time,
            end_time=end_time,
            include_directory_events=request.include_directory_events,
        )
        if request.page_size < 0:
            _refuse(Reason.REQUEST_INVALID, "page_size must not be negative")
        size = min(request.page_size or _DEFAULT_PAGE, _MAX_PAGE)
        after, before = await _decode_token(context, request.page_token, query)
        if not request.page_token:
            # Pages show the log as it was at the first page: a holder search appends
            # its own lookup record, which would otherwise page on for ever.
            before = await self._reader.size()
        try:
            rows = await self._reader.search(query, after, size + 1, before_index=before)
            records = [_record(row) for row in rows[:size]]
        except LookupError as exc:
            _damaged(exc)
        if request.holder_id:
            # Looking a person up in the log is itself an access to their data: no
            # answer leaves without its record.
            try:
                await self._decisions.record_or_fail(
                    "AuditService.ListAccessRecords",
                    caller,
                    "ALLOWED",
                    holder_id_hash=query.holder_id_hash,
                    holder_id_masked=mask_holder_id(request.holder_id),
                )
            except GovshareError as error:
                raise error
        token = _encode_token(rows[size - 1].index, before, query) if len(rows) > size else ""
        return audit_pb2.ListAccessRecordsResponse(access_records=records, next_page_token=token)

    @_logged
    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> audit_pb2.Checkpoint:
        await self._require(context, "GetCheckpoint", Role.AUDITOR)
        checkpoint = await self._proofs.checkpoint(refresh=request.refresh)
        return audit_pb2.Checkpoint(
            signed_note=checkpoint.note,
            origin=checkpoint.origin,
            tree_size=checkpoint.size,
            root_hash=checkpoint.root,
            verifier_key=self._proofs.verifier_key,
        )

    @_logged
    async def GetInclusionProof(
        self,
        request: audit_pb2.GetInclusionProofRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> audit_pb2.InclusionProof:
        await self._require(context, "GetInclusionProof", Role.AUDITOR)
        size = await self._tree_size(context, request.tree_size)
        if request.WhichOneof("entry") == "leaf_hash":
            found = await self._reader.index_of_leaf_hash(request.leaf_hash)
            if found is None:
                _refuse(Reason.RESOURCE_NOT_FOUND, "no entry with that leaf hash")
            assert found is not None
            index = found
        else:
            index = request.index
        if not 0 <= index < size:
            _refuse(
                Reason.REQUEST_INVALID,
                f"index must be in [0, {size}) for tree size {size}",
            )
        try:
            entry = await self._reader.entry(index)
            if entry is None:
                raise LookupError(f"entry {index} is missing")
            hashes = await self._proofs.inclusion_proof(index, size)
            leaf = leaf_hash(entry.leaf)
            if not verify_inclusion(leaf, index, size, hashes, await self._signed_root(size)):
                raise LookupError(f"the stored tree does not prove entry {index}")
        except LookupError as exc:
            _damaged(exc)
        return audit_pb2.InclusionProof(
            index=index, tree_size=size, leaf_hash=leaf, hashes=hashes, leaf=entry.leaf
        )

    @_logged
    async def GetConsistencyProof(
        self,
        request: audit_pb2.GetConsistencyProofRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> audit_pb2.ConsistencyProof:
        await self._require(context, "GetConsistencyProof", Role.AUDITOR)
        new_size = await self._tree_size(context, request.new_size)
        if not 1 <= request.old_size <= new_size:
            _refuse(Reason.REQUEST_INVALID, f"old_size must be in [1, {new_size}]")
        try:
            hashes = await self._proofs.consistency_proof(request.old_size, new_size)
            old_root = await self._proofs.root(request.old_size)
            new_root = await self._signed_root(new_size)
            if not verify_consistency(request.old_size, new_size, old_root, new_root, hashes):
                raise LookupError(f"the stored tree is not consistent from {request.old_size}")
        except LookupError as exc:
            _damaged(exc)
        return audit_pb2.ConsistencyProof(
            old_size=request.old_size, new_size=new_size, hashes=hashes
        )

    @_logged_stream
    async def ExportAccessRecords(
        self,
        request: audit_pb2.ExportAccessRecordsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[audit_pb2.ExportAccessRecordsResponse]:
        await self._require(context, "ExportAccessRecords", Role.AUDITOR)
        end = await self._tree_size(context, request.end_index)
        if request.start_index < 0 or request.start_index > end:
            _refuse(Reason.REQUEST_INVALID, f"start_index must be in [0, {end}]")
        position = request.start_index
        while position < end:
            try:
                chunk = await self._reader.entries(position, min(end, position + _EXPORT_CHUNK))
            except LookupError as exc:
                _damaged(exc)
            yield audit_pb2.ExportAccessRecordsResponse(
                entries=[audit_pb2.LogEntry(index=e.index, leaf=e.leaf) for e in chunk]
            )
            if not chunk:
                break
            # From the last index sent, not by the count: a gap in the rows (a damaged
            # log) would otherwise send entries twice.
            position = chunk[-1].index + 1

    @_logged
    async def GetUsageStats(
        self, request: audit_pb2.GetUsageStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> audit_pb2.GetUsageStatsResponse:
        await self._require(context, "GetUsageStats", Role.AUDITOR, Role.ADMIN)
        start_time, end_time = await _time_range(context, request)
        stats = await self._reader.usage_stats(
            AccessQuery(start_time=start_time, end_time=end_time)
        )
        return audit_pb2.GetUsageStatsResponse(
            total=stats.total,
            by_consumer=_counts(stats.by_consumer),
            by_provider=_counts(stats.by_provider),
            by_resource=_counts(stats.by_resource),
            by_outcome=_counts(stats.by_outcome),
            by_day=_counts(stats.by_day),
            latency_p50_ms=stats.latency_p50_ms,
            latency_p90_ms=stats.latency_p90_ms,
            latency_p99_ms=stats.latency_p99_ms,
        )

    async def _require(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str, *roles: Role
    ) -> Principal:
        """The caller, if their role may call `method`."""
        caller = principal_from_auth_context(context.auth_context(), self._trust_domain)
        if caller.role not in roles:
            wanted = " or ".join(r.value for r in roles)
            raise GovshareError(Reason.ROLE_REQUIRED, f"this method needs the role {wanted}")
        return caller

    async def _refused(self, method: str, context: Context, error: GovshareError) -> None:
        """Log the refusal (under the caller, if the certificate names one) and answer it."""
        try:
            caller: Principal | None = principal_from_auth_context(
                context.auth_context(), self._trust_domain
            )
        except GovshareError:
            caller = None
        await self._decisions.record_denial(f"AuditService.{method}", caller, error)
        status = to_grpc_status(error)
        await context.abort(status.code, status.details, status.trailing_metadata)

    async def _signed_root(self, size: int) -> bytes:
        """Root of the stored tree at `size`, tied to the latest signed checkpoint.

        A proof that fails against what was signed would accuse the log of a fork it
        did not make: a node altered under the running gateway is damage to report.
        """
        checkpoint = await self._proofs.checkpoint(refresh=False)
        root = await self._proofs.root(size)
        if size == checkpoint.size:
            signed = root == checkpoint.root
        else:
            proof = await self._proofs.consistency_proof(size, checkpoint.size)
            signed = verify_consistency(size, checkpoint.size, root, checkpoint.root, proof)
        if not signed:
            raise LookupError(
                f"the stored tree at size {size} does not match the checkpoint signed at "
                f"{checkpoint.size}"
            )
        return root

    async def _tree_size(self, context: grpc.aio.ServicerContext[Any, Any], requested: int) -> int:
        checkpoint = await self._proofs.checkpoint(refresh=False)
        if requested == 0:
            return checkpoint.size
        if not 0 < requested <= checkpoint.size:
            _refuse(
                Reason.REQUEST_INVALID,
                f"tree size must be in [1, {checkpoint.size}], the latest checkpoint",
            )
        return requested


def _damaged(problem: LookupError) -> NoReturn:
    """A committed entry or tree node below a signed size is gone: the file was altered
    under the running gateway. Not the caller's fault, and not a proof to hand out."""
    _log.error("access log damaged: %s; run `govshare audit verify` on it", problem)
    _refuse(
        Reason.AUDIT_UNAVAILABLE,
        f"the access log is damaged ({problem}); operators must verify it",
    )


async def _time(context: grpc.aio.ServicerContext[Any, Any], request: Any, field: str) -> str:
    """An optional timestamp field as ISO 8601 UTC text; a bad one is REQUEST_INVALID."""
    if not request.HasField(field):
        return ""
    timestamp: timestamp_pb2.Timestamp = getattr(request, field)
    try:
        moment = timestamp.ToDatetime(tzinfo=_dt.UTC)
    except (ValueError, OverflowError):
        _refuse(Reason.REQUEST_INVALID, f"{field} is not a valid time")
    return utc_text(moment)


async def _time_range(context: grpc.aio.ServicerContext[Any, Any], request: Any) -> tuple[str, str]:
    """`start_time` and `end_time` as text; REQUEST_INVALID if the range runs backwards."""
    start = await _time(context, request, "start_time")
    end = await _time(context, request, "end_time")
    # One fixed-width format (utc_text), so the texts compare as the times do.
    if start and end and start > end:
        _refuse(Reason.REQUEST_INVALID, "start_time is after end_time")
    return start, end


def _token_key(query: AccessQuery) -> str:
    return hashlib.sha256(repr(query).encode()).hexdigest()[:16]


def _encode_token(index: int, before: int, query: AccessQuery) -> str:
    raw = json.dumps({"after": index, "before": before, "q": _token_key(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


# Our tokens are under 100 characters; anything far longer is not one of them.
_MAX_TOKEN = 512


async def _decode_token(
    context: grpc.aio.ServicerContext[Any, Any], token: str, query: AccessQuery
) -> tuple[int, int]:
    """(after, before) of the page a token asks for; (-1, 0) without a token."""
    if not token:
        return -1, 0
    try:
        if len(token) > _MAX_TOKEN:
            raise ValueError("token too long")
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if decoded["q"] != _token_key(query):
            raise ValueError("token for other filters")
        after, before = int(decoded["after"]), int(decoded["before"])
        if not -1 <= after < before < 2**62:
            raise ValueError("index out of range")
        return after, before
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        _refuse(Reason.REQUEST_INVALID, "page_token is not valid for these filters")


def _record(row: StoredRecord) -> audit_pb2.AccessRecord:
    try:
        return _record_of(row, json.loads(row.leaf))
    except (ValueError, TypeError, AttributeError, RecursionError):
        # Only a leaf altered under the gateway fails here: it wrote every one.
        raise LookupError(f"entry {row.index} is not an access record") from None


def _record_of(row: StoredRecord, data: dict[str, Any]) -> audit_pb2.AccessRecord:
    record = audit_pb2.AccessRecord(
        index=row.index,
        consumer=data.get("consumer", ""),
        provider=data.get("provider", ""),
        resource_code=data.get("resource_code", ""),
        matter_code=data.get("matter_code", ""),
        purpose=data.get("purpose", ""),
        outcome=audit_pb2.OUTCOME_ALLOWED
        if data.get("outcome") == "ALLOWED"
        else audit_pb2.OUTCOME_DENIED,
        reason=data.get("reason", ""),
        fields_returned=data.get("fields_returned", []),
        request_id=data.get("request_id", ""),
        latency_us=int(data.get("latency_us", 0)),
        holder_id_hash=data.get("holder_id_hash", ""),
        holder_id_masked=data.get("holder_id_masked", ""),
        evidence_digest=data.get("evidence_digest", ""),
        method=data.get("method", ""),
        leaf=row.leaf,
    )
    if data.get("time"):
        record.time.FromDatetime(_dt.datetime.fromisoformat(data["time"].replace("Z", "+00:00")))
    return record


def _counts(pairs: Sequence[tuple[str, int]]) -> list[audit_pb2.UsageCount]:
    return [audit_pb2.UsageCount(key=key, count=count) for key, count in pairs]
