"""DirectoryService after the reviewer's findings, against a running gateway: a resource's
applications are decided by whoever provides it now, a busy or unreachable directory
database is UNAVAILABLE with an ErrorInfo and a DENIED record, data items in use stay,
and a certificate type's name cannot be shadowed by another type's key."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import field_mask_pb2
from govshare.api.directory.v1 import directory_pb2 as pb
from govshare.api.directory.v1 import directory_pb2_grpc
from govshare.directory import export_catalogue_yaml, import_catalogue_yaml
from sqlalchemy.exc import OperationalError
from support import CIVIL_AFFAIRS, HOUSING, LAND_REGISTRY, RunningGateway, error_info

MARRIAGE = "101002/00001"
REAL_ESTATE = "105002/00001"
MARRIAGE_TYPE_CODE = "11330100002482103K001"  # marriage_record in the seed
TAX_OFFICE = "11330100002482105R"


def _directory(
    gateway: RunningGateway, who: str
) -> tuple[grpc.aio.Channel, directory_pb2_grpc.DirectoryServiceStub]:
    channel = gateway.channel(getattr(gateway.pki, who))
    return channel, directory_pb2_grpc.DirectoryServiceStub(channel)


async def _apply_for_marriage(gateway: RunningGateway) -> pb.SharingApplication:
    channel, housing = _directory(gateway, "housing")
    async with channel:
        applied: pb.SharingApplication = await housing.CreateSharingApplication(
            pb.CreateSharingApplicationRequest(
                sharing_application=pb.SharingApplication(
                    resource=f"resources/{MARRIAGE}",
                    data_items=["marital_status"],
                    matter_codes=["330100-ZF-0003"],
                    purpose="公租房资格审核需核验申请人婚姻状况",
                    valid_from="2026-01-01",
                    valid_until="2028-12-31",
                )
            )
        )
    return applied


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _denials(gateway: RunningGateway, method: str) -> list[tuple[str, str, str]]:
    return [
        (row["outcome"], row["reason"], row["consumer"])
        for row in gateway.audit_rows()
        if row["method"] == f"DirectoryService.{method}"
    ]


class TestDecisionsFollowTheProvider:
    async def test_after_a_move_only_the_new_provider_decides_and_lists_it(
        self, gateway: RunningGateway
    ) -> None:
        """UpdateResource moves MARRIAGE from civil affairs to the land registry: the
        former provider's approval is PERMISSION_DENIED (and logged), it no longer lists
        the application; the new provider lists it, as its provider, and approves it."""
        applied = await _apply_for_marriage(gateway)
        channel, admin = _directory(gateway, "admin")
        async with channel:
            await admin.UpdateResource(
                pb.UpdateResourceRequest(
                    resource=pb.Resource(
                        name=f"resources/{MARRIAGE}", provider=f"departments/{LAND_REGISTRY}"
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["provider"]),
                )
            )
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            refused = await _refused(
                civil.ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name=applied.name)
                )
            )
            listed = await civil.ListSharingApplications(pb.ListSharingApplicationsRequest())
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(refused).reason == "ROLE_REQUIRED"
        assert ("DENIED", "ROLE_REQUIRED", CIVIL_AFFAIRS) in _denials(
            gateway, "ApproveSharingApplication"
        )
        assert applied.name not in [a.name for a in listed.sharing_applications]
        channel, land = _directory(gateway, "land_registry")
        async with channel:
            mine = await land.ListSharingApplications(
                pb.ListSharingApplicationsRequest(
                    filter=f'provider = "departments/{LAND_REGISTRY}" AND state = APPLIED'
                )
            )
            assert [a.name for a in mine.sharing_applications] == [applied.name]
            assert mine.sharing_applications[0].provider == f"departments/{LAND_REGISTRY}"
            approved = await land.ApproveSharingApplication(
                pb.ApproveSharingApplicationRequest(name=applied.name)
            )
        assert approved.state == pb.APPLICATION_STATE_APPROVED
        assert approved.decided_by == LAND_REGISTRY

    async def test_a_resource_moved_by_an_import_is_not_decided_by_its_former_provider(
        self, gateway: RunningGateway
    ) -> None:
        """A catalogue import (beside the live gateway, like `govshare directory import`)
        moves the resource without touching the application: the department that gave the
        data up may not decide it; an administrator still may."""
        applied = await _apply_for_marriage(gateway)
        store = gateway.gateway.store
        document = yaml.safe_load(await export_catalogue_yaml(store))
        for resource in document["resources"]:
            if resource["code"] == MARRIAGE:
                resource["provider"] = LAND_REGISTRY
        await import_catalogue_yaml(
            yaml.safe_dump(document, allow_unicode=True), store, "admin/ops", source="moved.yaml"
        )
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            refused = await _refused(
                civil.ApproveSharingApplication(
                    pb.ApproveSharingApplicationRequest(name=applied.name)
                )
            )
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        channel, admin = _directory(gateway, "admin")
        async with channel:
            approved = await admin.ApproveSharingApplication(
                pb.ApproveSharingApplicationRequest(name=applied.name)
            )
        assert approved.state == pb.APPLICATION_STATE_APPROVED

    async def test_the_consumer_still_reads_and_the_stranger_still_does_not(
        self, gateway: RunningGateway
    ) -> None:
        """The move changes who provides, not who applied: the consumer keeps its
        application; a department that is neither party learns nothing."""
        applied = await _apply_for_marriage(gateway)
        channel, admin = _directory(gateway, "admin")
        async with channel:
            await admin.UpdateResource(
                pb.UpdateResourceRequest(
                    resource=pb.Resource(
                        name=f"resources/{MARRIAGE}", provider=f"departments/{LAND_REGISTRY}"
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["provider"]),
                )
            )
        channel, housing = _directory(gateway, "housing")
        async with channel:
            mine = await housing.GetSharingApplication(
                pb.GetSharingApplicationRequest(name=applied.name)
            )
        assert (mine.consumer, mine.provider) == (
            f"departments/{HOUSING}",
            f"departments/{LAND_REGISTRY}",
        )
        channel, civil = _directory(gateway, "civil_affairs")
        async with channel:
            refused = await _refused(
                civil.GetSharingApplication(pb.GetSharingApplicationRequest(name=applied.name))
            )
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


class TestDirectoryDatabaseUnavailable:
    async def test_a_write_while_another_process_holds_the_lock(
        self, gateway: RunningGateway, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Past SQLite's busy timeout the write is UNAVAILABLE / DIRECTORY_UNAVAILABLE
        with no SQL in the message, a DENIED record in the audit log and the exception in
        the operators' log; once the lock is gone the same request goes through."""
        path = gateway.gateway.config.data_dir / "directory.db"
        locked, release = threading.Event(), threading.Event()

        def hold_lock() -> None:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # what any other writer's transaction holds
                locked.set()
                release.wait(60)
                conn.execute("ROLLBACK")
            finally:
                conn.close()

        holder = threading.Thread(target=hold_lock)
        holder.start()
        request = pb.CreateDepartmentRequest(
            department=pb.Department(uscc="91110108551385082Q", display_name="市大数据局"),
            request_id="busy-1",
        )
        channel, admin = _directory(gateway, "admin")
        try:
            assert await asyncio.to_thread(locked.wait, 10)
            with caplog.at_level(logging.ERROR, logger="govshare.gateway"):
                async with channel:
                    refused = await _refused(admin.CreateDepartment(request, timeout=60))
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        assert refused.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(refused).reason == "DIRECTORY_UNAVAILABLE"
        details = refused.details() or ""
        assert "SQL" not in details
        assert "directory_revision" not in details
        assert [d[:2] for d in _denials(gateway, "CreateDepartment")] == [
            ("DENIED", "DIRECTORY_UNAVAILABLE")
        ]
        logged = [r for r in caplog.records if r.name == "govshare.gateway"]
        assert logged
        assert logged[0].exc_info is not None
        assert isinstance(logged[0].exc_info[1], OperationalError)
        channel, admin = _directory(gateway, "admin")
        async with channel:
            created = await admin.CreateDepartment(request)
        assert created.name == "departments/91110108551385082Q"

    async def test_an_unreachable_database_is_unavailable_for_reads_and_writes(
        self, gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """asyncpg raises OSError itself when PostgreSQL refuses the connection: a read is
        UNAVAILABLE too (reads leave no record), a write also leaves its DENIED record."""

        async def refused(*_: Any, **__: Any) -> Any:
            raise ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)")

        store = gateway.gateway.store
        monkeypatch.setattr(store, "get_resource", refused)
        monkeypatch.setattr(store, "delete_matter", refused)
        channel, admin = _directory(gateway, "admin")
        async with channel:
            read = await _refused(
                admin.GetResource(pb.GetResourceRequest(name=f"resources/{MARRIAGE}"))
            )
            write = await _refused(
                admin.DeleteMatter(pb.DeleteMatterRequest(name="matters/330100-ZF-0003"))
            )
        for failure in (read, write):
            assert failure.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(failure).reason == "DIRECTORY_UNAVAILABLE"
            assert "10.0.0.5" not in (failure.details() or "")
        assert not _denials(gateway, "GetResource")
        assert [d[:2] for d in _denials(gateway, "DeleteMatter")] == [
            ("DENIED", "DIRECTORY_UNAVAILABLE")
        ]


