"""The gateway process: loads the catalogue, opens the audit log and signing
key, builds the registry adapters, and serves gRPC over mTLS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import grpc
from govshare.adapters import Adapter
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.directory import (
    Catalogue,
    SqlCatalogueStore,
    load_builtin_catalogue,
    load_catalogue,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from ._access_lines import AccessLines
from ._audit_service import AuditServicer
from ._auditlog import AccessLogError, SqliteAccessLog
from ._auditquery import AuditReader, LogProofs
from ._checkpoint import load_or_create_note_signer
from ._config import GatewayConfig
from ._datadir import DataDirLock
from ._decisions import DecisionRecorder
from ._directory_service import DirectoryServicer
from ._directory_sync import DirectorySync
from ._evidence import EvidenceSigner, load_or_create_signer
from ._exchange import ExchangeServicer
from ._health import DrainingHealthServicer
from ._holder import HolderIdProtector
from ._interceptors import UndecodableRequests
from ._pki import DevPki
from ._registry import AdapterRouter
from ._revocation import RevocationList, RevokedCertificates

__all__ = ["Gateway"]

_log = logging.getLogger("govshare.gateway")
_SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"].full_name,
    directory_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)


class Gateway:
    """One gateway instance; `async with Gateway(config) as gw:` serves until exit."""

    def __init__(self, config: GatewayConfig, *, adapters: Sequence[Adapter] | None = None) -> None:
        self.config = config
        self._extra_adapters = adapters
        self._server: grpc.aio.Server | None = None
        self._store: SqlCatalogueStore | None = None
        self._access_log: SqliteAccessLog | None = None
        self._audit_reader: AuditReader | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._crl_watch: asyncio.Task[None] | None = None
        self._failure_watch: asyncio.Future[None] | None = None
        self._health: DrainingHealthServicer | None = None
        self._sync: DirectorySync | None = None
        self._router: AdapterRouter | None = None
        self._catalogue: Catalogue | None = None
        self.signer: EvidenceSigner | None = None
        self.port = 0
        self._data_dir_lock = DataDirLock(config.data_dir)

    @property
    def address(self) -> str:
        host = self.config.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    @property
    def catalogue(self) -> Catalogue:
        assert self._catalogue is not None, "gateway not started"
        return self._catalogue

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever was opened before the failure (log writer, watcher, store,
            # sessions) is closed again, so a failed start leaves nothing running.
            await self.stop(grace=0)
            raise

    async def _start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._data_dir_lock.acquire()
        pki = DevPki(config.pki_path, config.trust_domain)
        if not pki.exists():
            raise RuntimeError(f"no PKI in {config.pki_path}: run `govshare pki init` first")
        # Before anything is opened: a CRL that does not verify stops the start here.
        revocations = (
            RevocationList(config.crl_file, pki.ca_certificate)
            if config.crl_file is not None
            else None
        )
        self._store = config.open_catalogue_store()
        self._catalogue = await _load_catalogue(self._store, config)
        self.signer = load_or_create_signer(config.keys_dir, config.signing_algorithm)
        holder_ids = HolderIdProtector.load_or_create(config.keys_dir / "holder-hash.key")
        note_signer = load_or_create_note_signer(
            config.keys_dir / "log-note-signing.pem", config.log_origin
        )
        self._access_log = SqliteAccessLog(
            config.audit_log_path,
            max_batch=config.audit_max_batch,
            commit_window=config.audit_commit_window_seconds,
            note_signer=note_signer,
            origin=config.log_origin,
        )
        await self._access_log.open()
        self._audit_reader = AuditReader(config.audit_log_path)
        self._router = (
            AdapterRouter(self._extra_adapters)
            if self._extra_adapters is not None
            else AdapterRouter.from_registries(config.registries, config.mapping_dir)
        )
        decisions = DecisionRecorder(self._access_log)
        interceptors: list[grpc.aio.ServerInterceptor] = [
            UndecodableRequests(decisions, config.trust_domain)
        ]
        if revocations is not None:
            # Before anything else looks at the call, so a revoked certificate is
            # refused first; without a CRL no call pays for the check.
            interceptors.insert(0, RevokedCertificates(revocations, decisions))
        # Outermost: refused calls (revoked, undecodable) get their line too.
        interceptors.insert(0, AccessLines(config.trust_domain))
        server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
        handlers = _generic_handlers_only(server)
        exchange_pb2_grpc.add_ExchangeServiceServicer_to_server(
            ExchangeServicer(
                catalogue=lambda: self.catalogue,
                adapters=self._router,
                signer=self.signer,
                access_log=self._access_log,
                holder_ids=holder_ids,
                trust_domain=config.trust_domain,
                default_timeout=config.provider_timeout_seconds,
                holder_id_exceptions=config.holder_id_exceptions,
            ),
            handlers,
        )
        self._sync = DirectorySync(
            store=self._store,
            access_log=self._access_log,
            reader=self._audit_reader,
            publish=self._set_catalogue,
            poll_seconds=config.directory_poll_seconds,
        )
        await self._sync.start()
        directory_pb2_grpc.add_DirectoryServiceServicer_to_server(
            DirectoryServicer(
                store=self._store,
                catalogue=lambda: self.catalogue,
                trust_domain=config.trust_domain,
                on_change=self._sync.refresh,
                on_denied=decisions.record_refusal,
            ),
            handlers,
        )
        audit_pb2_grpc.add_AuditServiceServicer_to_server(
            AuditServicer(
                decisions=decisions,
                reader=self._audit_reader,
                proofs=LogProofs(self._access_log, self._audit_reader),
                holder_ids=holder_ids,
                trust_domain=config.trust_domain,
                holder_id_exceptions=config.holder_id_exceptions,
            ),
            handlers,
        )
        health_servicer = self._health = DrainingHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, handlers)
        for name in (*_SERVICE_NAMES, ""):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._failure_watch = asyncio.ensure_future(self._not_serving_once_the_log_fails())
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(
                (*_SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
            ),
            handlers,
        )
        credentials = grpc.ssl_server_credentials(
            [(pki.server.private_key.read_bytes(), pki.server.certificate.read_bytes())],
            root_certificates=pki.ca_certificate.read_bytes(),
            require_client_auth=True,
        )
        self.port = server.add_secure_port(config.listen, credentials)
        await server.start()
        self._server = server
        if config.checkpoint_interval_seconds > 0:
            self._checkpointer = asyncio.create_task(
                self._publish_checkpoints(config.checkpoint_interval_seconds)
            )
        if revocations is not None:
            self._crl_watch = asyncio.create_task(revocations.watch())
            _log.info("revocation list %s: %d revoked", config.crl_file, revocations.revoked_count)
        _log.info("gateway listening on %s (mTLS)", self.address)

    def _set_catalogue(self, catalogue: Catalogue) -> None:
        # One reference swap: a request in flight keeps the snapshot it started with.
        self._catalogue = catalogue

    @property
    def store(self) -> SqlCatalogueStore:
        assert self._store is not None, "gateway not started"
        return self._store

    @property
    def access_log(self) -> SqliteAccessLog:
        assert self._access_log is not None, "gateway not started"
        return self._access_log

    async def _not_serving_once_the_log_fails(self) -> None:
        """A failed access log fails every call that would append (nearly all): health
        says NOT_SERVING so that load balancers send calls to another gateway."""
        error = await self.access_log.failure()
        _log.error("access log failed, health set to NOT_SERVING: %s", error)
        if self._health is not None:
            for name in (*_SERVICE_NAMES, ""):
                await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _publish_checkpoints(self, interval: float) -> None:
        """Sign a checkpoint whenever the log has grown, every `interval` seconds."""
        log = self.access_log
        while True:
            await asyncio.sleep(interval)
            latest = log.latest_checkpoint
            if latest is None or log.committed[0] > latest.size:
                try:
                    await log.publish_checkpoint()
                except AccessLogError:
                    _log.exception("checkpoint publication failed")

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving; calls in flight get `grace` seconds (default: the configured
        shutdown_grace_seconds) before they are cancelled."""
        if self._health is not None:
            # Load balancers watching health stop sending calls while those in
            # flight finish.
            await self._health.enter_graceful_shutdown()
        for task in (self._checkpointer, self._crl_watch, self._failure_watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._checkpointer = self._crl_watch = self._failure_watch = None
        if self._server is not None:
            await self._server.stop(self.config.shutdown_grace if grace is None else grace)
            self._server = None
        if self._sync is not None:
            await self._sync.stop()
            self._sync = None
        if self._audit_reader is not None:
            await self._audit_reader.close()
            self._audit_reader = None
        if self._access_log is not None:
            # Leave the log covered by a signed checkpoint for its auditors.
            with contextlib.suppress(AccessLogError):
                await self._access_log.publish_checkpoint()
            await self._access_log.close()
            self._access_log = None
        if self._router is not None:
            await self._router.close()
            self._router = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        self._data_dir_lock.release()

    async def serve_until_signalled(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop.

        The handlers stay installed while stopping: a second signal (an impatient
        Ctrl-C) cancels the calls still in their grace, each logged as cancelled,
        instead of raising KeyboardInterrupt through the half-done shutdown.
        """
        signalled = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, signalled.set)
        try:
            await signalled.wait()
            signalled.clear()
            stopping = asyncio.ensure_future(self.stop())
            again = asyncio.ensure_future(signalled.wait())
            try:
                await asyncio.wait((stopping, again), return_when=asyncio.FIRST_COMPLETED)
                if not stopping.done():
                    _log.warning("second signal: cancelling the calls still in flight")
                    server = self._server
                    if server is not None:
                        # grpc ends a running stop(grace) early for a later stop(0).
                        await server.stop(0)
                await stopping
            finally:
                again.cancel()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


class _GenericHandlers:
    """What the generated `add_*Servicer_to_server` functions call, keeping only the
    generic handlers.

    grpc.aio keeps one pending request task per *registered* method and waits on all
    of them (asyncio.wait over ~50 tasks) for every call: ~30 µs per call on the
    bench machine, a sixth of a bare echo. Generic handlers share one request task;
    the interceptor caches each method's handler, so the lookup costs nothing.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Deliberately ignored: the same handlers were added as generic ones."""


def _generic_handlers_only(server: grpc.aio.Server) -> grpc.aio.Server:
    # The generated functions only call the two methods above.
    return cast("grpc.aio.Server", _GenericHandlers(server))


async def seed_catalogue_store(store: SqlCatalogueStore, config: GatewayConfig) -> None:
    """Create the directory's tables and seed an empty store from the configured seed
    (`catalogue_seed`, else the built-in catalogue): the gateway and the directory
    commands must fill a new store alike, whichever runs first."""
    await store.create_schema()
    if await store.is_empty():
        seed = (
            load_catalogue(Path(config.catalogue_seed))
            if config.catalogue_seed
            else load_builtin_catalogue()
        )
        # Re-checked under the writer lock: another gateway may have seeded meanwhile.
        await store.seed_if_empty(seed)


async def _load_catalogue(store: SqlCatalogueStore, config: GatewayConfig) -> Catalogue:
    """Load the directory, seeding an empty store from the configured seed."""
    await seed_catalogue_store(store, config)
    return await store.load()
