"""Who is calling: taken only from the verified TLS client certificate.

A principal is the certificate's single URI SAN
`spiffe://<trust-domain>/<kind>/<name>`: `dept/<USCC>` for a department,
`admin/<name>` or `auditor/<name>`. Metadata headers are never consulted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ._errors import GovshareError, Reason
from ._pki import _PRINCIPAL_NAME

__all__ = ["Principal", "Role", "principal_from_auth_context"]


class Role(StrEnum):
    DEPARTMENT = "dept"
    ADMIN = "admin"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; `name` is the USCC for departments."""

    role: Role
    name: str

    @property
    def label(self) -> str:
        """How the caller appears in logs and audit records."""
        return self.name if self.role is Role.DEPARTMENT else f"{self.role.value}/{self.name}"


def principal_from_auth_context(
    auth_context: Mapping[str, Iterable[bytes]], trust_domain: str
) -> Principal:
    """The principal named by the peer certificate, or CALLER_UNKNOWN."""
    # gRPC sets peer_spiffe_id only when the certificate has exactly one URI
    # SAN, which is the rule we want: an ambiguous certificate names nobody.
    values = list(auth_context.get("peer_spiffe_id", ()))
    if len(values) != 1:
        raise GovshareError(Reason.CALLER_UNKNOWN, "client certificate names no principal")
    uri = values[0].decode("utf-8", "replace")
    prefix = f"spiffe://{trust_domain}/"
    if not uri.startswith(prefix):
        raise GovshareError(
            Reason.CALLER_UNKNOWN, "client certificate is from another trust domain"
        )
    kind, _, name = uri[len(prefix) :].partition("/")
    try:
        role = Role(kind)
    except ValueError:
        raise GovshareError(
            Reason.CALLER_UNKNOWN, "client certificate names no known role"
        ) from None
    # The name must be one we could have issued: this also keeps out what the
    # SPIFFE ID spec forbids (query, fragment, empty, "." or ".." segments,
    # percent-encoding), which a CA other than ours might still have signed.
    if _PRINCIPAL_NAME.fullmatch(name) is None:
        raise GovshareError(Reason.CALLER_UNKNOWN, "client certificate names no principal")
    return Principal(role, name)
