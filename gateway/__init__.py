"""The govshare gateway: identity, policy, exchange, evidence, audit log, CLI."""

from __future__ import annotations

from ._auditlog import (
    GENESIS,
    AccessLog,
    AccessLogError,
    ChainVerification,
    PendingAppend,
    SqliteAccessLog,
    leaf_hash,
    verify_hash_chain,
)
from ._cli import main
from ._client import client_credentials, open_channel
from ._config import GatewayConfig
from ._demo import run_demo
from ._directory_service import DirectoryServicer
from ._errors import (
    ERROR_DOMAIN,
    GovshareError,
    Reason,
    error_info_of,
    grpc_code_of,
    to_grpc_status,
)
from ._evidence import (
    SIGNING_ALGORITHMS,
    EvidenceSigner,
    EvidenceVerification,
    canonical_json,
    load_or_create_signer,
    verify_evidence,
)
from ._exchange import ExchangeServicer
from ._holder import HolderIdProtector, mask_holder_id
from ._identity import Principal, Role, principal_from_auth_context
from ._pki import DEFAULT_TRUST_DOMAIN, DevPki, IssuedCertificate, principal_uri
from ._policy import Decision, authorize_department, decide
from ._registry import AdapterRouter
from ._secrets import write_secret
from ._server import Gateway

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "ERROR_DOMAIN",
    "GENESIS",
    "SIGNING_ALGORITHMS",
    "AccessLog",
    "AccessLogError",
    "AdapterRouter",
    "ChainVerification",
    "Decision",
    "DevPki",
    "DirectoryServicer",
    "EvidenceSigner",
    "EvidenceVerification",
    "ExchangeServicer",
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
    "error_info_of",
    "grpc_code_of",
    "leaf_hash",
    "load_or_create_signer",
    "main",
    "mask_holder_id",
    "open_channel",
    "principal_from_auth_context",
    "principal_uri",
    "run_demo",
    "to_grpc_status",
    "verify_evidence",
    "verify_hash_chain",
    "write_secret",
]
