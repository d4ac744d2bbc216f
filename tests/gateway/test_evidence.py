"""Signed evidence: RFC 8785 payload in a JWS, verified offline with the JWKS."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from govshare.gateway import (
    SIGNING_ALGORITHMS,
    EvidenceSigner,
    canonical_json,
    load_or_create_signer,
    verify_evidence,
)
from joserfc import jws
from joserfc.jwk import ECKey, KeySet, OKPKey
from joserfc.registry import HeaderParameter

RECORD = {"resource": "101001/00001", "fields": {"name": "张三", "sex": "男"}, "version": 1}


# An independent registry, not the gateway's: the tests must not share its setup.
REGISTRY = jws.JWSRegistry(
    header_registry={
        name: HeaderParameter(name, "str" if name == "gsreq" else "int")
        for name in ("gsreq", "gsidx", "iat")
    },
    algorithms=list(SIGNING_ALGORITHMS),
)


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict[str, Any]:
    decoded = json.loads(b64decode(token.split(".")[0]))
    assert isinstance(decoded, dict)
    return decoded


@pytest.fixture(params=SIGNING_ALGORITHMS)
def signer(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceSigner:
    return load_or_create_signer(tmp_path / "keys", request.param)


def sign(signer: EvidenceSigner, record: Any = RECORD) -> str:
    return signer.sign(
        canonical_json(record), request_id="req-42", log_index=7, issued_at=1_795_000_000
    )


class TestSignAndVerify:
    def test_ed25519_token_is_byte_identical_to_joserfc(self, tmp_path: Path) -> None:
        """The direct signing path writes exactly the compact JWS joserfc writes
        (Ed25519 signatures are deterministic, so any difference would show)."""
        signer = load_or_create_signer(tmp_path, "Ed25519")
        key = OKPKey.import_key((tmp_path / "evidence-signing-ed25519.pem").read_bytes())
        header = header_of(sign(signer))
        expected = jws.serialize_compact(header, canonical_json(RECORD), key, registry=REGISTRY)
        assert sign(signer) == expected

    def test_ed25519_signatures_match_cryptography_for_many_keys_and_payloads(
        self, tmp_path: Path
    ) -> None:
        """The libsodium signature equals OpenSSL's (via cryptography) over the same
        signing input, for fresh keys and payloads of many sizes."""
        for n in range(6):
            signer = load_or_create_signer(tmp_path / str(n), "Ed25519")
            pem = (tmp_path / str(n) / "evidence-signing-ed25519.pem").read_bytes()
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, ed25519.Ed25519PrivateKey)
            for size in (0, 1, 63, 64, 1000, 70_000):
                token = signer.sign(
                    canonical_json({"blob": "x" * size}),
                    request_id=f"r{size}",
                    log_index=size,
                    issued_at=1_795_000_000,
                )
                signing_input, _, signature = token.rpartition(".")
                assert b64decode(signature) == private.sign(signing_input.encode("ascii"))

    def test_es256_signature_is_raw_r_and_s_that_joserfc_accepts(self, tmp_path: Path) -> None:
        """ES256 signatures are the 64-byte r || s of RFC 7518, not DER, and verify
        with an independent implementation."""
        signer = load_or_create_signer(tmp_path, "ES256")
        token = sign(signer)
        assert len(b64decode(token.split(".")[2])) == 64
        keys = KeySet.import_key_set(dict(signer.jwks))  # type: ignore[arg-type]
        verified = jws.deserialize_compact(token, keys, registry=REGISTRY)
        assert json.loads(verified.payload) == RECORD

    def test_only_p256_keys_sign_es256(self) -> None:
        """A P-384 key cannot pose as an ES256 signer."""
        key = ECKey.generate_key("P-384")
        with pytest.raises(ValueError, match="P-256"):
            EvidenceSigner(key, "ES256")

    def test_round_trip(self, signer: EvidenceSigner) -> None:
        """What the gateway signs verifies with its own JWKS and yields the record."""
        result = verify_evidence(sign(signer), signer.jwks)
        assert result.valid
        assert result.reason == ""
        assert result.payload == RECORD
        assert (result.key_id, result.log_index, result.request_id) == (signer.key_id, 7, "req-42")

    def test_header_fields(self, signer: EvidenceSigner) -> None:
        """The protected header names alg, kid, request id, log index, time and type."""
        assert header_of(sign(signer)) == {
            "alg": signer.algorithm,
            "kid": signer.key_id,
            "typ": "govshare-evidence+jws",
            "gsreq": "req-42",
            "gsidx": 7,
            "iat": 1_795_000_000,
        }

    def test_payload_is_the_canonical_bytes(self, signer: EvidenceSigner) -> None:
        """The JWS payload is exactly the RFC 8785 bytes of the record."""
        token = sign(signer)
        assert b64decode(token.split(".")[1]) == canonical_json(RECORD)
        assert b64decode(token.split(".")[1]) == (
            '{"fields":{"name":"张三","sex":"男"},"resource":"101001/00001","version":1}'.encode()
        )

    def test_jwks_is_public_only(self, signer: EvidenceSigner) -> None:
        """The JWKS names the key and algorithm and carries no private part."""
        (key,) = signer.jwks["keys"]
        assert (key["kid"], key["alg"], key["use"]) == (signer.key_id, signer.algorithm, "sig")
        assert "d" not in key
        assert json.loads(signer.jwks_json) == signer.jwks


class TestRefusals:
    def test_changed_payload_byte(self, signer: EvidenceSigner) -> None:
        """A payload changed by one byte is SIGNATURE_INVALID, still naming kid and index."""
        header, payload, signature = sign(signer).split(".")
        original = b64decode(payload)
        tampered = original.replace(b'"version":1', b'"version":2')
        assert len(tampered) == len(original)
        assert tampered != original
        result = verify_evidence(f"{header}.{b64encode(tampered)}.{signature}", signer.jwks)
        assert not result.valid
        assert result.reason == "SIGNATURE_INVALID"
        assert (result.key_id, result.log_index) == (signer.key_id, 7)
        assert result.payload == {}

    def test_a_material_request_id_of_the_longest_caller_id_verifies(
        self, signer: EvidenceSigner
    ) -> None:
        """ResolveMaterials signs under '<request id>/<n>': with a 128-character request id
        that is longer than 128, and the gateway must still accept its own evidence."""
        request_id = "r" * 128 + "/12"
        token = signer.sign(b"{}", request_id=request_id, log_index=3, issued_at=1)
        result = verify_evidence(token, signer.jwks)
        assert (result.valid, result.request_id) == (True, request_id)

    def test_changed_header(self, signer: EvidenceSigner) -> None:
        """Rewriting the log index in the header breaks the signature."""
        header, payload, signature = sign(signer).split(".")
        forged = dict(header_of(sign(signer)), gsidx=8)
        token = f"{b64encode(json.dumps(forged).encode())}.{payload}.{signature}"
        assert header != token.split(".")[0]
        assert verify_evidence(token, signer.jwks).reason == "SIGNATURE_INVALID"

    def test_key_not_in_jwks(self, signer: EvidenceSigner, tmp_path: Path) -> None:
        """A JWKS without the signing key is KEY_UNKNOWN."""
        other = load_or_create_signer(tmp_path / "other", signer.algorithm)
        assert other.key_id != signer.key_id
        result = verify_evidence(sign(signer), other.jwks)
        assert (result.valid, result.reason) == (False, "KEY_UNKNOWN")

    @pytest.mark.parametrize(
        "token", ["", "garbage", "a.b", "a.b.c.d", "!!!.e30.sig", "e30", "W10.e30.e30"]
    )
    def test_garbage_is_malformed(self, signer: EvidenceSigner, token: str) -> None:
        """Something that is not a compact JWS is MALFORMED, not an exception."""
        result = verify_evidence(token, signer.jwks)
        assert (result.valid, result.reason) == (False, "MALFORMED")

    def test_signed_non_json_payload_is_malformed(self, signer: EvidenceSigner) -> None:
        """A correctly signed payload that is not JSON is MALFORMED."""
        token = signer.sign(b"\xff not json", request_id="r", log_index=1, issued_at=1)
        assert verify_evidence(token, signer.jwks).reason == "MALFORMED"

    @pytest.mark.parametrize("jwks", [{}, {"keys": "nope"}, {"keys": [{"kty": "nope"}]}])
    def test_malformed_jwks(self, signer: EvidenceSigner, jwks: dict[str, Any]) -> None:
        """A JWKS that is not a key set is MALFORMED, not an exception."""
        result = verify_evidence(sign(signer), jwks)
        assert (result.valid, result.reason) == (False, "MALFORMED")


class TestSigningKey:
    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_key_persists_with_mode_0600(self, tmp_path: Path, algorithm: str) -> None:
        """A second load uses the same key (same kid) from a 0600 PEM file."""
        first = load_or_create_signer(tmp_path, algorithm)
        second = load_or_create_signer(tmp_path, algorithm)
        assert first.key_id == second.key_id
        assert first.jwks == second.jwks
        (path,) = tmp_path.glob("*.pem")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"PRIVATE KEY" in path.read_bytes()
        assert verify_evidence(sign(first), second.jwks).valid

    def test_algorithms_use_separate_keys(self, tmp_path: Path) -> None:
        """Ed25519 and ES256 keys live in separate files with separate kids; each
        signer's JWKS lists its own key first and signs only with it."""
        ed = load_or_create_signer(tmp_path / "ed", "Ed25519")
        es = load_or_create_signer(tmp_path / "es", "ES256")
        assert ed.key_id != es.key_id
        assert ed.jwks["keys"][0]["kty"] == "OKP"
        assert es.jwks["keys"][0]["kty"] == "EC"
        assert verify_evidence(sign(ed), es.jwks).reason == "KEY_UNKNOWN"
        both = load_or_create_signer(tmp_path / "es", "Ed25519")
        assert len(list((tmp_path / "es").glob("*.pem"))) == 2
        assert [key["kid"] for key in both.jwks["keys"]] == [both.key_id, es.key_id]
        assert header_of(sign(both))["alg"] == "Ed25519"

    def test_default_is_ed25519(self, tmp_path: Path) -> None:
        """Without an algorithm the signer uses Ed25519."""
        assert load_or_create_signer(tmp_path).algorithm == "Ed25519"

    def test_unsupported_algorithm_refused_without_a_key_file(self, tmp_path: Path) -> None:
        """An unknown algorithm is a ValueError and leaves no key file behind."""
        with pytest.raises(ValueError, match="RS256"):
            load_or_create_signer(tmp_path / "keys", "RS256")
        assert list(tmp_path.rglob("*.pem")) == []

    @pytest.mark.parametrize("algorithm", ["Ed25519", "ES256"])
    def test_a_damaged_key_file_is_refused_naming_the_file(
        self, algorithm: str, tmp_path: Path
    ) -> None:
        """A signing key file that is no PEM private key stops the start naming the file."""
        path = tmp_path / f"evidence-signing-{algorithm.lower()}.pem"
        path.write_bytes(b"xx\n")
        with pytest.raises(ValueError, match=rf"{path.name} is not an unencrypted PEM {algorithm}"):
            load_or_create_signer(tmp_path, algorithm)


