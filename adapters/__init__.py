"""Registry adapters (http_json) and the reference registry simulators."""

from __future__ import annotations

from ._base import (
    Adapter,
    HolderNotFound,
    LookupRequest,
    ProviderError,
    ProviderRecord,
    ProviderTimeout,
    ProviderUnavailable,
)
from ._http_json import HttpJsonAdapter
from ._mapping import (
    FieldMapping,
    NotFoundRule,
    PickRule,
    RegistryMapping,
    RequestTemplate,
    ResourceMapping,
)
from ._mapping_load import load_builtin_mappings, load_mapping, load_mapping_dir, parse_mapping

__all__ = [
    "Adapter",
    "FieldMapping",
    "HolderNotFound",
    "HttpJsonAdapter",
    "LookupRequest",
    "NotFoundRule",
    "PickRule",
    "ProviderError",
    "ProviderRecord",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RegistryMapping",
    "RequestTemplate",
    "ResourceMapping",
    "load_builtin_mappings",
    "load_mapping",
    "load_mapping_dir",
    "parse_mapping",
]
