"""The gateway with its directory on PostgreSQL (`catalogue_url`), end to end over mTLS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from google.protobuf import field_mask_pb2
from govshare.adapters.simulators import Population
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig
from support import Pki, RunningGateway


@pytest.fixture
async def catalogue_url(postgres_dsn: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one gateway's directory, dropped afterwards.

    A database, not a schema: `catalogue_url` is all the configuration a gateway gets.
    """
    name = f"govshare_gw_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(postgres_dsn)
    try:
        yield urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(postgres_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_a_gateway_serves_and_administers_a_postgresql_directory(
    catalogue_url: str,
    gateway_config: Callable[[dict[str, str]], GatewayConfig],
    simulators: dict[str, str],
    pki: Pki,
    population: Population,
) -> None:
    """Started on an empty PostgreSQL database, the gateway seeds the catalogue there,
    serves a certificate from it, and an administrator's change is read back from it,
    also by a second gateway on the same database."""
    config = gateway_config(simulators).replace(catalogue_url=catalogue_url)
    async with Gateway(config) as started:
        gateway = RunningGateway(started, pki)
        async with gateway.channel(pki.land_registry) as channel:
            evidence = await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=population.persons[0].citizen_id),
                    matter_code="330100-BDC-0001",
                    purpose="不动产转移登记核验卖方身份",
                ),
                timeout=10,
            )
        assert evidence.fields["citizen_id"] == population.persons[0].citizen_id
        async with gateway.channel(pki.admin) as channel:
            directory = directory_pb2_grpc.DirectoryServiceStub(channel)
            resource = await directory.GetResource(
                directory_pb2.GetResourceRequest(name="resources/101001/00001")
            )
            resource.display_name = "居民身份信息（PostgreSQL）"
            await directory.UpdateResource(
                directory_pb2.UpdateResourceRequest(
                    resource=resource,
                    update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                )
            )
    second = gateway_config(simulators).replace(
        catalogue_url=catalogue_url, data_dir=config.data_dir.parent / "second"
    )
    async with Gateway(second) as started:
        assert started.catalogue.resources["101001/00001"].display_name == (
            "居民身份信息（PostgreSQL）"
        )