class TestCanonicalJson:
    def test_sorted_keys_no_whitespace(self) -> None:
        """Keys are sorted at every level and no whitespace is emitted."""
        value = {"b": 1, "a": [3, {"d": True, "c": None}], "e": "x y"}
        assert canonical_json(value) == b'{"a":[3,{"c":null,"d":true}],"b":1,"e":"x y"}'

    def test_non_ascii_is_raw_utf8(self) -> None:
        """Non-ASCII text is UTF-8, not \\u escapes; control characters are escaped."""
        assert canonical_json({"名称": "市公安局"}) == '{"名称":"市公安局"}'.encode()
        assert canonical_json('a\nb\u000f"\\') == b'"a\\nb\\u000f\\"\\\\"'

    def test_keys_sort_by_utf16_code_units(self) -> None:
        """RFC 8785 §3.2.3: key order is by UTF-16 code units, not code points."""
        value = {
            "\u20ac": 1,
            "\r": 2,
            "\ufb33": 3,
            "1": 4,
            "\U0001f600": 5,
            "\u0080": 6,
            "\u00f6": 7,
        }
        order = [key for key in json.loads(canonical_json(value))]
        assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]

    @pytest.mark.parametrize(
        ("number", "text"),
        [
            (0, b"0"),
            (-0.0, b"0"),
            (1.0, b"1"),
            (4.50, b"4.5"),
            (2e-3, b"0.002"),
            (0.000001, b"0.000001"),
            (1e-7, b"1e-7"),
            (1e20, b"100000000000000000000"),
            (1e21, b"1e+21"),
            (1e30, b"1e+30"),
            (333333333.33333329, b"333333333.3333333"),
            (-1.5, b"-1.5"),
            (2**53 - 1, b"9007199254740991"),
        ],
    )
    def test_numbers(self, number: float, text: bytes) -> None:
        """Numbers serialise as ECMAScript does (RFC 8785 §3.2.2.3)."""
        assert canonical_json(number) == text

    @pytest.mark.parametrize("value", [2**53, float("nan"), float("inf")])
    def test_numbers_outside_i_json_refused(self, value: float) -> None:
        """Integers beyond 2^53-1, NaN and infinities cannot be canonicalised."""
        with pytest.raises(ValueError, match=r"domain|not representable"):
            canonical_json(value)
