"""DirectoryService reads: departments, resources and certificate types, paged
from the in-memory catalogue snapshot."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.directory import (
    Catalogue,
    CertificateType,
    Department,
    DepartmentState,
    Resource,
    ResourceState,
    SharingType,
)

from ._errors import GovshareError, Reason, to_grpc_status
from ._identity import Role, principal_from_auth_context

__all__ = ["DirectoryServicer"]

_DEFAULT_PAGE_SIZE = 50
_MAX_PAGE_SIZE = 1000
_T = TypeVar("_T")

_SHARING_TYPES = {
    SharingType.UNCONDITIONAL: directory_pb2.SHARING_TYPE_UNCONDITIONAL,
    SharingType.CONDITIONAL: directory_pb2.SHARING_TYPE_CONDITIONAL,
    SharingType.NOT_SHARED: directory_pb2.SHARING_TYPE_NOT_SHARED,
}
_RESOURCE_STATES = {
    ResourceState.DRAFT: directory_pb2.RESOURCE_STATE_DRAFT,
    ResourceState.PUBLISHED: directory_pb2.RESOURCE_STATE_PUBLISHED,
    ResourceState.RETIRED: directory_pb2.RESOURCE_STATE_RETIRED,
}
_DEPARTMENT_STATES = {
    DepartmentState.ACTIVE: directory_pb2.DEPARTMENT_STATE_ACTIVE,
    DepartmentState.SUSPENDED: directory_pb2.DEPARTMENT_STATE_SUSPENDED,
}


class DirectoryServicer(directory_pb2_grpc.DirectoryServiceServicer):
    """Read access for every registered department, administrator and auditor."""

    def __init__(self, *, catalogue: Callable[[], Catalogue], trust_domain: str) -> None:
        self._catalogue = catalogue
        self._trust_domain = trust_domain

    async def ListDepartments(
        self,
        request: directory_pb2.ListDepartmentsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> directory_pb2.ListDepartmentsResponse:
        catalogue = await self._authorize(context)
        items = sorted(catalogue.departments.values(), key=lambda d: d.uscc)
        page, token = await _page(
            context, "departments", items, request.page_size, request.page_token
        )
        return directory_pb2.ListDepartmentsResponse(
            departments=[_department(d) for d in page], next_page_token=token
        )

    async def GetDepartment(
        self,
        request: directory_pb2.GetDepartmentRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> directory_pb2.Department:
        catalogue = await self._authorize(context)
        found = catalogue.departments.get(_name_id(request.name, "departments/"))
        if found is None:
            await _abort(context, GovshareError(Reason.RESOURCE_NOT_FOUND, "no such department"))
        assert found is not None
        return _department(found)

    async def ListResources(
        self,
        request: directory_pb2.ListResourcesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> directory_pb2.ListResourcesResponse:
        catalogue = await self._authorize(context)
        items = sorted(catalogue.resources.values(), key=lambda r: r.code)
        page, token = await _page(
            context, "resources", items, request.page_size, request.page_token
        )
        return directory_pb2.ListResourcesResponse(
            resources=[_resource(r) for r in page], next_page_token=token
        )

    async def GetResource(
        self, request: directory_pb2.GetResourceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> directory_pb2.Resource:
        catalogue = await self._authorize(context)
        found = catalogue.resources.get(_name_id(request.name, "resources/"))
        if found is None:
            await _abort(context, GovshareError(Reason.RESOURCE_NOT_FOUND, "no such resource"))
        assert found is not None
        return _resource(found)

    async def ListCertificateTypes(
        self,
        request: directory_pb2.ListCertificateTypesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> directory_pb2.ListCertificateTypesResponse:
        catalogue = await self._authorize(context)
        items = sorted(catalogue.certificate_types.values(), key=lambda c: c.type_code)
        page, token = await _page(
            context, "certificateTypes", items, request.page_size, request.page_token
        )
        return directory_pb2.ListCertificateTypesResponse(
            certificate_types=[_certificate_type(c, catalogue) for c in page], next_page_token=token
        )

    async def GetCertificateType(
        self,
        request: directory_pb2.GetCertificateTypeRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> directory_pb2.CertificateType:
        catalogue = await self._authorize(context)
        found = catalogue.certificate_type(_name_id(request.name, "certificateTypes/"))
        if found is None:
            await _abort(
                context, GovshareError(Reason.RESOURCE_NOT_FOUND, "no such certificate type")
            )
        assert found is not None
        return _certificate_type(found, catalogue)

    async def _authorize(self, context: grpc.aio.ServicerContext[Any, Any]) -> Catalogue:
        catalogue = self._catalogue()
        try:
            caller = principal_from_auth_context(context.auth_context(), self._trust_domain)
            if caller.role is Role.DEPARTMENT:
                department = catalogue.departments.get(caller.name)
                if department is None:
                    raise GovshareError(
                        Reason.CALLER_UNKNOWN, "the calling department is not registered"
                    )
                if department.state is DepartmentState.SUSPENDED:
                    raise GovshareError(
                        Reason.CALLER_SUSPENDED, "the calling department is suspended"
                    )
        except GovshareError as error:
            await _abort(context, error)
        return catalogue


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: GovshareError) -> None:
    status = to_grpc_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _name_id(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


async def _page(
    context: grpc.aio.ServicerContext[Any, Any],
    collection: str,
    items: Sequence[_T],
    page_size: int,
    page_token: str,
) -> tuple[Sequence[_T], str]:
    if page_size < 0:
        await _abort(
            context, GovshareError(Reason.REQUEST_INVALID, "page_size must not be negative")
        )
    size = min(page_size or _DEFAULT_PAGE_SIZE, _MAX_PAGE_SIZE)
    offset = 0
    if page_token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(page_token.encode()))
            if decoded["c"] != collection:
                raise ValueError("token for another collection")
            offset = int(decoded["o"])
        except (ValueError, KeyError, TypeError):
            await _abort(context, GovshareError(Reason.REQUEST_INVALID, "page_token is not valid"))
    page = items[offset : offset + size]
    end = offset + len(page)
    token = ""
    if end < len(items):
        token = base64.urlsafe_b64encode(json.dumps({"c": collection, "o": end}).encode()).decode()
    return page, token


def _department(d: Department) -> directory_pb2.Department:
    return directory_pb2.Department(
        name=f"departments/{d.uscc}",
        uscc=d.uscc,
        display_name=d.display_name,
        region_code=d.region_code,
        state=_DEPARTMENT_STATES[d.state],
    )


def _resource(r: Resource) -> directory_pb2.Resource:
    return directory_pb2.Resource(
        name=f"resources/{r.code}",
        code=r.code,
        display_name=r.display_name,
        provider=f"departments/{r.provider}",
        summary=r.summary,
        format=r.format,
        data_items=[
            directory_pb2.DataItem(
                name=i.name, label=i.label, data_type=i.data_type, personal=i.personal
            )
            for i in r.data_items
        ],
        sharing_type=_SHARING_TYPES[r.sharing_type],
        sharing_condition=r.sharing_condition,
        legal_basis=r.legal_basis,
        sharing_method=r.sharing_method,
        open_to_public=r.open_to_public,
        update_cycle=r.update_cycle,
        publish_date=r.publish_date,
        state=_RESOURCE_STATES[r.state],
        version=r.version,
        classification=r.classification,
    )


def _certificate_type(c: CertificateType, catalogue: Catalogue) -> directory_pb2.CertificateType:
    resource = catalogue.resources.get(c.resource)
    return directory_pb2.CertificateType(
        name=f"certificateTypes/{c.type_code}",
        type_code=c.type_code,
        key=c.key,
        display_name=c.display_name,
        holder_id_type=c.holder_id_type,
        issuer=f"departments/{c.issuer}",
        resource=f"resources/{c.resource}",
        face_fields=list(resource.data_item_names) if resource is not None else [],
    )
