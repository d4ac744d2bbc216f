"""Evidence signing keys over time: evidence issued under an earlier algorithm or an
earlier key still verifies, online (VerifyEvidence) and offline (the published JWKS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import (
    SIGNING_ALGORITHMS,
    EvidenceSigner,
    Gateway,
    GatewayConfig,
    canonical_json,
    load_or_create_signer,
    main,
    verify_evidence,
)
from support import Pki, RunningGateway

RECORD = {"fields": {"name": "张三"}, "request_id": "r1"}


def sign(signer: EvidenceSigner) -> str:
    return signer.sign(canonical_json(RECORD), request_id="r1", log_index=3, issued_at=1)


def kids(signer: EvidenceSigner) -> list[str]:
    return [key["kid"] for key in signer.jwks["keys"]]


def retire(keys: Path, algorithm: str, name: str) -> Path:
    """What the operator does to rotate: move the key file into keys/retired/."""
    retired = keys / "retired"
    retired.mkdir(exist_ok=True)
    target = retired / name
    (keys / f"evidence-signing-{algorithm.lower()}.pem").rename(target)
    return target


class TestAlgorithmSwitch:
    @pytest.mark.parametrize(("before", "after"), [SIGNING_ALGORITHMS, SIGNING_ALGORITHMS[::-1]])
    def test_the_earlier_algorithms_key_stays_published_but_never_signs(
        self, before: str, after: str, tmp_path: Path
    ) -> None:
        """After a change of signing_algorithm, the JWKS lists the new key first and the
        earlier one (same kid as before), evidence of both verifies, and the new
        evidence is signed with the new algorithm."""
        old = load_or_create_signer(tmp_path, before)
        archived = sign(old)
        new = load_or_create_signer(tmp_path, after)
        assert kids(new) == [new.key_id, old.key_id]
        assert [key["alg"] for key in new.jwks["keys"]] == [after, before]
        assert all("d" not in key for key in new.jwks["keys"])
        assert json.loads(new.jwks_json) == new.jwks
        earlier = verify_evidence(archived, new.jwks)
        assert (earlier.valid, earlier.key_id) == (True, old.key_id)
        current = verify_evidence(sign(new), new.jwks)
        assert (current.valid, current.key_id) == (True, new.key_id)
        assert new.algorithm == after


class TestRotation:
    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_a_key_moved_to_retired_is_replaced_and_still_published(
        self, algorithm: str, tmp_path: Path
    ) -> None:
        """Moving the key file to keys/retired/ (any name ending .pem) makes the next
        start create a new key; the old one stays in the JWKS under its kid."""
        old = load_or_create_signer(tmp_path, algorithm)
        archived = sign(old)
        retire(tmp_path, algorithm, "until-2026-06.pem")
        new = load_or_create_signer(tmp_path, algorithm)
        assert new.key_id != old.key_id
        assert kids(new) == [new.key_id, old.key_id]
        assert verify_evidence(archived, new.jwks).valid
        assert verify_evidence(sign(new), new.jwks).key_id == new.key_id

    def test_a_retired_key_may_be_kept_as_its_public_half_only(self, tmp_path: Path) -> None:
        """keys/retired/ may hold just the public key (SPKI PEM, as `openssl pkey
        -pubout` writes), so the retired private key can be destroyed; the kid is the
        same."""
        old = load_or_create_signer(tmp_path)
        archived = sign(old)
        private_file = retire(tmp_path, "Ed25519", "old.pem")
        private = serialization.load_pem_private_key(private_file.read_bytes(), password=None)
        private_file.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        assert b"PRIVATE" not in private_file.read_bytes()
        new = load_or_create_signer(tmp_path)
        assert kids(new) == [new.key_id, old.key_id]
        assert verify_evidence(archived, new.jwks).valid

    def test_several_retired_keys_of_both_algorithms_are_all_published(
        self, tmp_path: Path
    ) -> None:
        """Every generation stays verifiable: two Ed25519 rotations and an ES256 key."""
        tokens: dict[str, str] = {}
        for generation in range(2):
            signer = load_or_create_signer(tmp_path, "Ed25519")
            tokens[signer.key_id] = sign(signer)
            retire(tmp_path, "Ed25519", f"ed25519-{generation}.pem")
        es = load_or_create_signer(tmp_path, "ES256")
        tokens[es.key_id] = sign(es)
        current = load_or_create_signer(tmp_path, "Ed25519")
        assert len(kids(current)) == 4
        assert kids(current)[0] == current.key_id
        for kid, token in tokens.items():
            assert verify_evidence(token, current.jwks).key_id == kid
            assert verify_evidence(token, current.jwks).valid

    def test_a_copy_of_the_active_key_in_retired_is_listed_once(self, tmp_path: Path) -> None:
        """Copying instead of moving leaves one JWKS entry per kid."""
        signer = load_or_create_signer(tmp_path)
        (tmp_path / "retired").mkdir()
        (tmp_path / "retired" / "copy.pem").write_bytes(
            (tmp_path / "evidence-signing-ed25519.pem").read_bytes()
        )
        assert kids(load_or_create_signer(tmp_path)) == [signer.key_id]

    def test_other_files_in_retired_are_ignored(self, tmp_path: Path) -> None:
        """Only *.pem files are keys: a note beside them is not read."""
        (tmp_path / "retired").mkdir(parents=True)
        (tmp_path / "retired" / "README").write_text("rotated on 2026-06-01")
        signer = load_or_create_signer(tmp_path)
        assert kids(signer) == [signer.key_id]

    @pytest.mark.parametrize(
        "content",
        [
            b"not a key",
            ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ],
        ids=["garbage", "p384"],
    )
    def test_a_retired_file_that_is_not_an_evidence_key_stops_the_start(
        self, content: bytes, tmp_path: Path
    ) -> None:
        """A .pem in retired/ that is not an Ed25519 or P-256 key is a ValueError naming
        the file: evidence the operator meant to keep verifiable must not silently
        stop verifying."""
        (tmp_path / "retired").mkdir(parents=True)
        (tmp_path / "retired" / "bad.pem").write_bytes(content)
        with pytest.raises(ValueError, match=r"bad\.pem"):
            load_or_create_signer(tmp_path)


class TestRequestPath:
    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_published_keys_change_nothing_in_what_is_signed(
        self, algorithm: str, tmp_path: Path
    ) -> None:
        """With earlier keys published, the active key signs with the same header
        (its own kid and algorithm) as a signer without them; Ed25519, being
        deterministic, gives the identical token."""
        other = SIGNING_ALGORITHMS[1 - SIGNING_ALGORITHMS.index(algorithm)]
        load_or_create_signer(tmp_path / "with", other)
        alone = load_or_create_signer(tmp_path / "alone", algorithm)
        (tmp_path / "with" / f"evidence-signing-{algorithm.lower()}.pem").write_bytes(
            (tmp_path / "alone" / f"evidence-signing-{algorithm.lower()}.pem").read_bytes()
        )
        published = load_or_create_signer(tmp_path / "with", algorithm)
        assert len(published.jwks["keys"]) == 2
        token = sign(published)
        assert token.split(".")[0] == sign(alone).split(".")[0]
        if algorithm == "Ed25519":
            assert token == sign(alone)


class TestGateway:
    async def test_evidence_issued_before_a_switch_and_a_rotation_still_verifies(
        self,
        simulators: dict[str, str],
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
        population: Population,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Evidence from an Ed25519 gateway verifies after it restarts with ES256 and
        again after the ES256 key is rotated into keys/retired/: VerifyEvidence answers
        valid, and ListSigningKeys publishes every key so `evidence verify` agrees."""
        config = gateway_config(simulators)
        request = exchange_pb2.GetCertificateRequest(
            certificate_type="identity_record",
            holder=exchange_pb2.Holder(id_type="111", id=population.persons[0].citizen_id),
            matter_code="330100-BDC-0001",
            purpose="不动产转移登记核验卖方身份",
        )
        issued: list[exchange_pb2.Evidence] = []
        jwks = ""
        for step, algorithm in enumerate(("Ed25519", "ES256", "ES256")):
            if step == 2:
                retire(config.keys_dir, "ES256", "es256-first.pem")
            async with Gateway(config.replace(signing_algorithm=algorithm)) as running:
                gw = RunningGateway(running, pki)
                async with gw.channel(pki.land_registry) as channel:
                    stub = gw.exchange(channel)
                    issued.append(await stub.GetCertificate(request, timeout=10))
                    verdicts = [
                        await stub.VerifyEvidence(
                            exchange_pb2.VerifyEvidenceRequest(jws=evidence.jws), timeout=10
                        )
                        for evidence in issued
                    ]
                    reply = await stub.ListSigningKeys(exchange_pb2.ListSigningKeysRequest())
            jwks = reply.jwks_json
            assert [(v.valid, v.reason, v.key_id) for v in verdicts] == [
                (True, "", evidence.key_id) for evidence in issued
            ]
            assert json.loads(jwks)["keys"][0]["kid"] == issued[-1].key_id
        assert len({evidence.key_id for evidence in issued}) == 3
        assert {key["kid"] for key in json.loads(jwks)["keys"]} == {e.key_id for e in issued}
        (tmp_path / "jwks.json").write_text(jwks)
        (tmp_path / "first.jws").write_text(issued[0].jws)
        capsys.readouterr()
        args = ["evidence", "verify", str(tmp_path / "first.jws")]
        assert main([*args, "--jwks", str(tmp_path / "jwks.json")]) == 0
        assert capsys.readouterr().out.startswith(f"valid: key {issued[0].key_id}")
