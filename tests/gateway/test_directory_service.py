"""DirectoryService over mTLS: registered callers list and get, paged; updates that
round-trip what a Get returned; refusals that are clear, and logged when they refuse
a write."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.directory.v1 import directory_pb2 as pb
from govshare.directory import ApplicationRequest, SqlCatalogueStore, load_builtin_catalogue
from govshare.gateway import DirectoryServicer
from support import CIVIL_AFFAIRS, HOUSING, LAND_REGISTRY, RunningGateway, error_info

MARRIAGE = "resources/101002/00001"


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _stub(channel: grpc.aio.Channel) -> directory_pb2_grpc.DirectoryServiceStub:
    return directory_pb2_grpc.DirectoryServiceStub(channel)


def _application(**changes: Any) -> pb.SharingApplication:
    fields: dict[str, Any] = {
        "resource": MARRIAGE,
        "data_items": ["marital_status"],
        "matter_codes": ["330100-ZF-0003"],
        "purpose": "公租房资格审核核验婚姻状况",
        "valid_from": "2026-01-01",
        "valid_until": "2028-12-31",
        **changes,
    }
    return pb.SharingApplication(**fields)


async def _refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


class TestReads:
    async def test_resources_page_through_the_whole_catalogue(
        self, gateway: RunningGateway
    ) -> None:
        """Pages of two cover every resource exactly once, then the token is empty."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            seen: list[str] = []
            token = ""
            for _ in range(10):
                page = await stub.ListResources(
                    directory_pb2.ListResourcesRequest(page_size=2, page_token=token)
                )
                assert len(page.resources) <= 2
                seen += [r.code for r in page.resources]
                token = page.next_page_token
                if not token:
                    break
        assert seen == sorted(gateway.gateway.catalogue.resources)
        assert len(seen) == len(set(seen)) == 6

    async def test_get_resource_carries_sharing_metadata(self, gateway: RunningGateway) -> None:
        """A NOT_SHARED resource shows its legal basis; data items keep their types."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            resource = await stub.GetResource(
                directory_pb2.GetResourceRequest(name="resources/301001/00001")
            )
            ctype = await stub.GetCertificateType(
                directory_pb2.GetCertificateTypeRequest(name="certificateTypes/business_licence")
            )
        assert resource.sharing_type == directory_pb2.SHARING_TYPE_NOT_SHARED
        assert resource.legal_basis.startswith("《公安机关办理犯罪记录查询工作规定》")
        assert ctype.holder_id_type == "001"
        assert "legal_representative" in ctype.face_fields

    async def test_departments_show_the_suspended_state(self, gateway: RunningGateway) -> None:
        """The suspended department is listed as SUSPENDED."""
        async with gateway.channel(gateway.pki.admin) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            reply = await stub.ListDepartments(directory_pb2.ListDepartmentsRequest(page_size=100))
        states = {d.uscc: d.state for d in reply.departments}
        assert states["113301000024821083"] == directory_pb2.DEPARTMENT_STATE_SUSPENDED
        assert len(states) == 8


class TestReadErrors:
    async def test_an_unregistered_department_may_not_read(self, gateway: RunningGateway) -> None:
        """Permission comes before existence: an unknown caller learns nothing."""
        async with gateway.channel(gateway.pki.unregistered) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetResource(directory_pb2.GetResourceRequest(name="resources/nope"))
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(raised.value).reason == "CALLER_UNKNOWN"

    async def test_missing_resource_and_bad_token(self, gateway: RunningGateway) -> None:
        """An unknown name is NOT_FOUND; a forged page token is INVALID_ARGUMENT."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = directory_pb2_grpc.DirectoryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetResource(
                    directory_pb2.GetResourceRequest(name="resources/999999/00001")
                )
            with pytest.raises(grpc.aio.AioRpcError) as forged:
                await stub.ListResources(
                    directory_pb2.ListResourcesRequest(page_token="not-a-token")
                )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(missing.value).reason == "RESOURCE_NOT_FOUND"
        assert forged.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(forged.value).reason == "PAGE_TOKEN_INVALID"


