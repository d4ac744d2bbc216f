"""The catalogue model (政务信息资源目录编制指南), independent of storage and RPC.

Every item carries an `etag` derived from its content (a hash over every other
field, `version` included). Because the store bumps `version` on each change,
the etag changes on each change, is identical on every replica without being
stored, and a snapshot parsed from YAML equals the same snapshot loaded from SQL.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ApplicationState",
    "Catalogue",
    "CertificateType",
    "DataItem",
    "Department",
    "DepartmentState",
    "DirectoryEvent",
    "Grant",
    "GrantState",
    "Material",
    "MaterialSource",
    "Matter",
    "Resource",
    "ResourceState",
    "SharingApplication",
    "SharingType",
    "content_etag",
]


class SharingType(StrEnum):
    """共享类型: 无条件共享 / 有条件共享 / 不予共享."""

    UNCONDITIONAL = "UNCONDITIONAL"
    CONDITIONAL = "CONDITIONAL"
    NOT_SHARED = "NOT_SHARED"


class ResourceState(StrEnum):
    """Lifecycle of a resource (DRAFT → PUBLISHED → RETIRED); only PUBLISHED is shareable."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    RETIRED = "RETIRED"


class DepartmentState(StrEnum):
    """A SUSPENDED department is denied everywhere."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class GrantState(StrEnum):
    """Only ACTIVE grants are served; REVOKED and EXPIRED stay on record."""

    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class ApplicationState(StrEnum):
    """共享申请: APPLIED → APPROVED | REJECTED; APPROVED → REVOKED | EXPIRED."""

    APPLIED = "APPLIED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class MaterialSource(StrEnum):
    """Where a matter's material comes from: shared (certificate or resource) or the applicant."""

    CERTIFICATE_TYPE = "CERTIFICATE_TYPE"
    RESOURCE = "RESOURCE"
    APPLICANT_SUBMITS = "APPLICANT_SUBMITS"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "etag"
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.date):  # datetime is a date subclass
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def content_etag(item: object) -> str:
    """A strong etag over every field of `item` but `etag` itself."""
    canonical = json.dumps(
        _plain(item), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode()
    return hashlib.sha256(canonical).hexdigest()[:24]


def _set_etag(item: object) -> None:
    # Frozen dataclasses are set through object.__setattr__, the documented escape hatch.
    object.__setattr__(item, "etag", content_etag(item))


def _etag_field() -> Any:
    # A fresh Field per class: dataclasses mutates the Field object it is given.
    return field(init=False, repr=False, compare=False, default="")


@dataclass(frozen=True, slots=True)
class Department:
    """A department, identified by its unified social credit code."""

    uscc: str
    display_name: str
    region_code: str
    state: DepartmentState = DepartmentState.ACTIVE
    version: int = 1
    delete_time: _dt.datetime | None = None
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    @property
    def deleted(self) -> bool:
        return self.delete_time is not None


@dataclass(frozen=True, slots=True)
class DataItem:
    """信息项: a named, typed field of a resource."""

    name: str
    label: str
    data_type: str
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Resource:
    """政务信息资源 with its core metadata."""

    code: str
    display_name: str
    classification: str
    provider: str
    summary: str
    format: str
    data_items: tuple[DataItem, ...]
    sharing_type: SharingType
    sharing_method: str
    update_cycle: str
    publish_date: str
    sharing_condition: str = ""
    legal_basis: str = ""
    open_to_public: bool = False
    state: ResourceState = ResourceState.PUBLISHED
    version: int = 1
    delete_time: _dt.datetime | None = None
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    @property
    def data_item_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.data_items)

    @property
    def deleted(self) -> bool:
        return self.delete_time is not None


@dataclass(frozen=True, slots=True)
class CertificateType:
    """电子证照类型 (GB/T 36903): which resource governs its sharing."""

    key: str
    type_code: str
    display_name: str
    holder_id_type: str
    issuer: str
    resource: str
    version: int = 1
    delete_time: _dt.datetime | None = None
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    @property
    def deleted(self) -> bool:
        return self.delete_time is not None


@dataclass(frozen=True, slots=True)
class Material:
    """申请材料 of a matter: obtained by sharing (certificate type or resource) or submitted.

    `source_key` is a certificate type key (CERTIFICATE_TYPE), a resource code
    (RESOURCE) or empty (APPLICANT_SUBMITS); `data_items` optionally narrows
    what the matter needs of the source.
    """

    name: str
    source: MaterialSource
    source_key: str = ""
    data_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Matter:
    """政务服务事项 with the materials an applicant would otherwise hand in."""

    code: str
    name: str
    materials: tuple[Material, ...]
    version: int = 1
    delete_time: _dt.datetime | None = None
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    @property
    def deleted(self) -> bool:
        return self.delete_time is not None


