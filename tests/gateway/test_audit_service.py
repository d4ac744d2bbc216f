"""AuditService over mTLS: auditors search, prove and export; others may not."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest
from govshare.adapters.simulators import Population
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import (
    AccessQuery,
    AuditReader,
    NoteVerifier,
    SqliteAccessLog,
    leaf_hash,
    open_signed_note,
    verify_consistency,
    verify_inclusion,
)
from support import LAND_REGISTRY, RunningGateway, error_info

_MATTER = "330100-BDC-0001"


async def _traffic(
    gateway: RunningGateway, population: Population, allowed: int, denied: int
) -> list[int]:
    """Make some allowed and some denied calls; return the allowed evidence's log indices."""
    indices = []
    async with gateway.channel(gateway.pki.land_registry) as channel:
        stub = gateway.exchange(channel)
        for person in population.persons[:allowed]:
            evidence = await stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
                    matter_code=_MATTER,
                    purpose="审计测试",
                ),
                timeout=10,
            )
            indices.append(evidence.log_index)
        for person in population.persons[:denied]:
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="criminal_record",
                        holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
                        matter_code=_MATTER,
                        purpose="审计测试",
                    ),
                    timeout=10,
                )
    return indices


async def _read(stub: audit_pb2_grpc.AuditServiceStub, method: str) -> None:
    """Call one of the AuditService methods that read leaves."""
    if method == "ListAccessRecords":
        await stub.ListAccessRecords(audit_pb2.ListAccessRecordsRequest())
    elif method == "GetInclusionProof":
        await stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(index=1))
    else:
        async for _ in stub.ExportAccessRecords(audit_pb2.ExportAccessRecordsRequest()):
            pass


class TestRoles:
    @pytest.mark.parametrize("client", ["land_registry", "admin"])
    async def test_only_auditors_search_the_log(self, client: str, gateway: RunningGateway) -> None:
        """Departments and administrators get ROLE_REQUIRED from ListAccessRecords."""
        async with gateway.channel(getattr(gateway.pki, client)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest()
                )
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(raised.value).reason == "ROLE_REQUIRED"

    async def test_administrators_read_usage_stats(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """GetUsageStats answers administrators with counts by outcome and reason."""
        await _traffic(gateway, population, allowed=3, denied=2)
        async with gateway.channel(gateway.pki.admin) as channel:
            stats = await audit_pb2_grpc.AuditServiceStub(channel).GetUsageStats(
                audit_pb2.GetUsageStatsRequest()
            )
        by_outcome = {c.key: c.count for c in stats.by_outcome}
        assert stats.total == 5
        assert by_outcome == {"ALLOWED": 3, "DENIED": 2, "DENIED:RESOURCE_NOT_SHARED": 2}
        assert {c.key: c.count for c in stats.by_consumer} == {LAND_REGISTRY: 5}
        assert stats.latency_p99_ms >= stats.latency_p50_ms > 0


class TestSearch:
    async def test_filters_and_pages(self, gateway: RunningGateway, population: Population) -> None:
        """Outcome and holder filters select the right rows; pages chain with tokens."""
        await _traffic(gateway, population, allowed=5, denied=3)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            denied = await stub.ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest(outcome=audit_pb2.OUTCOME_DENIED)
            )
            holder = population.persons[1].citizen_id
            by_holder = await stub.ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest(holder_id_type="111", holder_id=holder)
            )
            first = await stub.ListAccessRecords(audit_pb2.ListAccessRecordsRequest(page_size=3))
            second = await stub.ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest(page_size=3, page_token=first.next_page_token)
            )
            with pytest.raises(grpc.aio.AioRpcError) as reused:
                await stub.ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(
                        page_size=3, page_token=first.next_page_token, consumer=LAND_REGISTRY
                    )
                )
        assert [r.reason for r in denied.access_records] == ["RESOURCE_NOT_SHARED"] * 3
        assert len(by_holder.access_records) == 2  # one allowed, one denied
        assert all(
            r.holder_id_masked == holder[:4] + "*" * 10 + holder[-4:]
            for r in by_holder.access_records
        )
        assert all(holder not in r.leaf.decode() for r in by_holder.access_records)
        indices = [row["idx"] for row in gateway.audit_rows()]
        assert [r.index for r in first.access_records] == indices[:3]
        assert [r.index for r in second.access_records] == indices[3:6]
        assert error_info(reused.value).reason == "REQUEST_INVALID"