class TestResourceUpdates:
    async def test_a_resource_read_back_updates_without_a_mask(
        self, gateway: RunningGateway
    ) -> None:
        """Get, change the summary, Update with no mask: the PUBLISHED resource stays PUBLISHED."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            current = await admin.GetResource(pb.GetResourceRequest(name=MARRIAGE))
            current.summary = "结婚、离婚及补领登记信息"
            updated = await admin.UpdateResource(pb.UpdateResourceRequest(resource=current))
            star = await admin.UpdateResource(
                pb.UpdateResourceRequest(resource=updated, update_mask=_mask("*"))
            )
        assert (updated.state, updated.summary) == (
            pb.RESOURCE_STATE_PUBLISHED,
            "结婚、离婚及补领登记信息",
        )
        assert star.version == updated.version  # the same content again writes nothing

    async def test_state_in_the_mask_retires(self, gateway: RunningGateway) -> None:
        """update_mask=state with RETIRED retires a PUBLISHED resource, as the decisions say."""
        async with gateway.channel(gateway.pki.admin) as channel:
            retired = await _stub(channel).UpdateResource(
                pb.UpdateResourceRequest(
                    resource=pb.Resource(name=MARRIAGE, state=pb.RESOURCE_STATE_RETIRED),
                    update_mask=_mask("state"),
                )
            )
        assert retired.state == pb.RESOURCE_STATE_RETIRED
        assert gateway.gateway.catalogue.resources["101002/00001"].state.value == "RETIRED"

    async def test_star_does_not_fill_an_unset_sharing_type(self, gateway: RunningGateway) -> None:
        """update_mask `*` with no sharing type is INVALID_ARGUMENT, not a silent UNCONDITIONAL."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            current = await admin.GetResource(pb.GetResourceRequest(name=MARRIAGE))
            current.ClearField("sharing_type")
            refused = await _refusal(
                admin.UpdateResource(
                    pb.UpdateResourceRequest(resource=current, update_mask=_mask("*"))
                )
            )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert gateway.gateway.catalogue.resources["101002/00001"].sharing_type.value == (
            "CONDITIONAL"
        )


