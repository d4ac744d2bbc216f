"""The govshare gateway: identity, policy, exchange, evidence, audit log, CLI."""

from __future__ import annotations

from ._auditlog import (
    AccessLog,
    AccessLogError,
    ChainVerification,
    PendingAppend,
    SqliteAccessLog,
    verify_hash_chain,
)
from ._client import client_credentials, open_channel
from ._config import GatewayConfig
from ._errors import ERROR_DOMAIN, GovshareError, Reason, grpc_code_of, to_grpc_status
from ._evidence import (
    SIGNING_ALGORITHMS,
    EvidenceSigner,
    EvidenceVerification,
    canonical_json,
    load_or_create_signer,
    verify_evidence,
)
from ._holder import HolderIdProtector, mask_holder_id
from ._identity import Principal, Role, principal_from_auth_context
from ._pki import DEFAULT_TRUST_DOMAIN, DevPki, IssuedCertificate, principal_uri
from ._policy import Decision, authorize_department, decide
from ._server import Gateway

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "ERROR_DOMAIN",
    "SIGNING_ALGORITHMS",
    "AccessLog",
    "AccessLogError",
    "ChainVerification",
    "Decision",
    "DevPki",
    "EvidenceSigner",
    "EvidenceVerification",
    "Gateway",
    "GatewayConfig",
    "GovshareError",
    "HolderIdProtector",
    "IssuedCertificate",
    "PendingAppend",
    "Principal",
    "Reason",
    "Role",
    "SqliteAccessLog",
    "authorize_department",
    "canonical_json",
    "client_credentials",
    "decide",
    "grpc_code_of",
    "load_or_create_signer",
    "mask_holder_id",
    "open_channel",
    "principal_from_auth_context",
    "principal_uri",
    "to_grpc_status",
    "verify_evidence",
    "verify_hash_chain",
]
