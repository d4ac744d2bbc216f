"""ExchangeService: the request path, top to bottom.

identity → request checks → policy → adapter → evidence → audit log → reply.
Each step lives in its own module; this one only composes them, and makes
sure every decision, allowed or denied, is durably logged before the reply.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from govshare.adapters import (
    HolderNotFound,
    LookupRequest,
    ProviderError,
    ProviderTimeout,
)
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.directory import (
    CHINA_STANDARD_TIME,
    Catalogue,
    Material,
    MaterialSource,
    Resource,
)

from ._clock import utc_now
from ._errors import GovshareError, Reason, to_grpc_status
from ._evidence import EvidenceVerification, canonical_json, verify_evidence
from ._exchange_call import (
    MAX_APPLICANTS,
    MAX_FIELDS,
    MAX_PURPOSE,
    CallRecord,
    applicant_for,
    check_holder,
    check_holder_length,
    evidence_record,
    holder_id_type_of,
    log_access_line,
    request_id_of,
    require,
    require_at_most,
)
from ._holder import mask_holder_id
from ._identity import Principal, principal_from_auth_context
from ._policy import Decision, authorize_department, decide

if TYPE_CHECKING:
    from ._auditlog import AccessLog
    from ._evidence import EvidenceSigner
    from ._holder import HolderIdProtector
    from ._registry import AdapterRouter

__all__ = ["ExchangeServicer"]

_log = logging.getLogger("govshare.access")
_R = TypeVar("_R")
# Failures that say "not now" rather than "not for you": the material stays shareable.
# A defect of ours (INTERNAL_ERROR) is one too: the applicant must not be sent for a
# paper another department holds because the gateway failed.
_TRANSIENT = frozenset(
    {
        Reason.PROVIDER_UNAVAILABLE,
        Reason.PROVIDER_TIMEOUT,
        Reason.AUDIT_UNAVAILABLE,
        Reason.INTERNAL_ERROR,
    }
)
# Part of the caller's deadline kept back for signing and the log append, so a
# slow registry yields PROVIDER_TIMEOUT rather than the caller's own timeout.
_DEADLINE_RESERVE_FRACTION = 0.1
_DEADLINE_RESERVE_MAX = 0.2


class ExchangeServicer(exchange_pb2_grpc.ExchangeServiceServicer):
    """Brokers certificates and records; see the module docstring for the path."""

    def __init__(
        self,
        *,
        catalogue: Callable[[], Catalogue],
        adapters: AdapterRouter,
        signer: EvidenceSigner,
        access_log: AccessLog,
        holder_ids: HolderIdProtector,
        trust_domain: str,
        default_timeout: float,
        clock: Callable[[], _dt.datetime] = utc_now,
        local_timezone: _dt.tzinfo = CHINA_STANDARD_TIME,
        holder_id_exceptions: Mapping[str, AbstractSet[str]] | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._adapters = adapters
        self._signer = signer
        self._log = access_log
        self._holder_ids = holder_ids
        self._trust_domain = trust_domain
        self._default_timeout = default_timeout
        self._clock = clock
        # Grant validity dates are calendar days where the directory keeps them
        # (Beijing time): between 00:00 and 08:00 the UTC date is still yesterday.
        self._timezone = local_timezone
        self._holder_id_exceptions = holder_id_exceptions or {}

    async def GetCertificate(
        self,
        request: exchange_pb2.GetCertificateRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> exchange_pb2.Evidence:
        request_id, bad_request_id = request_id_of(request.request_id)
        access = CallRecord("GetCertificate", request_id, request.matter_code, request.purpose)

        async def body() -> exchange_pb2.Evidence:
            catalogue = self._catalogue()
            caller = self._identify(context, access, catalogue)
            if bad_request_id is not None:
                raise bad_request_id
            require(request.certificate_type, "certificate_type")
            ctype = catalogue.certificate_type(request.certificate_type)
            if ctype is None:
                raise GovshareError(
                    Reason.RESOURCE_NOT_FOUND,
                    "no such certificate type",
                    certificate_type=request.certificate_type,
                )
            access.certificate_type = ctype.key
            resource = self._resource(catalogue, ctype.resource, access)
            return await self._exchange(
                context,
                access,
                caller,
                catalogue,
                resource,
                request.holder,
                (),
                ctype.holder_id_type,
            )

        return await self._serve(context, access, body)

    async def QueryRecord(
        self, request: exchange_pb2.QueryRecordRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> exchange_pb2.Evidence:
        request_id, bad_request_id = request_id_of(request.request_id)
        access = CallRecord("QueryRecord", request_id, request.matter_code, request.purpose)

        async def body() -> exchange_pb2.Evidence:
            catalogue = self._catalogue()
            caller = self._identify(context, access, catalogue)
            if bad_request_id is not None:
                raise bad_request_id
            require(request.resource_code, "resource_code")
            require_at_most(len(request.fields), "fields", MAX_FIELDS)
            resource = self._resource(catalogue, request.resource_code, access)
            return await self._exchange(
                context,
                access,
                caller,
                catalogue,
                resource,
                request.holder,
                tuple(request.fields),
                holder_id_type_of(catalogue, resource.code),
            )

        return await self._serve(context, access, body)

    async def VerifyEvidence(
        self,
        request: exchange_pb2.VerifyEvidenceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> exchange_pb2.VerifyEvidenceResponse:
        try:
            result = verify_evidence(request.jws, self._signer.jwks)
        except Exception:
            # Whatever a token holds, the answer is a verdict, never a failed call.
            _log.exception("evidence verification failed unexpectedly")
            result = EvidenceVerification(False, "MALFORMED")
        return exchange_pb2.VerifyEvidenceResponse(
            valid=result.valid,
            reason=result.reason,
            key_id=result.key_id,
            log_index=result.log_index,
            request_id=result.request_id,
        )

    async def ListSigningKeys(
        self,
        request: exchange_pb2.ListSigningKeysRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> exchange_pb2.ListSigningKeysResponse:
        return exchange_pb2.ListSigningKeysResponse(jwks_json=self._signer.jwks_json)

    async def _serve(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        access: CallRecord,
        body: Callable[[], Awaitable[_R]],
        *,
        announce: bool = True,
    ) -> _R:
        if announce:
            self._log.expect()
        try:
            return await self._serve_announced(context, access, body)
        finally:
            if announce and not access.logged:
                self._log.withdraw()

    async def _serve_announced(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        access: CallRecord,
        body: Callable[[], Awaitable[_R]],
    ) -> _R:
        try:
            return await body()
        except asyncio.CancelledError:
            # The registry may already have been asked: the attempt must be in the log.
            await asyncio.shield(self._log_cancellation(access))
            raise
        except GovshareError as error:
            denial = error
        except Exception:
            # A defect, not a decision: log it for operators, tell the caller
            # only the request id, and still leave the attempt in the audit log.
            _log.exception("unexpected failure request_id=%s", access.request_id)
            denial = GovshareError(
                Reason.INTERNAL_ERROR, f"internal error; quote request id {access.request_id}"
            )
        await self._deny(context, access, denial)
        raise AssertionError("unreachable: abort raises")

    def _identify(
        self, context: grpc.aio.ServicerContext[Any, Any], access: CallRecord, catalogue: Catalogue
    ) -> Principal:
        """The caller, who must be a registered, active department: checked before any
        lookup, so a stranger cannot learn what the catalogue holds."""
        caller = principal_from_auth_context(context.auth_context(), self._trust_domain)
        access.consumer = caller.label
        authorize_department(catalogue, caller)
        return caller

    def _resource(self, catalogue: Catalogue, code: str, access: CallRecord) -> Resource:
        resource = catalogue.resources.get(code)
        if resource is None:
            raise GovshareError(Reason.RESOURCE_NOT_FOUND, "no such resource", resource=code)
        access.resource_code = resource.code
        access.provider = resource.provider
        return resource

    async def _exchange(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        access: CallRecord,
        caller: Principal,
        catalogue: Catalogue,
        resource: Resource,
        holder: exchange_pb2.Holder,
        requested_fields: Sequence[str],
        expected_id_type: str | None,
    ) -> exchange_pb2.Evidence:
        check_holder_length(holder)
        if holder.id:
            access.holder_id_hash = self._holder_ids.hash(holder.id_type, holder.id)
            access.holder_id_masked = mask_holder_id(holder.id)
        require(access.matter_code, "matter_code")
        require(access.purpose, "purpose", MAX_PURPOSE)
        now = self._clock()
        decision = decide(
            catalogue,
            caller,
            resource,
            requested_fields,
            access.matter_code,
            now.astimezone(self._timezone).date(),
        )
        access.grant_ids = decision.grant_ids
        check_holder(holder, expected_id_type, self._holder_id_exceptions)
        fields = await self._lookup(context, access, decision, holder)
        access.fields_returned = tuple(fields)
        payload = canonical_json(evidence_record(access, decision, holder, fields, now))
        access.evidence_digest = hashlib.sha256(payload).hexdigest()
        pending = self._append(access, "ALLOWED", "", now)
        token = self._signer.sign(
            payload,
            request_id=access.request_id,
            log_index=pending.index,
            issued_at=int(now.timestamp()),
        )
        await self._durable(pending)
        log_access_line(access, "ALLOWED", "", pending.index)
        # Built directly: Timestamp.FromDatetime is pure Python (~8 µs a call).
        aware = now if now.tzinfo is not None else now.replace(tzinfo=_dt.UTC)
        issue_time = timestamp_pb2.Timestamp(
            seconds=int(aware.timestamp()), nanos=aware.microsecond * 1000
        )
        return exchange_pb2.Evidence(
            jws=token,
            record_json=payload.decode("utf-8"),
            fields=fields,
            request_id=access.request_id,
            log_index=pending.index,
            key_id=self._signer.key_id,
            issue_time=issue_time,
        )

    async def _lookup(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        access: CallRecord,
        decision: Decision,
        holder: exchange_pb2.Holder,
    ) -> dict[str, str]:
        adapter = self._adapters.for_resource(decision.resource.code)
        if adapter is None:
            raise GovshareError(
                Reason.PROVIDER_UNAVAILABLE,
                "no registry adapter is configured for the resource",
                resource=decision.resource.code,
            )
        timeout = self._provider_timeout(context)
        lookup = LookupRequest(decision.resource.code, holder.id_type, holder.id, access.request_id)
        try:
            record = await adapter.lookup(lookup, timeout=timeout)
        except HolderNotFound:
            raise GovshareError(
                Reason.HOLDER_NOT_FOUND, "the registry holds no record for the holder"
            ) from None
        except ProviderTimeout:
            raise GovshareError(
                Reason.PROVIDER_TIMEOUT,
                "the registry did not answer in time",
                timeout=f"{timeout:.3f}",
            ) from None
        except ProviderError as error:
            raise GovshareError(Reason.PROVIDER_UNAVAILABLE, str(error)) from None
        return {name: record.fields[name] for name in decision.fields if name in record.fields}

    def _provider_timeout(self, context: grpc.aio.ServicerContext[Any, Any]) -> float:
        remaining: float | None = context.time_remaining()
        if remaining is None:
            return self._default_timeout
        reserve = min(_DEADLINE_RESERVE_MAX, remaining * _DEADLINE_RESERVE_FRACTION)
        budget = min(self._default_timeout, remaining - reserve)
        if budget <= 0:
            raise GovshareError(Reason.PROVIDER_TIMEOUT, "the caller's deadline leaves no time")
        return budget

    def _append(self, access: CallRecord, outcome: str, reason: str, now: _dt.datetime) -> Any:
        try:
            pending = self._log.append(access.record(outcome, reason, now))
            access.logged = True
            return pending
        except Exception:
            _log.exception("audit append failed request_id=%s", access.request_id)
            raise GovshareError(
                Reason.AUDIT_UNAVAILABLE, "the access could not be logged; nothing was handed out"
            ) from None

    async def _durable(self, pending: Any) -> None:
        try:
            await pending.wait()
        except Exception:
            _log.exception("audit commit failed")
            raise GovshareError(
                Reason.AUDIT_UNAVAILABLE, "the access could not be logged; nothing was handed out"
            ) from None

    async def _deny(
        self, context: grpc.aio.ServicerContext[Any, Any], access: CallRecord, error: GovshareError
    ) -> None:
        status = to_grpc_status(await self._log_denial(access, error))
        await context.abort(status.code, status.details, status.trailing_metadata)

    async def _log_cancellation(self, access: CallRecord) -> None:
        if not access.logged:
            await self._log_denial(
                access, GovshareError(Reason.CALL_CANCELLED, "the caller cancelled the call")
            )

    async def _log_denial(self, access: CallRecord, error: GovshareError) -> GovshareError:
        """Write the DENIED record; returns AUDIT_UNAVAILABLE instead if that fails."""
        if error.reason is not Reason.AUDIT_UNAVAILABLE:
            try:
                pending = self._append(access, "DENIED", error.reason.value, self._clock())
                await self._durable(pending)
                log_access_line(access, "DENIED", error.reason.value, pending.index)
                return error
            except GovshareError as audit_error:
                error = audit_error
        log_access_line(access, "DENIED", error.reason.value, -1)
        return error

    async def ResolveMaterials(
        self,
        request: exchange_pb2.ResolveMaterialsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> exchange_pb2.ResolveMaterialsResponse:
        request_id, bad_request_id = request_id_of(request.request_id)
        access = CallRecord("ResolveMaterials", request_id, request.matter_code, request.purpose)

        async def body() -> exchange_pb2.ResolveMaterialsResponse:
            catalogue = self._catalogue()
            caller = self._identify(context, access, catalogue)
            if bad_request_id is not None:
                raise bad_request_id
            require(request.matter_code, "matter_code")
            require(request.purpose, "purpose", MAX_PURPOSE)
            if not request.applicants:
                raise GovshareError(
                    Reason.REQUEST_INVALID, "applicants is required", field="applicants"
                )
            require_at_most(len(request.applicants), "applicants", MAX_APPLICANTS)
            matter = catalogue.matter(request.matter_code)
            if matter is None:
                # The same answer as GetCertificate's policy decision gives.
                raise GovshareError(
                    Reason.MATTER_NOT_COVERED,
                    "the catalogue has no such matter (unknown or deleted)",
                    matter_code=request.matter_code,
                )
            results = await asyncio.gather(
                *(
                    self._resolve_material(
                        context, caller, catalogue, material, request, f"{request_id}/{n}"
                    )
                    for n, material in enumerate(matter.materials, start=1)
                )
            )
            return exchange_pb2.ResolveMaterialsResponse(
                matter_code=matter.code, results=results, request_id=request_id
            )

        # Each material announces its own record; the call's record is only a denial's.
        return await self._serve(context, access, body, announce=False)

    async def _resolve_material(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        caller: Principal,
        catalogue: Catalogue,
        material: Material,
        request: exchange_pb2.ResolveMaterialsRequest,
        request_id: str,
    ) -> exchange_pb2.MaterialResult:
        """One material: shared evidence, or why the applicant must bring it."""
        result = exchange_pb2.MaterialResult(material=material.name, source=material.source_key)
        if material.source is MaterialSource.APPLICANT_SUBMITS:
            result.outcome = exchange_pb2.MATERIAL_OUTCOME_MUST_SUBMIT
            result.reason = "APPLICANT_SUBMITS"
            result.message = "no registry holds this material: the applicant submits it"
            return result
        access = CallRecord("ResolveMaterials", request_id, request.matter_code, request.purpose)
        access.consumer = caller.label
        self._log.expect()
        try:
            expected_id_type: str | None = None
            if material.source is MaterialSource.CERTIFICATE_TYPE:
                ctype = catalogue.certificate_type(material.source_key)
                if ctype is None:
                    raise GovshareError(
                        Reason.RESOURCE_NOT_FOUND, "the matter names an unknown certificate type"
                    )
                access.certificate_type = ctype.key
                resource_code, expected_id_type = ctype.resource, ctype.holder_id_type
            else:
                resource_code = material.source_key
                expected_id_type = holder_id_type_of(catalogue, resource_code)
            resource = self._resource(catalogue, resource_code, access)
            holder = applicant_for(request.applicants, expected_id_type)
            evidence = await self._exchange(
                context,
                access,
                caller,
                catalogue,
                resource,
                holder,
                material.data_items,
                expected_id_type,
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._log_cancellation(access))
            raise
        except Exception as failure:
            if isinstance(failure, GovshareError):
                error = failure
            else:
                # A defect, not a decision: one material fails, the others are still
                # delivered, and this one's attempt is logged under its own id.
                _log.exception("unexpected failure request_id=%s", request_id)
                error = GovshareError(
                    Reason.INTERNAL_ERROR, f"internal error; quote request id {request_id}"
                )
            logged = await self._log_denial(access, error)
            result.outcome = (
                exchange_pb2.MATERIAL_OUTCOME_UNAVAILABLE
                if logged.reason in _TRANSIENT
                else exchange_pb2.MATERIAL_OUTCOME_MUST_SUBMIT
            )
            result.reason = logged.reason.value
            result.message = logged.message
            return result
        finally:
            if not access.logged:
                self._log.withdraw()
        result.outcome = exchange_pb2.MATERIAL_OUTCOME_SHARED
        result.evidence.CopyFrom(evidence)
        return result