class TestCertificateTypeUpdates:
    async def test_update_by_the_name_a_get_returned(self, gateway: RunningGateway) -> None:
        """UpdateCertificateType with name and etag set (as documented) changes the type."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            current = await admin.GetCertificateType(
                pb.GetCertificateTypeRequest(name="certificateTypes/business_licence")
            )
            updated = await admin.UpdateCertificateType(
                pb.UpdateCertificateTypeRequest(
                    certificate_type=pb.CertificateType(
                        name=current.name, display_name="营业执照(电子)", etag=current.etag
                    ),
                    update_mask=_mask("display_name"),
                )
            )
        assert (updated.name, updated.key, updated.display_name) == (
            current.name,
            "business_licence",
            "营业执照(电子)",
        )

    async def test_a_key_that_contradicts_the_name_is_refused(
        self, gateway: RunningGateway
    ) -> None:
        """A name of one type with the key of another is INVALID_ARGUMENT, and nothing changes."""
        async with gateway.channel(gateway.pki.admin) as channel:
            refused = await _refusal(
                _stub(channel).UpdateCertificateType(
                    pb.UpdateCertificateTypeRequest(
                        certificate_type=pb.CertificateType(
                            name="certificateTypes/business_licence",
                            key="identity_record",
                            display_name="混淆",
                        ),
                        update_mask=_mask("display_name"),
                    )
                )
            )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused).reason == "REQUEST_INVALID"


class TestProviderSeesGrantsOnItsResources:
    async def test_a_provider_lists_the_grants_on_its_resources(
        self, gateway: RunningGateway
    ) -> None:
        """Civil affairs lists grants on the marriage records it provides, and no others;
        a department that provides nothing lists only what it holds."""
        async with gateway.channel(gateway.pki.civil_affairs) as channel:
            civil = _stub(channel)
            mine = await civil.ListGrants(pb.ListGrantsRequest())
            filtered = await civil.ListGrants(
                pb.ListGrantsRequest(filter='resource = "101002/00001"')
            )
        assert [(g.name, g.consumer) for g in mine.grants] == [
            ("grants/g-bdc-marriage", f"departments/{LAND_REGISTRY}")
        ]
        assert [g.name for g in filtered.grants] == ["grants/g-bdc-marriage"]
        async with gateway.channel(gateway.pki.housing) as channel:
            held = await _stub(channel).ListGrants(pb.ListGrantsRequest())
        # The housing bureau provides nothing: it still lists only the grants it holds.
        assert {g.consumer for g in held.grants} == {f"departments/{HOUSING}"}

    async def test_a_provider_of_many_resources_still_lists_its_grants(
        self, gateway: RunningGateway
    ) -> None:
        """With 70 more resources provided, civil affairs' grant list works as before (the
        ownership rule is no filter text that grows with them), and its page token is
        refused to another department."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            for n in range(70):
                await admin.CreateResource(
                    pb.CreateResourceRequest(
                        resource=pb.Resource(
                            code=f"101002/{n + 100:05d}",
                            display_name=f"婚姻相关{n}",
                            provider=f"departments/{CIVIL_AFFAIRS}",
                            sharing_type=pb.SHARING_TYPE_CONDITIONAL,
                            sharing_condition="依申请",
                            data_items=[pb.DataItem(name="a", label="甲", data_type="string")],
                        )
                    )
                )
        async with gateway.channel(gateway.pki.civil_affairs) as channel:
            mine = await _stub(channel).ListGrants(pb.ListGrantsRequest())
        assert [g.name for g in mine.grants] == ["grants/g-bdc-marriage"]
        async with gateway.channel(gateway.pki.land_registry) as channel:
            first = await _stub(channel).ListGrants(pb.ListGrantsRequest(page_size=1))
        assert first.next_page_token
        async with gateway.channel(gateway.pki.housing) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as crossed:
                await _stub(channel).ListGrants(
                    pb.ListGrantsRequest(page_size=1, page_token=first.next_page_token)
                )
        assert error_info(crossed.value).reason == "PAGE_TOKEN_INVALID"


class TestDepartmentsSeeTheirOwnApplications:
    async def test_consumer_and_provider_see_an_application_and_others_do_not(
        self, gateway: RunningGateway
    ) -> None:
        """The applying and the providing department list an application, a third does
        not, an administrator does; a department's long filter keeps its whole length
        limit (the restriction is no filter text), and its page token is its own."""
        async with gateway.channel(gateway.pki.housing) as channel:
            applied = await _stub(channel).CreateSharingApplication(
                pb.CreateSharingApplicationRequest(sharing_application=_application())
            )
            again = await _stub(channel).CreateSharingApplication(
                pb.CreateSharingApplicationRequest(
                    sharing_application=_application(purpose="公租房复核核验婚姻状况")
                )
            )
        # Long but valid: 1,990 characters of the user's own filter.
        padded = 'resource != "' + "x" * (1990 - len('resource != ""')) + '"'
        assert len(padded) == 1990
        seen: dict[str, list[str]] = {}
        for who, client in (
            ("housing", gateway.pki.housing),
            ("civil", gateway.pki.civil_affairs),
            ("land", gateway.pki.land_registry),
            ("admin", gateway.pki.admin),
        ):
            async with gateway.channel(client) as channel:
                listed = await _stub(channel).ListSharingApplications(
                    pb.ListSharingApplicationsRequest(filter=padded)
                )
            seen[who] = [a.name for a in listed.sharing_applications]
        assert seen["housing"] == seen["civil"] == [applied.name, again.name]
        assert applied.name not in seen["land"]
        assert {applied.name, again.name} <= set(seen["admin"])
        async with gateway.channel(gateway.pki.admin) as channel:
            first = await _stub(channel).ListSharingApplications(
                pb.ListSharingApplicationsRequest(page_size=1)
            )
        assert first.next_page_token
        async with gateway.channel(gateway.pki.housing) as channel:
            crossed = await _refusal(
                _stub(channel).ListSharingApplications(
                    pb.ListSharingApplicationsRequest(page_size=1, page_token=first.next_page_token)
                )
            )
        assert error_info(crossed).reason == "PAGE_TOKEN_INVALID"


