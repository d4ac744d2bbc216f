"""ExchangeService end to end: a real gateway on port 0 with mTLS, the five
registry simulators over real HTTP, the durable audit log on SQLite."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from typing import Any

import grpc
import pytest
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import verify_evidence
from support import LAND_REGISTRY, RunningGateway, error_info

BDC_TRANSFER = "330100-BDC-0001"  # 不动产转移登记: covered by the land registry's grants
HOUSING_MATTER = "330100-ZF-0003"
PURPOSE = "不动产转移登记核验卖方身份"


def _holder(id_: str, id_type: str = "111") -> exchange_pb2.Holder:
    return exchange_pb2.Holder(id_type=id_type, id=id_)


async def _jwks(gw: RunningGateway) -> dict[str, Any]:
    async with gw.channel(gw.pki.land_registry) as channel:
        reply = await gw.exchange(channel).ListSigningKeys(exchange_pb2.ListSigningKeysRequest())
    jwks: dict[str, Any] = json.loads(reply.jwks_json)
    return jwks


class TestAllowedExchange:
    async def test_identity_record_holds_exactly_the_granted_items(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A conditional certificate returns the granted data items and nothing else."""
        seller = population.person_with_marriage_and_property()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            evidence = await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=_holder(seller.citizen_id),
                    matter_code=BDC_TRANSFER,
                    purpose=PURPOSE,
                ),
                timeout=10,
            )
        assert dict(evidence.fields) == {
            "citizen_id": seller.citizen_id,
            "name": seller.name,
            "sex": seller.sex,
            "birth_date": seller.birth_date.isoformat(),
            "address": seller.address,
        }

    async def test_issue_time_is_the_time_the_evidence_and_its_token_name(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """issue_time, the record's issued_at and the token's iat name the same second,
        within the time of the call."""
        before = int(time.time())
        async with gateway.channel(gateway.pki.land_registry) as channel:
            evidence = await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=_holder(population.persons[0].citizen_id),
                    matter_code=BDC_TRANSFER,
                    purpose=PURPOSE,
                ),
                timeout=10,
            )
        after = time.time()
        header = json.loads(base64.urlsafe_b64decode(evidence.jws.split(".")[0] + "=="))
        issued = dt.datetime.fromisoformat(json.loads(evidence.record_json)["issued_at"])
        assert before <= evidence.issue_time.seconds <= after
        assert 0 <= evidence.issue_time.nanos < 1_000_000_000
        assert evidence.issue_time.seconds == header["iat"] == int(issued.timestamp())

    async def test_evidence_verifies_against_the_published_jwks(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """The JWS verifies offline with the JWKS, and names its request and log index."""
        company = population.active_company()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            evidence = await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="business_licence",
                    holder=_holder(company.uscc, "001"),
                    matter_code=BDC_TRANSFER,
                    purpose="核验买方企业主体资格",
                    request_id="req-licence-1",
                ),
                timeout=10,
            )
        result = verify_evidence(evidence.jws, await _jwks(gateway))
        assert result.valid, result.reason
        assert result.request_id == "req-licence-1"
        assert result.log_index == evidence.log_index
        assert result.payload["fields"] == dict(evidence.fields)
        assert result.payload["holder"] == {"id_type": "001", "id": company.uscc}
        assert evidence.fields["company_name"] == company.name
        assert evidence.fields["established_date"] == company.established_date.isoformat()

    async def test_the_log_entry_and_the_evidence_reference_each_other(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """The audit row at the evidence's index carries the digest of its payload."""
        seller = population.person_with_marriage_and_property()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            evidence = await gateway.exchange(channel).QueryRecord(
                exchange_pb2.QueryRecordRequest(
                    resource_code="101002/00001",
                    holder=_holder(seller.citizen_id),
                    fields=["marital_status", "spouse_name"],
                    matter_code=BDC_TRANSFER,
                    purpose=PURPOSE,
                ),
                timeout=10,
            )
        assert set(evidence.fields) == {"marital_status", "spouse_name"}
        assert evidence.fields["marital_status"] == "已婚"
        row = gateway.audit_entry(evidence.log_index)
        record = json.loads(row["leaf"])
        assert record["outcome"] == "ALLOWED"
        assert record["fields_returned"] == ["marital_status", "spouse_name"]
        assert (
            record["evidence_digest"] == hashlib.sha256(evidence.record_json.encode()).hexdigest()
        )

    async def test_a_tampered_payload_fails_verification(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Changing one field of the signed payload makes the evidence invalid."""
        seller = population.person_with_marriage_and_property()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            evidence = await stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=_holder(seller.citizen_id),
                    matter_code=BDC_TRANSFER,
                    purpose=PURPOSE,
                ),
                timeout=10,
            )
            header, payload, signature = evidence.jws.split(".")
            record = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            record["fields"]["name"] = "张三"
            forged = base64.urlsafe_b64encode(json.dumps(record).encode()).decode().rstrip("=")
            tampered = f"{header}.{forged}.{signature}"
            online = await stub.VerifyEvidence(exchange_pb2.VerifyEvidenceRequest(jws=tampered))
            genuine = await stub.VerifyEvidence(
                exchange_pb2.VerifyEvidenceRequest(jws=evidence.jws)
            )
        assert genuine.valid
        assert not online.valid
        assert online.reason == "SIGNATURE_INVALID"
        assert not verify_evidence(tampered, await _jwks(gateway)).valid

    async def test_holder_ids_are_only_hashed_and_masked_in_the_log(
        self, gateway: RunningGateway, population: Population, no_holder_ids_in: Any
    ) -> None:
        """The audit log file holds a keyed hash and a masked form, never the id."""
        seller = population.person_with_marriage_and_property()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=_holder(seller.citizen_id),
                    matter_code=BDC_TRANSFER,
                    purpose=PURPOSE,
                ),
                timeout=10,
            )
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (
            record["holder_id_masked"] == seller.citizen_id[:4] + "*" * 10 + seller.citizen_id[-4:]
        )
        assert len(record["holder_id_hash"]) == 64
        for path in gateway.audit_db.parent.glob("audit.db*"):
            no_holder_ids_in(path.read_bytes().decode("latin-1"))


def _denial_cases(population: Population) -> list[tuple[str, str, Any, grpc.StatusCode, str]]:
    seller = population.person_with_marriage_and_property().citizen_id
    taxpayer = population.person_with_all_records().citizen_id

    def cert(ctype: str, holder: str, matter: str = BDC_TRANSFER, **kw: Any) -> Any:
        return exchange_pb2.GetCertificateRequest(
            certificate_type=ctype,
            holder=_holder(holder),
            matter_code=matter,
            purpose=kw.get("purpose", PURPOSE),
        )

    def query(code: str, holder: str, fields: list[str]) -> Any:
        return exchange_pb2.QueryRecordRequest(
            resource_code=code,
            holder=_holder(holder),
            fields=fields,
            matter_code=BDC_TRANSFER,
            purpose=PURPOSE,
        )

    PD = grpc.StatusCode.PERMISSION_DENIED
    return [
        ("unregistered", "GetCertificate", cert("identity_record", seller), PD, "CALLER_UNKNOWN"),
        ("suspended", "GetCertificate", cert("identity_record", seller), PD, "CALLER_SUSPENDED"),
        ("admin", "GetCertificate", cert("identity_record", seller), PD, "ROLE_REQUIRED"),
        ("land_registry", "GetCertificate", cert("criminal_record", seller), PD, "RESOURCE_NOT_SHARED"),
        ("housing", "GetCertificate", cert("marriage_record", seller, HOUSING_MATTER), PD, "GRANT_REQUIRED"),
        ("land_registry", "QueryRecord", query("101001/00001", seller, ["name", "ethnicity"]), PD, "FIELD_NOT_GRANTED"),
        ("land_registry", "GetCertificate", cert("identity_record", seller, HOUSING_MATTER), PD, "MATTER_NOT_COVERED"),
        ("housing", "GetCertificate", cert("tax_payment_certificate", taxpayer, HOUSING_MATTER), PD, "GRANT_EXPIRED"),
        ("land_registry", "GetCertificate", cert("identity_record", "360426199101010072"), grpc.StatusCode.INVALID_ARGUMENT, "HOLDER_ID_INVALID"),
        ("land_registry", "GetCertificate", cert("business_licence", seller), grpc.StatusCode.INVALID_ARGUMENT, "HOLDER_ID_INVALID"),
        ("land_registry", "GetCertificate", cert("driving_licence", seller), grpc.StatusCode.NOT_FOUND, "RESOURCE_NOT_FOUND"),
        ("land_registry", "QueryRecord", query("101001/00001", seller, ["shoe_size"]), grpc.StatusCode.INVALID_ARGUMENT, "FIELD_UNKNOWN"),
        ("land_registry", "GetCertificate", cert("identity_record", seller, purpose=""), grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID"),
        ("land_registry", "GetCertificate", cert("identity_record", seller, purpose="事" * 201), grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID"),
    ]  # fmt: skip


_CASE_IDS = [
    "unknown-caller", "suspended-caller", "wrong-role", "not-shared", "no-grant",
    "field-not-granted", "matter-not-covered", "expired-grant", "invalid-citizen-id",
    "id-type-mismatch", "unknown-certificate-type", "unknown-field", "missing-purpose",
    "purpose-too-long",
]  # fmt: skip


class TestDenials:
    @pytest.mark.parametrize("case", range(len(_CASE_IDS)), ids=_CASE_IDS)
    async def test_each_denial_has_its_code_reason_and_one_audit_row(
        self, case: int, gateway: RunningGateway, population: Population, no_holder_ids_in: Any
    ) -> None:
        """A denial arrives as the right gRPC code and ErrorInfo reason, logged exactly once."""
        client_name, method, request, code, reason = _denial_cases(population)[case]
        before = len(gateway.audit_rows())
        async with gateway.channel(getattr(gateway.pki, client_name)) as channel:
            call = getattr(gateway.exchange(channel), method)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(request, timeout=10)
        assert raised.value.code() == code
        info = error_info(raised.value)
        assert (info.reason, info.domain) == (reason, "govshare")
        no_holder_ids_in(raised.value.details() or "")
        rows = gateway.audit_rows()
        assert len(rows) == before + 1
        record = json.loads(rows[-1]["leaf"])
        assert (record["outcome"], record["reason"]) == ("DENIED", reason)
        assert record["fields_returned"] == []


class TestEveryCallIsLogged:
    async def test_allowed_and_denied_calls_each_leave_one_row_in_order(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Four calls, alternately allowed and denied, leave four rows in call order
        with each call's outcome and reason, and a hash chain that verifies."""
        from govshare.gateway import verify_log_file

        # The seed grant g-bdc-identity gives the land registry identity records for
        # the 330100-BDC matters only: the housing matter is not covered.
        expected = [
            ("ALLOWED", ""),
            ("DENIED", "MATTER_NOT_COVERED"),
            ("ALLOWED", ""),
            ("DENIED", "MATTER_NOT_COVERED"),
        ]
        seller = population.person_with_marriage_and_property().citizen_id
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            outcomes = []
            for matter in (BDC_TRANSFER, HOUSING_MATTER, BDC_TRANSFER, HOUSING_MATTER):
                try:
                    await stub.GetCertificate(
                        exchange_pb2.GetCertificateRequest(
                            certificate_type="identity_record",
                            holder=_holder(seller),
                            matter_code=matter,
                            purpose=PURPOSE,
                        ),
                        timeout=10,
                    )
                    outcomes.append(("ALLOWED", ""))
                except grpc.aio.AioRpcError as error:
                    outcomes.append(("DENIED", error_info(error).reason))
        assert outcomes == expected
        records = [json.loads(r["leaf"]) for r in gateway.audit_rows()]
        assert [(r["outcome"], r["reason"]) for r in records] == expected
        assert [r["matter_code"] for r in records] == [BDC_TRANSFER, HOUSING_MATTER] * 2
        assert [r["consumer"] for r in records] == [LAND_REGISTRY] * 4
        assert verify_log_file(gateway.audit_db, None).ok