class TestCatalogueIntegrityOverGrpc:
    async def test_removing_a_data_item_in_use_is_failed_precondition(
        self, gateway: RunningGateway
    ) -> None:
        """UpdateResource dropping `area` names the grant and the matter using it, and
        the refusal is logged with the reason sent."""
        channel, admin = _directory(gateway, "admin")
        async with channel:
            resource = await admin.GetResource(
                pb.GetResourceRequest(name=f"resources/{REAL_ESTATE}")
            )
            kept = [item for item in resource.data_items if item.name != "area"]
            del resource.data_items[:]
            resource.data_items.extend(kept)
            refused = await _refused(
                admin.UpdateResource(
                    pb.UpdateResourceRequest(
                        resource=resource,
                        update_mask=field_mask_pb2.FieldMask(paths=["data_items"]),
                    )
                )
            )
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info(refused)
        assert info.reason == "DATA_ITEMS_IN_USE"
        assert (info.metadata["grants"], info.metadata["matters"]) == (
            "g-bdc-realestate",
            "330100-ZF-0003",
        )
        assert [d[:2] for d in _denials(gateway, "UpdateResource")] == [
            ("DENIED", "DATA_ITEMS_IN_USE")
        ]

    async def test_a_key_shaped_like_a_type_code_is_refused(self, gateway: RunningGateway) -> None:
        """CreateCertificateType with marriage_record's type code as its key is
        INVALID_ARGUMENT on `key`; certificateTypes/<that code> still names marriage_record."""
        channel, admin = _directory(gateway, "admin")
        async with channel:
            refused = await _refused(
                admin.CreateCertificateType(
                    pb.CreateCertificateTypeRequest(
                        certificate_type=pb.CertificateType(
                            key=MARRIAGE_TYPE_CODE,
                            type_code=f"{TAX_OFFICE}002",
                            display_name="完税证明(新版)",
                            holder_id_type="111",
                            issuer=f"departments/{TAX_OFFICE}",
                            resource="resources/105003/00001",
                        )
                    )
                )
            )
            marriage = await admin.GetCertificateType(
                pb.GetCertificateTypeRequest(name=f"certificateTypes/{MARRIAGE_TYPE_CODE}")
            )
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused).reason == "REQUEST_INVALID"
        assert (marriage.key, marriage.name) == (
            "marriage_record",
            f"certificateTypes/{MARRIAGE_TYPE_CODE}",
        )