class TestApprovalOfAStaleApplication:
    async def test_no_grant_after_the_resource_became_not_shared(
        self, gateway: RunningGateway
    ) -> None:
        """An application made before the resource became NOT_SHARED is not approved."""
        async with gateway.channel(gateway.pki.housing) as channel:
            applied = await _stub(channel).CreateSharingApplication(
                pb.CreateSharingApplicationRequest(sharing_application=_application())
            )
        async with gateway.channel(gateway.pki.admin) as channel:
            await _stub(channel).UpdateResource(
                pb.UpdateResourceRequest(
                    resource=pb.Resource(
                        name=MARRIAGE,
                        sharing_type=pb.SHARING_TYPE_NOT_SHARED,
                        legal_basis="《婚姻登记档案管理办法》",
                    ),
                    update_mask=_mask("sharing_type", "legal_basis"),
                )
            )
        async with gateway.channel(gateway.pki.civil_affairs) as channel:
            refused = await _refusal(
                _stub(channel).ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name=applied.name)
                )
            )
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(refused).reason == "RESOURCE_NOT_SHARED"
        assert gateway.gateway.catalogue.grants_for(HOUSING, "101002/00001") == ()


def _denials(gateway: RunningGateway, method: str) -> list[tuple[str, str]]:
    return [
        (record["consumer"], record["reason"])
        for record in (json.loads(row["leaf"]) for row in gateway.audit_rows())
        if record["method"] == f"DirectoryService.{method}"
    ]


class TestRefusedWritesAreLogged:
    async def test_every_refused_write_leaves_a_denied_record(
        self, gateway: RunningGateway
    ) -> None:
        """A stale etag, a bad field and a missing item each leave a DENIED row with the
        reason the caller was sent; a refused read leaves none."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            stale = await _refusal(
                admin.DeleteMatter(
                    pb.DeleteMatterRequest(name="matters/330100-BDC-0001", etag="stale")
                )
            )
            invalid = await _refusal(
                admin.CreateDepartment(
                    pb.CreateDepartmentRequest(department=pb.Department(uscc="bad"))
                )
            )
            missing = await _refusal(
                admin.RejectSharingApplication(
                    pb.RejectSharingApplicationRequest(name="sharingApplications/nope", reason="x")
                )
            )
            await _refusal(admin.GetMatter(pb.GetMatterRequest(name="matters/nope")))
        assert [error_info(e).reason for e in (stale, invalid, missing)] == [
            "ETAG_MISMATCH",
            "REQUEST_INVALID",
            "RESOURCE_NOT_FOUND",
        ]
        assert _denials(gateway, "DeleteMatter") == [("admin/ops", "ETAG_MISMATCH")]
        assert _denials(gateway, "CreateDepartment") == [("admin/ops", "REQUEST_INVALID")]
        assert _denials(gateway, "RejectSharingApplication") == [
            ("admin/ops", "RESOURCE_NOT_FOUND")
        ]
        assert _denials(gateway, "GetMatter") == []


class TestClearRefusals:
    async def test_a_matter_name_in_the_mask_is_refused(self, gateway: RunningGateway) -> None:
        """update_mask=name (the AIP resource name) is UPDATE_MASK_INVALID, not a rename."""
        async with gateway.channel(gateway.pki.admin) as channel:
            admin = _stub(channel)
            refused = await _refusal(
                admin.UpdateMatter(
                    pb.UpdateMatterRequest(
                        matter=pb.Matter(name="matters/330100-BDC-0001", display_name="被改名"),
                        update_mask=_mask("name"),
                    )
                )
            )
            kept = await admin.GetMatter(pb.GetMatterRequest(name="matters/330100-BDC-0001"))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused).reason == "UPDATE_MASK_INVALID"
        assert kept.display_name != "被改名"

    @pytest.mark.parametrize("date", ["20260101", "2026-W01-1"])
    async def test_application_dates_are_yyyy_mm_dd_only(
        self, gateway: RunningGateway, date: str
    ) -> None:
        """A validity date in another ISO 8601 form is INVALID_ARGUMENT naming the field."""
        async with gateway.channel(gateway.pki.housing) as channel:
            refused = await _refusal(
                _stub(channel).CreateSharingApplication(
                    pb.CreateSharingApplicationRequest(
                        sharing_application=_application(valid_from=date)
                    )
                )
            )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "valid_from" in refused.details()

    async def test_a_name_from_another_collection_is_invalid(self, gateway: RunningGateway) -> None:
        """`resources/…` given to GetDepartment is INVALID_ARGUMENT, not NOT_FOUND."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            refused = await _refusal(
                _stub(channel).GetDepartment(pb.GetDepartmentRequest(name=MARRIAGE))
            )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused).reason == "REQUEST_INVALID"


