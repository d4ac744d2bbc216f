"""Principals come only from the peer certificate's single SPIFFE URI SAN."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from govshare.gateway import (
    DEFAULT_TRUST_DOMAIN,
    GovshareError,
    Principal,
    Reason,
    Role,
    principal_from_auth_context,
)

USCC = "11330100002482106W"


def context(*uris: str) -> dict[str, list[bytes]]:
    """An auth context as grpc.ServicerContext.auth_context() returns it."""
    return {
        "transport_security_type": [b"ssl"],
        "x509_common_name": [b"whoever"],
        "peer_spiffe_id": [uri.encode() for uri in uris],
    }


def refused(
    auth_context: Mapping[str, Iterable[bytes]], trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> GovshareError:
    with pytest.raises(GovshareError) as raised:
        principal_from_auth_context(auth_context, trust_domain)
    return raised.value


class TestAccepted:
    @pytest.mark.parametrize(
        ("uri", "expected"),
        [
            (f"spiffe://govshare.local/dept/{USCC}", Principal(Role.DEPARTMENT, USCC)),
            ("spiffe://govshare.local/admin/ops", Principal(Role.ADMIN, "ops")),
            ("spiffe://govshare.local/auditor/li-wei", Principal(Role.AUDITOR, "li-wei")),
        ],
    )
    def test_kinds_parse(self, uri: str, expected: Principal) -> None:
        """dept, admin and auditor SPIFFE ids become the matching principal."""
        assert principal_from_auth_context(context(uri), DEFAULT_TRUST_DOMAIN) == expected

    def test_other_trust_domain_when_configured(self) -> None:
        """The trust domain is the configured one, not a constant."""
        principal = principal_from_auth_context(
            context("spiffe://gov.example/admin/ops"), "gov.example"
        )
        assert principal == Principal(Role.ADMIN, "ops")

    def test_common_name_is_not_consulted(self) -> None:
        """The subject CN plays no part: only the SPIFFE id names the caller."""
        auth = context(f"spiffe://govshare.local/dept/{USCC}")
        auth["x509_common_name"] = [b"11330100002482101D"]
        assert principal_from_auth_context(auth, DEFAULT_TRUST_DOMAIN).name == USCC

    def test_labels(self) -> None:
        """A department is labelled by its USCC, others by role/name."""
        assert Principal(Role.DEPARTMENT, USCC).label == USCC
        assert Principal(Role.ADMIN, "ops").label == "admin/ops"
        assert Principal(Role.AUDITOR, "li-wei").label == "auditor/li-wei"


class TestRefused:
    def test_missing_spiffe_id(self) -> None:
        """No peer_spiffe_id (no certificate, or no URI SAN) names nobody."""
        assert refused({"transport_security_type": [b"ssl"]}).reason is Reason.CALLER_UNKNOWN
        assert refused({}).reason is Reason.CALLER_UNKNOWN
        assert refused(context()).reason is Reason.CALLER_UNKNOWN

    def test_two_values(self) -> None:
        """Two SPIFFE ids are ambiguous and name nobody."""
        error = refused(
            context("spiffe://govshare.local/admin/a", "spiffe://govshare.local/admin/b")
        )
        assert error.reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize(
        "uri",
        [
            f"spiffe://other.example/dept/{USCC}",
            f"spiffe://govshare.local.evil.example/dept/{USCC}",
            f"spiffe://evil.example/govshare.local/dept/{USCC}",
            f"https://govshare.local/dept/{USCC}",
            f"SPIFFE://govshare.local/dept/{USCC}",
        ],
    )
    def test_other_trust_domain(self, uri: str) -> None:
        """A SPIFFE id outside the configured trust domain is refused."""
        assert refused(context(uri)).reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize(
        "uri",
        [
            f"spiffe://govshare.local/department/{USCC}",
            f"spiffe://govshare.local/DEPT/{USCC}",
            f"spiffe://govshare.local//{USCC}",
            f"spiffe://govshare.local/{USCC}",
        ],
    )
    def test_unknown_kind(self, uri: str) -> None:
        """A kind other than dept, admin or auditor is refused."""
        assert refused(context(uri)).reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize(
        "uri",
        [
            "spiffe://govshare.local/dept/",
            "spiffe://govshare.local/admin",
            "spiffe://govshare.local/",
        ],
    )
    def test_empty_name(self, uri: str) -> None:
        """A kind without a name is refused."""
        assert refused(context(uri)).reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize(
        "uri",
        [f"spiffe://govshare.local/dept/{USCC}/extra", f"spiffe://govshare.local/dept/{USCC}/"],
    )
    def test_extra_path_segment(self, uri: str) -> None:
        """A name with a further path segment is refused."""
        assert refused(context(uri)).reason is Reason.CALLER_UNKNOWN

    @pytest.mark.parametrize(
        "uri",
        [
            "spiffe://govshare.local/admin/ops?x=1",
            "spiffe://govshare.local/admin/ops#frag",
            "spiffe://govshare.local/admin/ops?",
            "spiffe://govshare.local/admin/o%70s",
            "spiffe://govshare.local/admin/.",
            "spiffe://govshare.local/admin/..",
            f"spiffe://govshare.local/dept//{USCC}",
            "spiffe://govshare.local/admin/ops x",
            "spiffe://govshare.local/admin/-ops",
            "spiffe://govshare.local/admin/" + "o" * 65,
        ],
    )
    def test_malformed_spiffe_id(self, uri: str) -> None:
        """A name the SPIFFE spec forbids (query, fragment, %-escape, dot or empty
        segment) or that we would not issue is refused, not served under its prefix."""
        assert refused(context(uri)).reason is Reason.CALLER_UNKNOWN
