"""Opening an mTLS channel to the gateway as one principal (tests, demo, bench)."""

from __future__ import annotations

from pathlib import Path

import grpc

from ._pki import IssuedCertificate

__all__ = ["client_credentials", "open_channel"]


def client_credentials(ca_certificate: Path, client: IssuedCertificate) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca_certificate.read_bytes(),
        private_key=client.private_key.read_bytes(),
        certificate_chain=client.certificate.read_bytes(),
    )


def open_channel(address: str, ca_certificate: Path, client: IssuedCertificate) -> grpc.aio.Channel:
    """An aio channel to `address` presenting `client`'s certificate."""
    return grpc.aio.secure_channel(address, client_credentials(ca_certificate, client))