class _AdminContext:
    """Just enough of a ServicerContext for a servicer called without a server."""

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"peer_spiffe_id": [b"spiffe://govshare.local/admin/ops"]}

    async def abort(self, code: grpc.StatusCode, details: str, metadata: Any = None) -> None:
        raise AssertionError(f"{code}: {details}")


class TestOverdueAgreesWithTheStore:
    async def test_the_overdue_flag_uses_the_stores_day(self, tmp_path: Path) -> None:
        """At 01:30 Beijing time the day after the due date (still the due day in UTC), the
        `overdue` flag and the `overdue = true` filter agree: overdue."""
        created = dt.datetime(2099, 3, 3, 1, 0, tzinfo=dt.UTC)  # due 2099-03-17
        now = dt.datetime(2099, 3, 17, 17, 30, tzinfo=dt.UTC)  # 2099-03-18 in Beijing
        url = f"sqlite+aiosqlite:///{tmp_path / 'directory.db'}"
        first = SqlCatalogueStore(url, clock=lambda: created)
        await first.create_schema()
        await first.replace(load_builtin_catalogue())
        app = await first.create_application(
            ApplicationRequest(
                HOUSING,
                "101002/00001",
                ("marital_status",),
                ("330100-ZF-0003",),
                "公租房资格审核",
                "",
                dt.date(2099, 1, 1),
                dt.date(2099, 12, 31),
            ),
            actor=f"dept/{HOUSING}",
        )
        await first.close()
        store = SqlCatalogueStore(url, clock=lambda: now)
        catalogue = await store.load()

        async def nothing(*_: Any) -> None:
            return None

        servicer = DirectoryServicer(
            store=store,
            catalogue=lambda: catalogue,
            trust_domain="govshare.local",
            on_change=nothing,
            on_denied=nothing,
        )
        try:
            listed = await servicer.ListSharingApplications(
                pb.ListSharingApplicationsRequest(filter="overdue = true"),
                _AdminContext(),  # type: ignore[arg-type]
            )
            assert await store.count_overdue(provider=CIVIL_AFFAIRS) == 1
        finally:
            await store.close()
        assert app.due_date == dt.date(2099, 3, 17)
        assert [(a.name, a.overdue) for a in listed.sharing_applications] == [
            (f"sharingApplications/{app.application_id}", True)
        ]