class TestProofs:
    async def test_evidence_index_is_proven_in_a_signed_checkpoint(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """An evidence's log index has an inclusion proof against a fresh signed checkpoint."""
        indices = await _traffic(gateway, population, allowed=7, denied=2)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            checkpoint = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            proof = await stub.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(index=indices[4])
            )
            by_hash = await stub.GetInclusionProof(
                audit_pb2.GetInclusionProofRequest(leaf_hash=proof.leaf_hash)
            )
        opened = open_signed_note(
            checkpoint.signed_note, [NoteVerifier.from_key(checkpoint.verifier_key)]
        )
        entries = gateway.audit_rows()[-1]["idx"] + 1  # directory events come first
        assert opened.size == checkpoint.tree_size == entries
        assert proof.tree_size == entries
        assert leaf_hash(proof.leaf) == proof.leaf_hash
        assert json.loads(proof.leaf)["outcome"] == "ALLOWED"
        assert verify_inclusion(
            proof.leaf_hash, proof.index, proof.tree_size, list(proof.hashes), opened.root_hash
        )
        assert by_hash.index == proof.index

    async def test_consistency_between_two_checkpoints(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A consistency proof links an older checkpoint to a newer one."""
        await _traffic(gateway, population, allowed=3, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            old = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            await _traffic(gateway, population, allowed=4, denied=1)
            new = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            proof = await stub.GetConsistencyProof(
                audit_pb2.GetConsistencyProofRequest(old_size=old.tree_size)
            )
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await stub.GetConsistencyProof(
                    audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=new.tree_size + 1)
                )
        assert new.tree_size == old.tree_size + 5
        sizes = (old.tree_size, new.tree_size)
        assert verify_consistency(*sizes, old.root_hash, new.root_hash, list(proof.hashes))
        assert not verify_consistency(*sizes, new.root_hash, old.root_hash, list(proof.hashes))
        assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class TestExport:
    async def test_export_streams_entries_and_resumes(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """The export streams every entry up to the checkpoint and resumes from an index."""
        await _traffic(gateway, population, allowed=6, denied=2)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            whole: list[Any] = []
            async for chunk in stub.ExportAccessRecords(audit_pb2.ExportAccessRecordsRequest()):
                whole.extend(chunk.entries)
            tail: list[Any] = []
            async for chunk in stub.ExportAccessRecords(
                audit_pb2.ExportAccessRecordsRequest(start_index=5)
            ):
                tail.extend(chunk.entries)
        size = gateway.audit_rows()[-1]["idx"] + 1
        assert [e.index for e in whole] == list(range(size))
        assert [e.index for e in tail] == list(range(5, size))
        assert [bytes(gateway.audit_entry(i)["leaf"]) for i in range(size)] == [
            e.leaf for e in whole
        ]


class TestDecisionsAboutTheLogAreLogged:
    async def test_refusals_name_the_caller_and_holder_searches_are_recorded(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A department reading the log and an auditor looking up a holder both leave entries."""
        holder = population.persons[2].citizen_id
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest()
                )
        async with gateway.channel(gateway.pki.auditor) as channel:
            await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest(holder_id_type="111", holder_id=holder)
            )
        records = [json.loads(r["leaf"]) for r in gateway.audit_rows()]
        refused, searched = records[-2], records[-1]
        assert (refused["method"], refused["consumer"], refused["reason"]) == (
            "AuditService.ListAccessRecords",
            LAND_REGISTRY,
            "ROLE_REQUIRED",
        )
        assert (searched["consumer"], searched["outcome"]) == ("auditor/audit-office", "ALLOWED")
        assert searched["holder_id_masked"] == holder[:4] + "*" * 10 + holder[-4:]
        assert holder not in json.dumps(records)

    async def test_every_refusal_of_an_auditor_is_logged_with_its_reason(
        self, gateway: RunningGateway
    ) -> None:
        """Bad tokens, ranges and indices are decisions too: each leaves a DENIED entry
        naming the auditor, the method and the reason it was sent."""
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as token:
                await stub.ListAccessRecords(audit_pb2.ListAccessRecordsRequest(page_token="x"))
            with pytest.raises(grpc.aio.AioRpcError) as index:
                await stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(index=10**9))
            with pytest.raises(grpc.aio.AioRpcError) as start:
                async for _ in stub.ExportAccessRecords(
                    audit_pb2.ExportAccessRecordsRequest(start_index=10**9)
                ):
                    pass
        for raised in (token, index, start):
            assert error_info(raised.value).reason == "REQUEST_INVALID"
        logged = [
            (record["method"], record["consumer"], record["outcome"], record["reason"])
            for record in (json.loads(r["leaf"]) for r in gateway.audit_rows()[-3:])
        ]
        assert logged == [
            ("AuditService.ListAccessRecords", "auditor/audit-office", "DENIED", "REQUEST_INVALID"),
            ("AuditService.GetInclusionProof", "auditor/audit-office", "DENIED", "REQUEST_INVALID"),
            (
                "AuditService.ExportAccessRecords",
                "auditor/audit-office",
                "DENIED",
                "REQUEST_INVALID",
            ),
        ]


