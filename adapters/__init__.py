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

__all__ = [
    "Adapter",
    "HolderNotFound",
    "LookupRequest",
    "ProviderError",
    "ProviderRecord",
    "ProviderTimeout",
    "ProviderUnavailable",
]
