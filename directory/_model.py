"""The catalogue model (政务信息资源目录编制指南), independent of storage and RPC."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Catalogue",
    "CertificateType",
    "DataItem",
    "Department",
    "DepartmentState",
    "Grant",
    "Resource",
    "ResourceState",
    "SharingType",
]


class SharingType(StrEnum):
    """共享类型: 无条件共享 / 有条件共享 / 不予共享."""

    UNCONDITIONAL = "UNCONDITIONAL"
    CONDITIONAL = "CONDITIONAL"
    NOT_SHARED = "NOT_SHARED"


class ResourceState(StrEnum):
    """Lifecycle of a resource; only PUBLISHED resources are shareable."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    RETIRED = "RETIRED"


class DepartmentState(StrEnum):
    """A SUSPENDED department is denied everywhere."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


@dataclass(frozen=True, slots=True)
class Department:
    """A department, identified by its unified social credit code."""

    uscc: str
    display_name: str
    region_code: str
    state: DepartmentState = DepartmentState.ACTIVE


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

    @property
    def data_item_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.data_items)


@dataclass(frozen=True, slots=True)
class CertificateType:
    """电子证照类型 (GB/T 36903): which resource governs its sharing."""

    key: str
    type_code: str
    display_name: str
    holder_id_type: str
    issuer: str
    resource: str


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

    def is_valid_on(self, day: _dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


@dataclass(frozen=True)
class Catalogue:
    """An immutable snapshot of the directory, indexed for the request path."""

    departments: Mapping[str, Department]
    resources: Mapping[str, Resource]
    certificate_types: Mapping[str, CertificateType]
    grants: tuple[Grant, ...]
    _grants_by_consumer_resource: dict[tuple[str, str], tuple[Grant, ...]] = field(
        init=False, repr=False, compare=False
    )
    _certificate_types_by_code: dict[str, CertificateType] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], list[Grant]] = {}
        for grant in self.grants:
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
    ) -> Catalogue:
        return cls(
            departments={d.uscc: d for d in departments},
            resources={r.code: r for r in resources},
            certificate_types={c.key: c for c in certificate_types},
            grants=tuple(grants),
        )

    def grants_for(self, consumer: str, resource: str) -> tuple[Grant, ...]:
        """Grants naming `consumer` on `resource`, valid or not."""
        return self._grants_by_consumer_resource.get((consumer, resource), ())

    def certificate_type(self, key_or_code: str) -> CertificateType | None:
        """Look up a certificate type by its key or its 21-character type code."""
        found = self.certificate_types.get(key_or_code)
        return found if found is not None else self._certificate_types_by_code.get(key_or_code)
