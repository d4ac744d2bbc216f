"""A development PKI: a CA, the gateway's server certificate, and client
certificates whose URI SAN names the principal (SPIFFE style).

Production plugs in the government CA instead; nothing else changes, because
the gateway reads identity only from the verified client certificate.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._secrets import write_secret

__all__ = ["DEFAULT_TRUST_DOMAIN", "DevPki", "IssuedCertificate", "principal_uri"]

DEFAULT_TRUST_DOMAIN = "govshare.local"
_CA_DAYS = 3650
_LEAF_DAYS = 825
# One path segment of a SPIFFE id, also safe as part of a file name.
_PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# SPIFFE: a trust domain is lowercase letters, digits, dots, dashes and underscores.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
# `pki init` records its trust domain here, so `pki issue` names the same one.
_TRUST_DOMAIN_FILE = "trust-domain"


def principal_uri(trust_domain: str, kind: str, name: str) -> str:
    """`spiffe://<trust-domain>/<kind>/<name>`, kind one of dept, admin, auditor."""
    if kind not in ("dept", "admin", "auditor"):
        raise ValueError(f"unknown principal kind {kind!r}")
    if _PRINCIPAL_NAME.fullmatch(name) is None:
        raise ValueError(f"principal name {name!r} must match {_PRINCIPAL_NAME.pattern}")
    return f"spiffe://{trust_domain}/{kind}/{name}"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """Paths of an issued certificate and its private key (PEM)."""

    certificate: Path
    private_key: Path


class DevPki:
    """A development CA kept in one folder: ca.crt/ca.key, server.crt/key, clients."""

    def __init__(self, folder: Path, trust_domain: str | None = None) -> None:
        """`trust_domain` None: the one recorded by `init` in `folder`, else the default."""
        self.folder = folder
        if trust_domain is None:
            recorded = folder / _TRUST_DOMAIN_FILE
            trust_domain = (
                recorded.read_text("utf-8").strip() if recorded.exists() else DEFAULT_TRUST_DOMAIN
            )
        if _TRUST_DOMAIN.fullmatch(trust_domain) is None:
            raise ValueError(
                f"trust domain {trust_domain!r} must be lowercase letters, digits, '.', '-', '_'"
            )
        self.trust_domain = trust_domain

    @property
    def ca_certificate(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def server(self) -> IssuedCertificate:
        return IssuedCertificate(self.folder / "server.crt", self.folder / "server.key")

    def exists(self) -> bool:
        return self.ca_certificate.exists() and self.server.certificate.exists()

    def has_ca(self) -> bool:
        """Whether any part of a CA is here (replacing it would orphan issued certificates)."""
        return self.ca_certificate.exists() or (self.folder / "ca.key").exists()

    def init(self, *, common_name: str = "govshare development CA") -> None:
        """Create the CA and the server certificate (localhost, 127.0.0.1, ::1)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _dt.datetime.now(_dt.UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_key(self.folder / "ca.key", key)
        self.ca_certificate.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.folder / _TRUST_DOMAIN_FILE).write_text(self.trust_domain + "\n", "utf-8")
        self.issue_server()

    def issue_server(self) -> None:
        """(Re)issue the gateway's server certificate from the CA in the folder."""
        self._issue(
            self.server,
            common_name="govshare gateway",
            sans=[
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ],
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        )

    def issue(self, kind: str, name: str) -> IssuedCertificate:
        """Issue a client certificate for a department (USCC), admin or auditor."""
        uri = principal_uri(self.trust_domain, kind, name)
        target = IssuedCertificate(
            self.folder / f"{kind}-{name}.crt", self.folder / f"{kind}-{name}.key"
        )
        self._issue(
            target,
            common_name=name,
            sans=[x509.UniformResourceIdentifier(uri)],
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        return target

    def _issue(
        self,
        target: IssuedCertificate,
        *,
        common_name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
    ) -> None:
        ca_key = serialization.load_pem_private_key((self.folder / "ca.key").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_certificate.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _dt.datetime.now(_dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(target.private_key, key)
        target.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_secret(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