class TestHolderSearchNeedsTheLog:
    async def test_a_holder_search_the_log_cannot_record_is_refused(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """With the audit log failing, a search by holder gets AUDIT_UNAVAILABLE, no records."""
        await _traffic(gateway, population, allowed=2, denied=0)
        with sqlite3.connect(gateway.audit_db) as conn:
            conn.execute(
                "CREATE TRIGGER fail_inserts BEFORE INSERT ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
            )
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(
                        holder_id_type="111", holder_id=population.persons[1].citizen_id
                    )
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "AUDIT_UNAVAILABLE"
        assert population.persons[1].citizen_id not in (raised.value.details() or "")

    async def test_a_failed_log_is_audit_unavailable_on_every_method(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Once the log has failed, a checkpoint request gets UNAVAILABLE /
        AUDIT_UNAVAILABLE rather than UNKNOWN."""
        await _traffic(gateway, population, allowed=1, denied=0)
        with sqlite3.connect(gateway.audit_db) as conn:
            conn.execute(
                "CREATE TRIGGER fail_inserts BEFORE INSERT ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await _traffic(gateway, population, allowed=1, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).GetCheckpoint(
                    audit_pb2.GetCheckpointRequest(refresh=True)
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "AUDIT_UNAVAILABLE"


class TestBadFilters:
    @pytest.mark.parametrize(
        ("request_fields", "reason"),
        [
            ({"outcome": 99}, "REQUEST_INVALID"),
            (
                {"start_time": {"seconds": 2_000_000_000}, "end_time": {"seconds": 1}},
                "REQUEST_INVALID",
            ),
            ({"holder_id_type": "111", "holder_id": "abc"}, "HOLDER_ID_INVALID"),
            ({"holder_id_type": "999", "holder_id": "360426199101010071"}, "HOLDER_ID_INVALID"),
        ],
        ids=["unknown outcome", "inverted time range", "bad citizen id", "unknown id type"],
    )
    async def test_a_bad_search_filter_is_refused(
        self, request_fields: dict[str, Any], reason: str, gateway: RunningGateway
    ) -> None:
        """Filters that cannot mean what the auditor asked are refused, not ignored."""
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(**request_fields)
                )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == reason

    async def test_a_refused_holder_search_is_logged_as_a_denial(
        self, gateway: RunningGateway
    ) -> None:
        """A search by an invalid holder id is logged DENIED with HOLDER_ID_INVALID."""
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(holder_id_type="111", holder_id="abc")
                )
        last = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (last["method"], last["outcome"], last["reason"]) == (
            "AuditService.ListAccessRecords",
            "DENIED",
            "HOLDER_ID_INVALID",
        )

    async def test_usage_stats_refuse_an_inverted_time_range(self, gateway: RunningGateway) -> None:
        """GetUsageStats with start_time after end_time is REQUEST_INVALID."""
        async with gateway.channel(gateway.pki.admin) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).GetUsageStats(
                    audit_pb2.GetUsageStatsRequest(
                        start_time={"seconds": 2_000_000_000}, end_time={"seconds": 1}
                    )
                )
        assert error_info(raised.value).reason == "REQUEST_INVALID"


class TestUsageStatsLatency:
    async def test_records_without_latency_do_not_count_as_zero(self, tmp_path: Path) -> None:
        """Percentiles are over timed records only; refusals still count in the total."""
        path = tmp_path / "audit.db"
        log = SqliteAccessLog(path)
        await log.open()
        timed = [{"outcome": "ALLOWED", "latency_us": us} for us in (1000, 2000, 3000, 4000)]
        untimed = [{"outcome": "DENIED", "reason": "ROLE_REQUIRED"}] * 6
        for record in timed + untimed:
            await log.append(record).wait()
        await log.close()
        reader = AuditReader(path)
        try:
            stats = await reader.usage_stats(AccessQuery())
        finally:
            await reader.close()
        assert stats.total == 10
        assert (stats.latency_p50_ms, stats.latency_p99_ms) == (3.0, 4.0)


class TestExportOfADamagedLog:
    async def test_a_gap_in_the_rows_sends_no_entry_twice(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """An export over a deleted row skips it and repeats no other entry."""
        await _traffic(gateway, population, allowed=4, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            checkpoint = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            with sqlite3.connect(gateway.audit_db) as conn:
                conn.execute("DELETE FROM access_log WHERE idx = 1")
            sent: list[int] = []
            async for chunk in stub.ExportAccessRecords(audit_pb2.ExportAccessRecordsRequest()):
                sent.extend(e.index for e in chunk.entries)
        assert sent == [0, *range(2, checkpoint.tree_size)]

    async def test_proofs_over_a_damaged_log_say_so(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """An entry or tree node removed under the running gateway makes proofs fail with
        UNAVAILABLE / AUDIT_UNAVAILABLE naming the missing entry or node, not INTERNAL."""
        await _traffic(gateway, population, allowed=4, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            with sqlite3.connect(gateway.audit_db) as conn:
                conn.execute("DELETE FROM access_log WHERE idx = 1")
                conn.execute("DELETE FROM merkle_nodes WHERE level = 1 AND idx = 0")
            with pytest.raises(grpc.aio.AioRpcError) as entry_gone:
                await stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(index=1))
            with pytest.raises(grpc.aio.AioRpcError) as node_gone:
                await stub.GetConsistencyProof(audit_pb2.GetConsistencyProofRequest(old_size=3))
        for raised in (entry_gone, node_gone):
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(raised.value).reason == "AUDIT_UNAVAILABLE"
        # The consistency proof from 3 to 4 entries is [leaf 2, leaf 3, node (1, 0)]
        # (RFC 9162 2.1.4): the deleted node is the one it cannot find.
        assert [entry_gone.value.details(), node_gone.value.details()] == [
            "the access log is damaged (entry 1 is missing); operators must verify it",
            "the access log is damaged (merkle_nodes has no node at level 1, index 0); "
            "operators must verify it",
        ]

    async def test_an_altered_tree_node_is_reported_not_proven(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A tree node changed under the running gateway makes inclusion and consistency
        proofs AUDIT_UNAVAILABLE: a proof that fails against the signed root would accuse
        the log of a fork it did not make."""
        await _traffic(gateway, population, allowed=4, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            checkpoint = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            assert checkpoint.tree_size >= 4
            with sqlite3.connect(gateway.audit_db) as conn:
                conn.execute(
                    "UPDATE merkle_nodes SET hash = ? WHERE level = 1 AND idx = 0", (bytes(32),)
                )
            with pytest.raises(grpc.aio.AioRpcError) as inclusion:
                await stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(index=2))
            with pytest.raises(grpc.aio.AioRpcError) as consistency:
                await stub.GetConsistencyProof(audit_pb2.GetConsistencyProofRequest(old_size=3))
        assert error_info(inclusion.value).reason == "AUDIT_UNAVAILABLE"
        assert inclusion.value.details() == (
            "the access log is damaged (the stored tree does not prove entry 2); "
            "operators must verify it"
        )
        assert error_info(consistency.value).reason == "AUDIT_UNAVAILABLE"

    @pytest.mark.parametrize(
        "method", ["ListAccessRecords", "GetInclusionProof", "ExportAccessRecords"]
    )
    async def test_a_leaf_edited_as_text_is_audit_unavailable(
        self, method: str, gateway: RunningGateway, population: Population
    ) -> None:
        """A leaf rewritten as TEXT under the running gateway is damage (AUDIT_UNAVAILABLE),
        on every method that reads it, not UNKNOWN with a Python exception."""
        await _traffic(gateway, population, allowed=2, denied=0)
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
            with sqlite3.connect(gateway.audit_db) as conn:
                conn.execute("UPDATE access_log SET leaf = '{\"x\":1}' WHERE idx = 1")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await _read(stub, method)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "AUDIT_UNAVAILABLE"
        assert "entry 1 is not stored as bytes" in raised.value.details()

    async def test_a_leaf_that_is_not_a_record_is_audit_unavailable(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A leaf replaced by bytes that are no JSON record answers AUDIT_UNAVAILABLE."""
        await _traffic(gateway, population, allowed=2, denied=0)
        with sqlite3.connect(gateway.audit_db) as conn:
            conn.execute("UPDATE access_log SET leaf = x'ff00' WHERE idx = 1")
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest()
                )
        assert error_info(raised.value).reason == "AUDIT_UNAVAILABLE"
        assert "entry 1 is not an access record" in raised.value.details()


class TestPaging:
    async def test_paging_a_holder_ends_although_each_page_logs_a_lookup(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Pages show the log as of the first page: a holder search, which appends its
        own lookup record under the same holder, ends instead of paging on for ever."""
        holder = population.persons[0].citizen_id
        await _traffic(gateway, population, allowed=1, denied=1)
        seen: list[int] = []
        token = ""
        async with gateway.channel(gateway.pki.auditor) as channel:
            audit = audit_pb2_grpc.AuditServiceStub(channel)
            for _ in range(10):
                page = await audit.ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(
                        holder_id_type="111", holder_id=holder, page_size=1, page_token=token
                    )
                )
                seen.extend(r.index for r in page.access_records)
                token = page.next_page_token
                if not token:
                    break
        assert token == ""
        assert len(seen) == 2  # the allowed and the denied call; no lookups of this search

    async def test_a_deeply_nested_or_overlong_page_token_is_request_invalid(
        self, gateway: RunningGateway
    ) -> None:
        """A page token that is no token of ours is REQUEST_INVALID, whatever it holds."""
        nested = base64.urlsafe_b64encode(b"[" * 200_000).decode()
        async with gateway.channel(gateway.pki.auditor) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            for token in (nested, "A" * 100_000):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await stub.ListAccessRecords(
                        audit_pb2.ListAccessRecordsRequest(page_token=token)
                    )
                assert error_info(raised.value).reason == "REQUEST_INVALID"
