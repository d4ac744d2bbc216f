"""DirectoryService: the catalogue and the sharing-application workflow over gRPC.

Who may do what (from the certificate's role, checked before anything is read):

    reads (departments, resources, types, matters)  department · admin · auditor
    catalogue writes                                 admin
    apply for a resource                             department (as the consumer)
    approve / reject an application                  the providing department · admin
    revoke an application or grant                   provider · consumer · admin
    applications and grants                          admin · auditor see all; a
                                                     department sees those it
                                                     consumes or provides
    directory events                                 admin · auditor

A department asking about an application or grant that is not its own gets
PERMISSION_DENIED whether or not it exists. Every successful write refreshes
the gateway's catalogue snapshot before the answer, so the next exchange call
sees it; every refused write is written to the audit log.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from govshare.api.directory.v1 import directory_pb2 as pb
from govshare.api.directory.v1 import directory_pb2_grpc
from govshare.directory import InvalidArgument

from . import _directory_codec as codec
from ._directory_access import (
    _ADMIN,
    _APPLY,
    _DECIDE,
    _OVERSEE,
    Context,
    DirectoryAccess,
    _list_args,
)
from ._errors import GovshareError, Reason
from ._identity import Principal, Role

__all__ = ["DirectoryServicer"]


class DirectoryServicer(DirectoryAccess, directory_pb2_grpc.DirectoryServiceServicer):
    """Each method: a role set, then one call into the directory room."""

    # --- departments ---------------------------------------------------------------

    async def ListDepartments(
        self, request: pb.ListDepartmentsRequest, context: Context
    ) -> pb.ListDepartmentsResponse:
        async def body(_: Principal) -> pb.ListDepartmentsResponse:
            page = await self._store.list_departments(
                **_list_args(request), show_deleted=request.show_deleted
            )
            return pb.ListDepartmentsResponse(
                departments=[codec.department_to_pb(d) for d in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListDepartments", body)

    async def GetDepartment(
        self, request: pb.GetDepartmentRequest, context: Context
    ) -> pb.Department:
        async def body(_: Principal) -> pb.Department:
            uscc = codec.name_id(request.name, "departments")
            return codec.department_to_pb(await self._store.get_department(uscc))

        return await self._read(context, "GetDepartment", body)

    async def CreateDepartment(
        self, request: pb.CreateDepartmentRequest, context: Context
    ) -> pb.Department:
        async def body(caller: Principal) -> pb.Department:
            created = await self._store.create_department(
                codec.department_from_pb(request.department),
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.department_to_pb(created)

        return await self._write(context, "CreateDepartment", _ADMIN, request.request_id, body)

    async def UpdateDepartment(
        self, request: pb.UpdateDepartmentRequest, context: Context
    ) -> pb.Department:
        async def body(caller: Principal) -> pb.Department:
            updated = await self._store.update_department(
                codec.department_from_pb(request.department, list(request.update_mask.paths)),
                update_mask=codec.mask_paths(request.update_mask.paths),
                etag=request.department.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.department_to_pb(updated)

        return await self._write(context, "UpdateDepartment", _ADMIN, request.request_id, body)

    async def DeleteDepartment(
        self, request: pb.DeleteDepartmentRequest, context: Context
    ) -> pb.Department:
        async def body(caller: Principal) -> pb.Department:
            deleted = await self._store.delete_department(
                codec.name_id(request.name, "departments"),
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.department_to_pb(deleted)

        return await self._write(context, "DeleteDepartment", _ADMIN, request.request_id, body)

    # --- resources -----------------------------------------------------------------

    async def ListResources(
        self, request: pb.ListResourcesRequest, context: Context
    ) -> pb.ListResourcesResponse:
        async def body(_: Principal) -> pb.ListResourcesResponse:
            page = await self._store.list_resources(
                **_list_args(request), show_deleted=request.show_deleted
            )
            return pb.ListResourcesResponse(
                resources=[codec.resource_to_pb(r) for r in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListResources", body)

    async def GetResource(self, request: pb.GetResourceRequest, context: Context) -> pb.Resource:
        async def body(_: Principal) -> pb.Resource:
            return codec.resource_to_pb(
                await self._store.get_resource(codec.name_id(request.name, "resources"))
            )

        return await self._read(context, "GetResource", body)

    async def CreateResource(
        self, request: pb.CreateResourceRequest, context: Context
    ) -> pb.Resource:
        async def body(caller: Principal) -> pb.Resource:
            created = await self._store.create_resource(
                codec.resource_from_pb(request.resource),
                classification_code=request.classification_code,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.resource_to_pb(created)

        return await self._write(context, "CreateResource", _ADMIN, request.request_id, body)

    async def UpdateResource(
        self, request: pb.UpdateResourceRequest, context: Context
    ) -> pb.Resource:
        async def body(caller: Principal) -> pb.Resource:
            updated = await self._store.update_resource(
                codec.resource_from_pb(request.resource, list(request.update_mask.paths)),
                update_mask=codec.mask_paths(request.update_mask.paths),
                etag=request.resource.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.resource_to_pb(updated)

        return await self._write(context, "UpdateResource", _ADMIN, request.request_id, body)

    async def PublishResource(
        self, request: pb.PublishResourceRequest, context: Context
    ) -> pb.Resource:
        async def body(caller: Principal) -> pb.Resource:
            published = await self._store.publish_resource(
                codec.name_id(request.name, "resources"),
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.resource_to_pb(published)

        return await self._write(context, "PublishResource", _ADMIN, request.request_id, body)

    async def RetireResource(
        self, request: pb.RetireResourceRequest, context: Context
    ) -> pb.Resource:
        async def body(caller: Principal) -> pb.Resource:
            retired = await self._store.retire_resource(
                codec.name_id(request.name, "resources"),
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.resource_to_pb(retired)

        return await self._write(context, "RetireResource", _ADMIN, request.request_id, body)

    async def DeleteResource(
        self, request: pb.DeleteResourceRequest, context: Context
    ) -> pb.Resource:
        async def body(caller: Principal) -> pb.Resource:
            deleted = await self._store.delete_resource(
                codec.name_id(request.name, "resources"),
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.resource_to_pb(deleted)

        return await self._write(context, "DeleteResource", _ADMIN, request.request_id, body)

    # --- certificate types ---------------------------------------------------------

    async def ListCertificateTypes(
        self, request: pb.ListCertificateTypesRequest, context: Context
    ) -> pb.ListCertificateTypesResponse:
        async def body(_: Principal) -> pb.ListCertificateTypesResponse:
            page = await self._store.list_certificate_types(
                **_list_args(request), show_deleted=request.show_deleted
            )
            catalogue = self._catalogue()
            return pb.ListCertificateTypesResponse(
                certificate_types=[codec.certificate_type_to_pb(c, catalogue) for c in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListCertificateTypes", body)

    async def GetCertificateType(
        self, request: pb.GetCertificateTypeRequest, context: Context
    ) -> pb.CertificateType:
        async def body(_: Principal) -> pb.CertificateType:
            found = await self._store.get_certificate_type(
                codec.name_id(request.name, "certificateTypes")
            )
            return codec.certificate_type_to_pb(found, self._catalogue())

        return await self._read(context, "GetCertificateType", body)

    async def CreateCertificateType(
        self, request: pb.CreateCertificateTypeRequest, context: Context
    ) -> pb.CertificateType:
        async def body(caller: Principal) -> pb.CertificateType:
            created = await self._store.create_certificate_type(
                codec.certificate_type_from_pb(request.certificate_type),
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.certificate_type_to_pb(created, self._catalogue())

        return await self._write(context, "CreateCertificateType", _ADMIN, request.request_id, body)

    async def UpdateCertificateType(
        self, request: pb.UpdateCertificateTypeRequest, context: Context
    ) -> pb.CertificateType:
        async def body(caller: Principal) -> pb.CertificateType:
            sent = request.certificate_type
            updated = await self._store.update_certificate_type(
                dataclasses.replace(
                    codec.certificate_type_from_pb(sent), key=await self._certificate_type_key(sent)
                ),
                update_mask=codec.mask_paths(request.update_mask.paths),
                etag=request.certificate_type.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.certificate_type_to_pb(updated, self._catalogue())

        return await self._write(context, "UpdateCertificateType", _ADMIN, request.request_id, body)

    async def _certificate_type_key(self, message: pb.CertificateType) -> str:
        """The key of the type an update names: its AIP name (type code or key) decides, as on
        Get and Delete; a bare `key` serves callers that never had the name."""
        if not message.name:
            if not message.key:
                raise InvalidArgument([("certificate_type.name", "name the type to update")])
            return message.key
        found = await self._store.get_certificate_type(
            codec.name_id(message.name, "certificateTypes")
        )
        if message.key and message.key != found.key:
            raise InvalidArgument([("certificate_type.key", f"is not the key of {message.name}")])
        return found.key

    async def DeleteCertificateType(
        self, request: pb.DeleteCertificateTypeRequest, context: Context
    ) -> pb.CertificateType:
        async def body(caller: Principal) -> pb.CertificateType:
            found = await self._store.get_certificate_type(
                codec.name_id(request.name, "certificateTypes")
            )
            deleted = await self._store.delete_certificate_type(
                found.key, etag=request.etag, actor=caller.label, request_id=request.request_id
            )
            return codec.certificate_type_to_pb(deleted, self._catalogue())

        return await self._write(context, "DeleteCertificateType", _ADMIN, request.request_id, body)

    # --- matters -------------------------------------------------------------------

    async def ListMatters(
        self, request: pb.ListMattersRequest, context: Context
    ) -> pb.ListMattersResponse:
        async def body(_: Principal) -> pb.ListMattersResponse:
            page = await self._store.list_matters(
                **_list_args(request), show_deleted=request.show_deleted
            )
            return pb.ListMattersResponse(
                matters=[codec.matter_to_pb(m) for m in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListMatters", body)

    async def GetMatter(self, request: pb.GetMatterRequest, context: Context) -> pb.Matter:
        async def body(_: Principal) -> pb.Matter:
            return codec.matter_to_pb(
                await self._store.get_matter(codec.name_id(request.name, "matters"))
            )

        return await self._read(context, "GetMatter", body)

    async def CreateMatter(self, request: pb.CreateMatterRequest, context: Context) -> pb.Matter:
        async def body(caller: Principal) -> pb.Matter:
            created = await self._store.create_matter(
                codec.matter_from_pb(request.matter),
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.matter_to_pb(created)

        return await self._write(context, "CreateMatter", _ADMIN, request.request_id, body)

    async def UpdateMatter(self, request: pb.UpdateMatterRequest, context: Context) -> pb.Matter:
        async def body(caller: Principal) -> pb.Matter:
            updated = await self._store.update_matter(
                codec.matter_from_pb(request.matter),
                update_mask=codec.matter_mask(request.update_mask.paths),
                etag=request.matter.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.matter_to_pb(updated)

        return await self._write(context, "UpdateMatter", _ADMIN, request.request_id, body)

    async def DeleteMatter(self, request: pb.DeleteMatterRequest, context: Context) -> pb.Matter:
        async def body(caller: Principal) -> pb.Matter:
            deleted = await self._store.delete_matter(
                codec.name_id(request.name, "matters"),
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.matter_to_pb(deleted)

        return await self._write(context, "DeleteMatter", _ADMIN, request.request_id, body)

    # --- sharing applications ------------------------------------------------------

    async def CreateSharingApplication(
        self, request: pb.CreateSharingApplicationRequest, context: Context
    ) -> pb.SharingApplication:
        async def body(caller: Principal) -> pb.SharingApplication:
            stated = codec.name_id(request.sharing_application.consumer, "departments", "consumer")
            if stated and stated != caller.name:
                raise GovshareError(
                    Reason.ROLE_REQUIRED, "a department applies only for itself", consumer=stated
                )
            created = await self._store.create_application(
                codec.application_request_from_pb(request.sharing_application, caller.name),
                application_id=request.sharing_application_id,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.application_to_pb(created, self._today())

        return await self._write(
            context, "CreateSharingApplication", _APPLY, request.request_id, body
        )

    async def GetSharingApplication(
        self, request: pb.GetSharingApplicationRequest, context: Context
    ) -> pb.SharingApplication:
        async def body(caller: Principal) -> pb.SharingApplication:
            found = await self._application_for(caller, request.name, allow_consumer=True)
            return codec.application_to_pb(found, self._today())

        return await self._read(context, "GetSharingApplication", body)

    async def ListSharingApplications(
        self, request: pb.ListSharingApplicationsRequest, context: Context
    ) -> pb.ListSharingApplicationsResponse:
        async def body(caller: Principal) -> pb.ListSharingApplicationsResponse:
            restriction: dict[str, Any] = {}
            if caller.role is Role.DEPARTMENT:
                # Its own applications, as consumer or provider; a predicate rather than
                # filter text, so the user's filter keeps the whole length limit.
                restriction = {
                    "visible": lambda a: caller.name in (a.consumer, a.provider),
                    "visibility": f"department={caller.name}",
                }
            page = await self._store.list_applications(**_list_args(request), **restriction)
            today = self._today()
            return pb.ListSharingApplicationsResponse(
                sharing_applications=[codec.application_to_pb(a, today) for a in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListSharingApplications", body)

    async def ApproveSharingApplication(
        self, request: pb.ApproveSharingApplicationRequest, context: Context
    ) -> pb.SharingApplication:
        async def body(caller: Principal) -> pb.SharingApplication:
            found = await self._application_for(caller, request.name, allow_consumer=False)
            approved = await self._store.approve_application(
                found.application_id,
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.application_to_pb(approved, self._today())

        return await self._write(
            context, "ApproveSharingApplication", _DECIDE, request.request_id, body
        )

    async def RejectSharingApplication(
        self, request: pb.RejectSharingApplicationRequest, context: Context
    ) -> pb.SharingApplication:
        async def body(caller: Principal) -> pb.SharingApplication:
            found = await self._application_for(caller, request.name, allow_consumer=False)
            rejected = await self._store.reject_application(
                found.application_id,
                reason=request.reason,
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.application_to_pb(rejected, self._today())

        return await self._write(
            context, "RejectSharingApplication", _DECIDE, request.request_id, body
        )

    async def RevokeSharingApplication(
        self, request: pb.RevokeSharingApplicationRequest, context: Context
    ) -> pb.SharingApplication:
        async def body(caller: Principal) -> pb.SharingApplication:
            found = await self._application_for(caller, request.name, allow_consumer=True)
            revoked = await self._store.revoke_application(
                found.application_id,
                reason=request.reason,
                etag=request.etag,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.application_to_pb(revoked, self._today())

        return await self._write(
            context, "RevokeSharingApplication", _DECIDE, request.request_id, body
        )

    # --- grants and events ---------------------------------------------------------

    async def ListGrants(
        self, request: pb.ListGrantsRequest, context: Context
    ) -> pb.ListGrantsResponse:
        async def body(caller: Principal) -> pb.ListGrantsResponse:
            restriction: dict[str, Any] = {}
            if caller.role is Role.DEPARTMENT:
                # A provider may Get and Revoke grants on its resources, so it may list
                # them too. Checked in code: as filter text the clause would grow with
                # every resource provided, past the filter length limit.
                provided = frozenset(
                    code
                    for code, resource in self._catalogue().resources.items()
                    if resource.provider == caller.name
                )
                restriction = {
                    "visible": lambda g: g.consumer == caller.name or g.resource in provided,
                    "visibility": f"department={caller.name}",
                }
            page = await self._store.list_grants(**_list_args(request), **restriction)
            return pb.ListGrantsResponse(
                grants=[codec.grant_to_pb(g) for g in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListGrants", body)

    async def GetGrant(self, request: pb.GetGrantRequest, context: Context) -> pb.Grant:
        async def body(caller: Principal) -> pb.Grant:
            return codec.grant_to_pb(await self._grant_for(caller, request.name))

        return await self._read(context, "GetGrant", body)

    async def RevokeGrant(self, request: pb.RevokeGrantRequest, context: Context) -> pb.Grant:
        async def body(caller: Principal) -> pb.Grant:
            found = await self._grant_for(caller, request.name)
            revoked = await self._store.revoke_grant(
                found.grant_id,
                reason=request.reason,
                actor=caller.label,
                request_id=request.request_id,
            )
            return codec.grant_to_pb(revoked)

        return await self._write(context, "RevokeGrant", _DECIDE, request.request_id, body)

    async def ListDirectoryEvents(
        self, request: pb.ListDirectoryEventsRequest, context: Context
    ) -> pb.ListDirectoryEventsResponse:
        async def body(_: Principal) -> pb.ListDirectoryEventsResponse:
            page = await self._store.list_events(**_list_args(request))
            return pb.ListDirectoryEventsResponse(
                directory_events=[codec.event_to_pb(e) for e in page.items],
                next_page_token=page.next_page_token,
                total_size=page.total_size,
            )

        return await self._read(context, "ListDirectoryEvents", body, _OVERSEE)
