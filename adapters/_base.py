"""The seam between the gateway and a registry (前置机).

An adapter answers one question: "what does this registry hold about this
holder for this resource?" It returns data items by catalogue name in
canonical string form, and knows nothing of callers, grants or signing.

Errors an adapter raises::

    ProviderError
    ├── HolderNotFound       the registry has no record for the holder
    ├── ProviderUnavailable  refused, reset, 5xx or an unreadable answer
    └── ProviderTimeout      no answer within the time the caller allowed
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Adapter",
    "HolderNotFound",
    "LookupRequest",
    "ProviderError",
    "ProviderRecord",
    "ProviderTimeout",
    "ProviderUnavailable",
]


@dataclass(frozen=True, slots=True)
class LookupRequest:
    """One lookup: a holder's record of one catalogue resource."""

    resource_code: str
    holder_id_type: str
    holder_id: str
    request_id: str


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """A registry's record mapped to catalogue data items.

    Values are canonical strings: dates `YYYY-MM-DD`, decimals without
    exponent, booleans `true`/`false`; an absent value is left out.
    """

    fields: Mapping[str, str]


class ProviderError(Exception):
    """A registry could not answer; the message never holds a holder id."""


class HolderNotFound(ProviderError):
    """The registry holds no record for the holder."""


class ProviderUnavailable(ProviderError):
    """The registry refused the connection, failed, or answered garbage."""


class ProviderTimeout(ProviderError):
    """The registry did not answer within the allowed time."""


class Adapter(Protocol):
    """What the gateway needs from a registry adapter."""

    def serves(self, resource_code: str) -> bool:
        """Whether this adapter answers for `resource_code`."""
        ...

    async def lookup(self, request: LookupRequest, *, timeout: float) -> ProviderRecord:
        """Fetch the holder's record, within `timeout` seconds."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
