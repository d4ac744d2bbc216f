"""The government information-resource directory: model, validation, stores."""

from __future__ import annotations

from ._model import (
    Catalogue,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    Grant,
    Resource,
    ResourceState,
    SharingType,
)
from ._seed import CatalogueError, load_builtin_catalogue, load_catalogue, parse_catalogue
from ._store import CatalogueStore, SqlCatalogueStore
from ._validation import (
    HOLDER_ID_TYPE_CITIZEN_ID,
    HOLDER_ID_TYPE_USCC,
    certificate_identifier_check_character,
    citizen_id_check_character,
    is_valid_certificate_identifier,
    is_valid_citizen_id,
    is_valid_holder_id,
    is_valid_resource_code,
    is_valid_uscc,
    uscc_check_character,
)

__all__ = [
    "HOLDER_ID_TYPE_CITIZEN_ID",
    "HOLDER_ID_TYPE_USCC",
    "Catalogue",
    "CatalogueError",
    "CatalogueStore",
    "CertificateType",
    "DataItem",
    "Department",
    "DepartmentState",
    "Grant",
    "Resource",
    "ResourceState",
    "SharingType",
    "SqlCatalogueStore",
    "certificate_identifier_check_character",
    "citizen_id_check_character",
    "is_valid_certificate_identifier",
    "is_valid_citizen_id",
    "is_valid_holder_id",
    "is_valid_resource_code",
    "is_valid_uscc",
    "load_builtin_catalogue",
    "load_catalogue",
    "parse_catalogue",
    "uscc_check_character",
]
