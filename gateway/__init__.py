"""The govshare gateway: identity, policy, exchange, evidence, transparency log, CLI."""

from __future__ import annotations

from ._access_lines import AccessLines
from ._audit_service import (
    AuditServicer,
    ProofSource,
)
from ._auditlog import (
    QUERY_COLUMNS,
    SCHEMA_VERSION,
    AccessLog,
    AccessLogError,
    PendingAppend,
    SignedCheckpoint,
    SqliteAccessLog,
    query_columns,
)
from ._auditquery import (
    AccessQuery,
    AuditReader,
    LogProofs,
    StoredRecord,
    UsageStats,
)
from ._auditverify import (
    LogVerification,
    read_export,
    stored_checkpoints,
    stored_verifier_key,
    verify_entries,
    verify_log_file,
)
from ._checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    load_or_create_note_signer,
    open_note,
    open_signed_note,
)
from ._cli import (
    main,
)
from ._cli_directory import (
    add_directory_commands,
)
from ._client import (
    client_credentials,
    open_channel,
)
from ._clock import (
    utc_now,
    utc_text,
)
from ._config import (
    GatewayConfig,
)
from ._datadir import (
    DataDirInUse,
    DataDirLock,
)
from ._decisions import (
    DecisionRecorder,
)
from ._demo import (
    run_demo,
)
from ._directory_access import (
    DirectoryAccess,
)
from ._directory_codec import (
    application_request_from_pb,
    application_to_pb,
    certificate_type_from_pb,
    certificate_type_to_pb,
    department_from_pb,
    department_to_pb,
    event_to_pb,
    grant_to_pb,
    mask_paths,
    matter_from_pb,
    matter_mask,
    matter_to_pb,
    name_id,
    resource_from_pb,
    resource_to_pb,
)
from ._directory_service import (
    DirectoryServicer,
)
from ._directory_sync import (
    DIRECTORY_EVENT_METHOD,
    DirectorySync,
)
from ._errors import (
    ERROR_DOMAIN,
    GovshareError,
    Reason,
    error_info_of,
    grpc_code_of,
    name_list,
    rich_status,
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
from ._exchange import (
    ExchangeServicer,
)
from ._holder import (
    HolderIdProtector,
    mask_holder_id,
)
from ._identity import (
    Principal,
    Role,
    principal_from_auth_context,
)
from ._interceptors import (
    UndecodableRequests,
)
from ._logsetup import (
    LOG_FORMAT,
    configure_logging,
)
from ._loop import (
    EVENT_LOOPS,
    run_with_event_loop,
)
from ._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleFrontier,
    NodeKey,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    subtree_hash_from_nodes,
    verify_consistency,
    verify_inclusion,
)
from ._merkle_store import (
    MemoryNodeStore,
    NodeStore,
    SqliteNodeStore,
)
from ._pki import (
    DEFAULT_TRUST_DOMAIN,
    DevPki,
    IssuedCertificate,
    principal_uri,
)
from ._policy import (
    Decision,
    authorize_department,
    check_registered,
    decide,
)
from ._registry import (
    AdapterRouter,
)
from ._revocation import (
    RevocationList,
    RevocationListError,
    RevokedCertificates,
)
from ._secrets import (
    create_secret,
    write_secret,
)
from ._server import (
    Gateway,
)
from ._sqlite_batch import (
    insert_rows,
)

__all__ = [
    "DEFAULT_TRUST_DOMAIN",
    "DIRECTORY_EVENT_METHOD",
    "EMPTY_ROOT",
    "ERROR_DOMAIN",
    "EVENT_LOOPS",
    "HASH_SIZE",
    "LOG_FORMAT",
    "QUERY_COLUMNS",
    "SCHEMA_VERSION",
    "SIGNING_ALGORITHMS",
    "AccessLines",
    "AccessLog",
    "AccessLogError",
    "AccessQuery",
    "AdapterRouter",
    "AuditReader",
    "AuditServicer",
    "Checkpoint",
    "CheckpointError",
    "DataDirInUse",
    "DataDirLock",
    "Decision",
    "DecisionRecorder",
    "DevPki",
    "DirectoryAccess",
    "DirectoryServicer",
    "DirectorySync",
    "EvidenceSigner",
    "EvidenceVerification",
    "ExchangeServicer",
    "Gateway",
    "GatewayConfig",
    "GovshareError",
    "HolderIdProtector",
    "IssuedCertificate",
    "LogProofs",
    "LogVerification",
    "MemoryNodeStore",
    "MerkleFrontier",
    "NodeKey",
    "NodeStore",
    "NoteSigner",
    "NoteVerifier",
    "PendingAppend",
    "Principal",
    "ProofSource",
    "Reason",
    "RevocationList",
    "RevocationListError",
    "RevokedCertificates",
    "Role",
    "SignedCheckpoint",
    "SqliteAccessLog",
    "SqliteNodeStore",
    "StoredRecord",
    "UndecodableRequests",
    "UsageStats",
    "add_directory_commands",
    "application_request_from_pb",
    "application_to_pb",
    "authorize_department",
    "canonical_json",
    "certificate_type_from_pb",
    "certificate_type_to_pb",
    "check_registered",
    "client_credentials",
    "configure_logging",
    "consistency_proof",
    "consistency_proof_ranges",
    "create_secret",
    "decide",
    "department_from_pb",
    "department_to_pb",
    "error_info_of",
    "event_to_pb",
    "grant_to_pb",
    "grpc_code_of",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "insert_rows",
    "leaf_hash",
    "load_or_create_note_signer",
    "load_or_create_signer",
    "main",
    "mask_holder_id",
    "mask_paths",
    "matter_from_pb",
    "matter_mask",
    "matter_to_pb",
    "name_id",
    "name_list",
    "node_hash",
    "open_channel",
    "open_note",
    "open_signed_note",
    "perfect_subtrees",
    "principal_from_auth_context",
    "principal_uri",
    "query_columns",
    "read_export",
    "resource_from_pb",
    "resource_to_pb",
    "rich_status",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "run_demo",
    "run_with_event_loop",
    "stored_checkpoints",
    "stored_verifier_key",
    "subtree_hash_from_nodes",
    "to_grpc_status",
    "utc_now",
    "utc_text",
    "verify_consistency",
    "verify_entries",
    "verify_evidence",
    "verify_inclusion",
    "verify_log_file",
    "write_secret",
]
