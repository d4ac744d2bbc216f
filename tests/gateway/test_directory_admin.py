"""Directory administration and the sharing-application workflow over mTLS, against
a running gateway: roles, etags, pagination, and changes that take effect at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from govshare.adapters.simulators import Population
from govshare.api.directory.v1 import directory_pb2 as pb
from govshare.api.directory.v1 import directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig
from sqlalchemy import event
from support import CIVIL_AFFAIRS, HOUSING, LAND_REGISTRY, Pki, RunningGateway, error_info

MARRIAGE = "101002/00001"
HOUSING_MATTER = "330100-ZF-0003"


def _directory(
    gateway: RunningGateway, who: str
) -> tuple[grpc.aio.Channel, directory_pb2_grpc.DirectoryServiceStub]:
    channel = gateway.channel(getattr(gateway.pki, who))
    return channel, directory_pb2_grpc.DirectoryServiceStub(channel)


async def _marriage_as_housing(gateway: RunningGateway, citizen_id: str) -> Any:
    """The housing bureau asks for a marriage record; returns evidence or the error."""
    async with gateway.channel(gateway.pki.housing) as channel:
        try:
            return await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="marriage_record",
                    holder=exchange_pb2.Holder(id_type="111", id=citizen_id),
                    matter_code=HOUSING_MATTER,
                    purpose="公租房资格审核核验婚姻状况",
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            return error


def _application() -> pb.SharingApplication:
    return pb.SharingApplication(
        resource=f"resources/{MARRIAGE}",
        data_items=["marital_status", "spouse_name"],
        matter_codes=[HOUSING_MATTER],
        purpose="公租房资格审核需核验申请人婚姻状况",
        legal_basis="《公共租赁住房管理办法》第七条",
        valid_from="2026-01-01",
        valid_until="2028-12-31",
    )


class TestApplicationWorkflowAtRuntime:
    async def test_an_approved_grant_works_at_once_and_a_revoked_one_stops_at_once(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Apply, approve, use, revoke: each step changes the very next exchange call."""
        citizen = population.person_with_marriage_and_property().citizen_id
        before = await _marriage_as_housing(gateway, citizen)
        assert error_info(before).reason == "GRANT_REQUIRED"
        channel, housing = _directory(gateway, "housing")
        async with channel:
            applied = await housing.CreateSharingApplication(
                pb.CreateSharingApplicationRequest(
                    sharing_application=_application(), request_id="apply-1"
                )
            )
        assert applied.state == pb.APPLICATION_STATE_APPLIED
        assert (applied.consumer, applied.provider) == (
            f"departments/{HOUSING}",
            f"departments/{CIVIL_AFFAIRS}",
        )
        assert applied.due_date > "2026-11-23"
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            approved = await civil.ApproveSharingApplication(
                pb.ApproveSharingApplicationRequest(name=applied.name)
            )
        allowed = await _marriage_as_housing(gateway, citizen)
        assert set(allowed.fields) == {"marital_status", "spouse_name"}
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            await civil.RevokeSharingApplication(
                pb.RevokeSharingApplicationRequest(
                    name=approved.name, reason="申请单位不再办理该事项"
                )
            )
        after = await _marriage_as_housing(gateway, citizen)
        assert error_info(after).reason == "GRANT_REQUIRED"

    async def test_only_the_provider_decides_and_strangers_learn_nothing(
        self, gateway: RunningGateway
    ) -> None:
        """Another department gets PERMISSION_DENIED for a real and for a missing application alike."""
        channel, housing = _directory(gateway, "housing")
        async with channel:
            applied = await housing.CreateSharingApplication(
                pb.CreateSharingApplicationRequest(sharing_application=_application())
            )
        channel, land = _directory(gateway, "land_registry")
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as real:
                await land.ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name=applied.name)
                )
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await land.ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name="sharingApplications/does-not-exist")
                )
        for raised in (real, missing):
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_info(raised.value).reason == "ROLE_REQUIRED"
        denied = [
            json.loads(r["leaf"])
            for r in gateway.audit_rows()
            if r["method"] == "DirectoryService.ApproveSharingApplication"
        ]
        assert [(d["consumer"], d["outcome"]) for d in denied] == [(LAND_REGISTRY, "DENIED")] * 2

    async def test_illegal_transitions_are_failed_precondition(
        self, gateway: RunningGateway
    ) -> None:
        """Approving twice, or revoking an undecided application, is FAILED_PRECONDITION."""
        channel, housing = _directory(gateway, "housing")
        async with channel:
            applied = await housing.CreateSharingApplication(
                pb.CreateSharingApplicationRequest(sharing_application=_application())
            )
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as early_revoke:
                await civil.RevokeSharingApplication(
                    pb.RevokeSharingApplicationRequest(name=applied.name)
                )
            with pytest.raises(grpc.aio.AioRpcError) as no_reason:
                await civil.RejectSharingApplication(
                    pb.RejectSharingApplicationRequest(name=applied.name)
                )
            await civil.ApproveSharingApplication(
                pb.ApproveSharingApplicationRequest(name=applied.name)
            )
            with pytest.raises(grpc.aio.AioRpcError) as twice:
                await civil.ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name=applied.name)
                )
        assert early_revoke.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class TestCatalogueAdministration:
    async def test_departments_and_auditors_may_not_write(self, gateway: RunningGateway) -> None:
        """Catalogue writes by a department or an auditor are ROLE_REQUIRED, and logged."""
        for who in ("land_registry", "auditor"):
            channel, stub = _directory(gateway, who)
            async with channel:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await stub.PublishResource(
                        pb.PublishResourceRequest(name=f"resources/{MARRIAGE}")
                    )
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_info(raised.value).reason == "ROLE_REQUIRED"
        logged = [
            json.loads(r["leaf"])
            for r in gateway.audit_rows()
            if r["method"] == "DirectoryService.PublishResource"
        ]
        assert [(d["consumer"], d["reason"]) for d in logged] == [
            (LAND_REGISTRY, "ROLE_REQUIRED"),
            ("auditor/audit-office", "ROLE_REQUIRED"),
        ]

    async def test_create_publish_and_a_stale_etag(self, gateway: RunningGateway) -> None:
        """A generated code, DRAFT -> PUBLISHED, and an update with an old etag is ABORTED."""
        channel, admin = _directory(gateway, "admin")
        async with channel:
            request = pb.CreateResourceRequest(
                resource=pb.Resource(
                    display_name="社会组织登记信息",
                    classification="基础",
                    provider=f"departments/{CIVIL_AFFAIRS}",
                    summary="社会团体、民办非企业单位登记信息",
                    format="服务接口",
                    data_items=[pb.DataItem(name="org_name", label="名称", data_type="string")],
                    sharing_type=pb.SHARING_TYPE_UNCONDITIONAL,
                    sharing_method="接口",
                    update_cycle="每日",
                    publish_date="2026-11-23",
                ),
                classification_code="102003",
                request_id="create-org",
            )
            created = await admin.CreateResource(request)
            again = await admin.CreateResource(request)  # a retry: same id, same body
            published = await admin.PublishResource(
                pb.PublishResourceRequest(name=created.name, etag=created.etag)
            )
            stale = pb.Resource(name=created.name, etag=created.etag, summary="改")
            with pytest.raises(grpc.aio.AioRpcError) as conflict:
                await admin.UpdateResource(
                    pb.UpdateResourceRequest(
                        resource=stale, update_mask=field_mask_pb2.FieldMask(paths=["summary"])
                    )
                )
            fresh = pb.Resource(
                name=created.name, etag=published.etag, summary="社会组织登记基本信息"
            )
            updated = await admin.UpdateResource(
                pb.UpdateResourceRequest(
                    resource=fresh, update_mask=field_mask_pb2.FieldMask(paths=["summary"])
                )
            )
        assert created.code == "102003/00001"
        assert created.state == pb.RESOURCE_STATE_DRAFT
        assert again.name == created.name  # the retry with the same request id replays
        assert published.state == pb.RESOURCE_STATE_PUBLISHED
        assert conflict.value.code() == grpc.StatusCode.ABORTED
        assert (updated.summary, updated.version) == ("社会组织登记基本信息", published.version + 1)
        assert gateway.gateway.catalogue.resources["102003/00001"].summary == "社会组织登记基本信息"

    async def test_a_suspended_department_is_denied_on_its_next_call(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Suspending the land registry makes its next exchange call CALLER_SUSPENDED."""
        channel, admin = _directory(gateway, "admin")
        async with channel:
            current = await admin.GetDepartment(
                pb.GetDepartmentRequest(name=f"departments/{LAND_REGISTRY}")
            )
            current.state = pb.DEPARTMENT_STATE_SUSPENDED
            await admin.UpdateDepartment(
                pb.UpdateDepartmentRequest(
                    department=current, update_mask=field_mask_pb2.FieldMask(paths=["state"])
                )
            )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="business_licence",
                        holder=exchange_pb2.Holder(
                            id_type="001", id=population.active_company().uscc
                        ),
                        matter_code="330100-BDC-0001",
                        purpose="核验",
                    ),
                    timeout=10,
                )
        assert error_info(raised.value).reason == "CALLER_SUSPENDED"

    async def test_filtered_pages_and_a_token_bound_to_its_filter(
        self, gateway: RunningGateway
    ) -> None:
        """A filtered list pages through every match; its token with another filter is refused."""
        channel, stub = _directory(gateway, "land_registry")
        query = f'provider = "departments/{"11330100002482102G"}" OR sharing_type = CONDITIONAL'
        async with channel:
            first = await stub.ListResources(
                pb.ListResourcesRequest(page_size=2, filter=query, order_by="code desc")
            )
            seen = [r.code for r in first.resources]
            token = first.next_page_token
            while token:
                page = await stub.ListResources(
                    pb.ListResourcesRequest(
                        page_size=2, filter=query, order_by="code desc", page_token=token
                    )
                )
                seen += [r.code for r in page.resources]
                token = page.next_page_token
            with pytest.raises(grpc.aio.AioRpcError) as changed:
                await stub.ListResources(
                    pb.ListResourcesRequest(
                        page_size=2,
                        filter="sharing_type = CONDITIONAL",
                        page_token=first.next_page_token,
                    )
                )
        assert seen == [
            "301001/00001",
            "105003/00001",
            "105002/00001",
            "101002/00001",
            "101001/00001",
        ]
        assert first.total_size == 5
        assert changed.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async def test_changes_are_events_and_reach_the_audit_log(
        self, gateway: RunningGateway
    ) -> None:
        """A change is listed as an event with before and after, and appended to the log."""
        channel, admin = _directory(gateway, "admin")
        async with channel:
            await admin.RetireResource(pb.RetireResourceRequest(name="resources/301001/00001"))
            events = await admin.ListDirectoryEvents(
                pb.ListDirectoryEventsRequest(filter='target = "resources/301001/00001"')
            )
        assert [e.action for e in events.directory_events][-1:] == ["resource.retire"]
        last = events.directory_events[-1]
        assert json.loads(last.before_json)["state"] == "PUBLISHED"
        assert json.loads(last.after_json)["state"] == "RETIRED"
        assert last.actor == "admin/ops"
        logged = [
            json.loads(gateway.audit_entry(i)["leaf"])
            for i in range(gateway.gateway.access_log.committed[0])
        ]
        forwarded = [r["event"] for r in logged if r["method"] == "DirectoryEvent"]
        assert forwarded[-1]["seq"] == last.seq
        assert forwarded[-1]["after"]["state"] == "RETIRED"


@pytest.fixture
async def polling_gateway(
    simulators: dict[str, str], tmp_path: Path, pki: Pki
) -> AsyncIterator[RunningGateway]:
    config = GatewayConfig(
        data_dir=tmp_path / "polling",
        pki_dir=pki.folder,
        listen="127.0.0.1:0",
        registries=simulators,
        directory_poll_seconds=0.1,
    )
    async with Gateway(config) as started:
        yield RunningGateway(started, pki)


class TestSnapshot:
    async def test_the_hot_path_does_not_query_the_directory_database(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Twenty exchange calls run no SQL against the directory store."""
        statements: list[str] = []
        engine = gateway.gateway.store._engine.sync_engine

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            async with gateway.channel(gateway.pki.land_registry) as channel:
                stub = gateway.exchange(channel)
                for person in population.persons[:20]:
                    await stub.GetCertificate(
                        exchange_pb2.GetCertificateRequest(
                            certificate_type="identity_record",
                            holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
                            matter_code="330100-BDC-0001",
                            purpose="核验",
                        ),
                        timeout=10,
                    )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert statements == []

    async def test_a_change_made_elsewhere_is_picked_up_without_restart(
        self, polling_gateway: RunningGateway
    ) -> None:
        """A write straight to the store (another replica, the CLI) reaches the snapshot by polling."""
        gateway = polling_gateway.gateway
        resource = await gateway.store.get_resource("301001/00001")
        await gateway.store.retire_resource(resource.code, actor="admin/elsewhere")
        for _ in range(50):
            if gateway.catalogue.resources["301001/00001"].state.value == "RETIRED":
                break
            await asyncio.sleep(0.1)
        assert gateway.catalogue.resources["301001/00001"].state.value == "RETIRED"


class TestConfiguredCalendar:
    async def test_holidays_from_configuration_push_the_due_date(
        self, simulators: dict[str, str], tmp_path: Path, pki: Pki
    ) -> None:
        """With the next three weeks configured as holidays, a 2-working-day application is due after them."""
        today = dt.date.today()
        holidays = tuple((today + dt.timedelta(days=n)).isoformat() for n in range(-1, 22))
        config = GatewayConfig(
            data_dir=tmp_path / "calendar",
            pki_dir=pki.folder,
            listen="127.0.0.1:0",
            registries=simulators,
            application_due_working_days=2,
            holidays=holidays,
        )
        async with Gateway(config) as started:
            gateway = RunningGateway(started, pki)
            channel, housing = _directory(gateway, "housing")
            async with channel:
                applied = await housing.CreateSharingApplication(
                    pb.CreateSharingApplicationRequest(sharing_application=_application())
                )
        due = dt.date.fromisoformat(applied.due_date)
        assert due > today + dt.timedelta(days=21)
        assert due <= today + dt.timedelta(days=21 + 5)
