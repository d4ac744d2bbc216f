"""DirectoryService reads over mTLS: registered callers list and get, paged."""

from __future__ import annotations

import grpc
import pytest
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from support import RunningGateway, error_info


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
