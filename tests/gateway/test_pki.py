"""The development PKI: CA, server certificate, SPIFFE client certificates."""

from __future__ import annotations

import ipaddress
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from govshare.gateway import (
    DEFAULT_TRUST_DOMAIN,
    DevPki,
    Principal,
    Role,
    principal_from_auth_context,
    principal_uri,
)

USCC = "11330100002482106W"


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def public_bytes_of_key(path: Path) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_bytes_of_cert(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki = DevPki(tmp_path_factory.mktemp("devpki") / "pki")
    pki.init()
    return pki


class TestInit:
    def test_files_and_exists(self, tmp_path: Path) -> None:
        """init creates the CA and server files; exists() is false before and true after."""
        pki = DevPki(tmp_path / "pki")
        assert not pki.exists()
        pki.init()
        assert pki.exists()
        names = sorted(p.name for p in (tmp_path / "pki").iterdir())
        assert names == ["ca.crt", "ca.key", "server.crt", "server.key", "trust-domain"]
        assert (tmp_path / "pki" / "trust-domain").read_text() == "govshare.local\n"

    def test_keys_are_private(self, dev_pki: DevPki) -> None:
        """The CA and server private keys are mode 0600."""
        assert mode(dev_pki.folder / "ca.key") == 0o600
        assert mode(dev_pki.server.private_key) == 0o600

    def test_ca_is_a_ca(self, dev_pki: DevPki) -> None:
        """The CA certificate is self-signed with CA basic constraints and keyCertSign."""
        ca = load(dev_pki.ca_certificate)
        assert ca.subject == ca.issuer
        ca.verify_directly_issued_by(ca)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        assert public_bytes_of_key(dev_pki.folder / "ca.key") == public_bytes_of_cert(ca)

    def test_server_certificate(self, dev_pki: DevPki) -> None:
        """The server certificate names localhost and 127.0.0.1, is for serverAuth, and is CA-signed."""
        ca = load(dev_pki.ca_certificate)
        server = load(dev_pki.server.certificate)
        server.verify_directly_issued_by(ca)
        names = san(server)
        assert "localhost" in names.get_values_for_type(x509.DNSName)
        assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
        assert eku(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
        assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert public_bytes_of_key(dev_pki.server.private_key) == public_bytes_of_cert(server)


class TestIssue:
    def test_department_certificate(self, dev_pki: DevPki) -> None:
        """A dept certificate is CA-signed, for clientAuth, with exactly one SPIFFE URI SAN."""
        issued = dev_pki.issue("dept", USCC)
        cert = load(issued.certificate)
        cert.verify_directly_issued_by(load(dev_pki.ca_certificate))
        assert list(san(cert)) == [
            x509.UniformResourceIdentifier(f"spiffe://govshare.local/dept/{USCC}")
        ]
        assert eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert mode(issued.private_key) == 0o600
        assert public_bytes_of_key(issued.private_key) == public_bytes_of_cert(cert)

    def test_identity_reads_back_the_principal(self, dev_pki: DevPki) -> None:
        """The SAN an issued certificate carries parses back to the same principal."""
        for kind, name, role in [("dept", USCC, Role.DEPARTMENT), ("admin", "ops", Role.ADMIN)]:
            cert = load(dev_pki.issue(kind, name).certificate)
            (uri,) = san(cert).get_values_for_type(x509.UniformResourceIdentifier)
            principal = principal_from_auth_context(
                {"peer_spiffe_id": [uri.encode()]}, DEFAULT_TRUST_DOMAIN
            )
            assert principal == Principal(role, name)

    def test_custom_trust_domain(self, tmp_path: Path) -> None:
        """The URI uses the PKI's trust domain."""
        pki = DevPki(tmp_path, trust_domain="gov.example")
        pki.init()
        cert = load(pki.issue("auditor", "li-wei").certificate)
        assert san(cert).get_values_for_type(x509.UniformResourceIdentifier) == [
            "spiffe://gov.example/auditor/li-wei"
        ]

    def test_other_ca_does_not_verify(self, dev_pki: DevPki, tmp_path: Path) -> None:
        """A certificate from another development CA fails verification against ours."""
        other = DevPki(tmp_path / "other")
        other.init()
        foreign = load(other.issue("dept", USCC).certificate)
        with pytest.raises((InvalidSignature, ValueError)):
            foreign.verify_directly_issued_by(load(dev_pki.ca_certificate))

    def test_unknown_kind(self, tmp_path: Path) -> None:
        """An unknown kind is a ValueError and writes nothing."""
        pki = DevPki(tmp_path / "pki")
        pki.init()
        before = sorted((tmp_path / "pki").iterdir())
        with pytest.raises(ValueError, match="service"):
            pki.issue("service", "x")
        assert sorted((tmp_path / "pki").iterdir()) == before

    @pytest.mark.parametrize("name", ["../outside", "ops/extra"])
    def test_name_that_cannot_be_a_principal(self, tmp_path: Path, name: str) -> None:
        """A name with a path separator is refused by name (identity would refuse its SAN)."""
        pki = DevPki(tmp_path / "pki")
        pki.init()
        with pytest.raises(ValueError, match=re.escape(name)):
            pki.issue("admin", name)
        assert not (tmp_path / "outside.crt").exists()


class TestPrincipalUri:
    def test_shape(self) -> None:
        """principal_uri builds spiffe://<domain>/<kind>/<name>."""
        assert (
            principal_uri("govshare.local", "dept", USCC) == f"spiffe://govshare.local/dept/{USCC}"
        )

    def test_unknown_kind(self) -> None:
        """Only dept, admin and auditor are kinds."""
        with pytest.raises(ValueError, match="root"):
            principal_uri("govshare.local", "root", "x")