@dataclass(frozen=True, slots=True)
class Grant:
    """授权: a consumer may use some data items of a resource for some matters."""

    grant_id: str
    consumer: str
    resource: str
    data_items: frozenset[str]
    matter_codes: frozenset[str]
    valid_from: _dt.date
    valid_until: _dt.date
    state: GrantState = GrantState.ACTIVE
    application_id: str = ""
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    def is_valid_on(self, day: _dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


@dataclass(frozen=True, slots=True)
class SharingApplication:
    """共享申请 by a consumer for a CONDITIONAL resource; approval creates the grant.

    `provider` is the department that answers for the application, so the gateway
    can let only that department (or an administrator) decide: the resource's
    provider, followed while the application is APPLIED or APPROVED (the store
    re-points it when an update moves the resource); a decided one keeps the
    provider it was decided under.
    """

    application_id: str
    consumer: str
    provider: str
    resource: str
    data_items: tuple[str, ...]
    matter_codes: tuple[str, ...]
    purpose: str
    legal_basis: str
    valid_from: _dt.date
    valid_until: _dt.date
    create_time: _dt.datetime
    due_date: _dt.date
    state: ApplicationState = ApplicationState.APPLIED
    update_time: _dt.datetime | None = None
    decided_by: str = ""
    decide_time: _dt.datetime | None = None
    reason: str = ""
    grant_id: str = ""
    etag: str = _etag_field()

    def __post_init__(self) -> None:
        _set_etag(self)

    def is_overdue(self, today: _dt.date) -> bool:
        """电子监察: still undecided after its due date."""
        return self.state is ApplicationState.APPLIED and today > self.due_date


@dataclass(frozen=True, slots=True)
class DirectoryEvent:
    """One directory change: who did what to which item, with the item before and after.

    `before` is None for a creation; `after` is None only for events that
    remove nothing but describe a bulk operation. Both are the item's document
    (the export format), so an auditor can diff them without this code.
    """

    seq: int
    time: _dt.datetime
    actor: str
    action: str
    target: str
    request_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


@dataclass(frozen=True)
class Catalogue:
    """An immutable snapshot of the directory, indexed for the request path.

    Soft-deleted items stay in the mappings (they remain readable) but the
    lookups the exchange relies on — `certificate_type`, `matter`,
    `grants_for` — skip what may no longer be shared. `revision` is the store
    revision the snapshot was loaded at (0 when not loaded from a store).
    """

    departments: Mapping[str, Department]
    resources: Mapping[str, Resource]
    certificate_types: Mapping[str, CertificateType]
    grants: tuple[Grant, ...]
    matters: Mapping[str, Matter] = field(default_factory=dict)
    revision: int = field(default=0, compare=False)
    _grants_by_consumer_resource: dict[tuple[str, str], tuple[Grant, ...]] = field(
        init=False, repr=False, compare=False
    )
    _certificate_types_by_code: dict[str, CertificateType] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], list[Grant]] = {}
        for grant in self.grants:
            # A revoked grant is gone at once; an expired one stays indexed so the
            # denial can say GRANT_EXPIRED (policy checks the dates either way).
            if grant.state is not GrantState.REVOKED:
                index.setdefault((grant.consumer, grant.resource), []).append(grant)
        object.__setattr__(
            self,
            "_grants_by_consumer_resource",
            {key: tuple(value) for key, value in index.items()},
        )
        object.__setattr__(
            self,
            "_certificate_types_by_code",
            {ct.type_code: ct for ct in self.certificate_types.values()},
        )

    @classmethod
    def build(
        cls,
        departments: Iterable[Department],
        resources: Iterable[Resource],
        certificate_types: Iterable[CertificateType],
        grants: Iterable[Grant],
        matters: Iterable[Matter] = (),
        *,
        revision: int = 0,
    ) -> Catalogue:
        return cls(
            departments={d.uscc: d for d in departments},
            resources={r.code: r for r in resources},
            certificate_types={c.key: c for c in certificate_types},
            grants=tuple(grants),
            matters={m.code: m for m in matters},
            revision=revision,
        )

    def grants_for(self, consumer: str, resource: str) -> tuple[Grant, ...]:
        """Grants naming `consumer` on `resource` that are not revoked, valid today or not."""
        return self._grants_by_consumer_resource.get((consumer, resource), ())

    def certificate_type(self, key_or_code: str) -> CertificateType | None:
        """A certificate type that is not deleted, by its 21-character type code or its key.

        The type code first: it is the type's AIP name (`certificateTypes/{type_code}`),
        so a key that happens to equal another type's code (new ones are refused) cannot
        take that name over. Two dict lookups at most: this is on the exchange's hot path.
        """
        found = self._certificate_types_by_code.get(key_or_code)
        if found is None:
            found = self.certificate_types.get(key_or_code)
        return None if found is None or found.deleted else found

    def matter(self, code: str) -> Matter | None:
        """A matter that is not deleted, by its code."""
        found = self.matters.get(code)
        return None if found is None or found.deleted else found
