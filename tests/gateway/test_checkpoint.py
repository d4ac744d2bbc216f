from __future__ import annotations

import base64
import hashlib
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from govshare.gateway._checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    load_or_create_note_signer,
    open_note,
    open_signed_note,
)
from govshare.gateway._merkle import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes

EM = "\u2014"
ORIGIN = "gov.example/audit/v1"
ROOT = root_from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])

# External vectors from golang.org/x/mod, sumdb/note/note_test.go (TestSign, TestOpen,
# TestNewVerifier; commit 02c991387e35f9e4c0a9b7ce137717055f8d716d).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = f"{EM} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = f"{EM} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# A real checkpoint of the Go checksum database (sum.golang.org/latest, 2024-09-23) and the
# database's published key, as quoted in sigsum-go's TestGoSumDBCheckpoint; the key is also
# in golang/go src/cmd/go/internal/modfetch/key.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n"
    f"{EM} sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n"
)


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner("audit.gov.example", Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def note(signer: NoteSigner) -> str:
    return signer.sign(Checkpoint(ORIGIN, 3, ROOT).body())


class TestCheckpointBody:
    def test_body_format(self) -> None:
        """The body is origin, decimal size, base64 root and extension lines, each newline-ended."""
        body = Checkpoint(ORIGIN, 3, ROOT, ("ext one",)).body()
        assert body == f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\next one\n".encode()

    @pytest.mark.parametrize("extensions", [(), ("a",), ("a b", "c")])
    def test_parse_round_trip(self, extensions: tuple[str, ...]) -> None:
        """parse(body()) gives the same checkpoint back, extensions included."""
        checkpoint = Checkpoint(ORIGIN, 2**64 - 1, ROOT, extensions)
        assert Checkpoint.parse(checkpoint.body()) == checkpoint
        assert Checkpoint.parse(checkpoint.body().decode()) == checkpoint

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"origin\n3\n",
            b"origin\n3\n" + base64.b64encode(ROOT),
            b"origin\n03\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n-3\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n+3\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n 3\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n18446744073709551616\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n3\n" + base64.b64encode(ROOT[:31]) + b"\n",
            b"origin\n3\n" + base64.b64encode(ROOT).rstrip(b"=") + b"\n",
            b"origin\n3\n" + base64.urlsafe_b64encode(b"\xff" * 32) + b"\n",
            b"\n3\n" + base64.b64encode(ROOT) + b"\n",
            b"origin\n3\n" + base64.b64encode(ROOT) + b"\n\n",
            b"ori\tgin\n3\n" + base64.b64encode(ROOT) + b"\n",
            b"\xff\n3\n" + base64.b64encode(ROOT) + b"\n",
        ],
    )
    def test_parse_rejects_malformed(self, body: bytes) -> None:
        """Missing lines, non-canonical sizes or hashes, empty lines or bad bytes are CheckpointError."""
        with pytest.raises(CheckpointError, match="malformed checkpoint"):
            Checkpoint.parse(body)

    def test_constructor_rejects_impossible_values(self) -> None:
        """A checkpoint cannot be built with a bad origin, size or root."""
        for args in [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 1, ROOT[:5])]:
            with pytest.raises(ValueError, match=r"origin|size|root"):
                Checkpoint(*args)


class TestSignAndOpen:
    def test_round_trip(self, signer: NoteSigner, note: str) -> None:
        """A signed checkpoint opens with the signer's verifier key and origin."""
        verifier = NoteVerifier.from_key(signer.verifier_key())
        assert open_signed_note(note, [verifier], origin=ORIGIN) == Checkpoint(ORIGIN, 3, ROOT)
        assert open_signed_note(note.encode(), [verifier]).size == 3

    def test_signature_line_format(self, signer: NoteSigner, note: str) -> None:
        """The note is body, blank line, then '— name base64(key hash || 64-byte signature)'."""
        body, signature = note.split("\n\n")
        assert body + "\n" == Checkpoint(ORIGIN, 3, ROOT).body().decode()
        prefix, name, blob = signature.removesuffix("\n").split(" ")
        raw = base64.b64decode(blob)
        assert (prefix, name, len(raw)) == (EM, signer.name, 68)
        assert raw[:4] == signer.key_hash.to_bytes(4, "big")

    @pytest.mark.parametrize(
        ("old", "new"),
        [("\n3\n", "\n4\n"), (ORIGIN, "gov.example/audit/v2"), ("=\n\n", "=\nextra\n\n")],
        ids=["size", "origin", "extension"],
    )
    def test_tampered_body_fails(self, signer: NoteSigner, note: str, old: str, new: str) -> None:
        """Changing the size, origin or adding a line breaks the signature."""
        tampered = note.replace(old, new, 1)
        assert tampered != note
        with pytest.raises(
            CheckpointError, match=r"invalid signature for key audit\.gov\.example\+"
        ):
            open_signed_note(tampered, [signer.verifier()])

    def test_tampered_root_fails(self, signer: NoteSigner, note: str) -> None:
        """A different root hash breaks the signature."""
        tampered = note.replace(
            base64.b64encode(ROOT).decode(), base64.b64encode(EMPTY_ROOT).decode()
        )
        with pytest.raises(CheckpointError, match="invalid signature"):
            open_signed_note(tampered, [signer.verifier()])

    def test_unknown_key_fails(self, note: str) -> None:
        """A note signed only by keys the caller does not know is rejected, naming the signers."""
        stranger = NoteSigner("someone.else", Ed25519PrivateKey.generate())
        with pytest.raises(
            CheckpointError, match=r"no signature by a known key .*audit\.gov\.example\+"
        ):
            open_signed_note(note, [stranger.verifier()])
        with pytest.raises(CheckpointError, match="no signature by a known key"):
            open_signed_note(note, [])

    def test_same_name_other_key_is_unknown(self, signer: NoteSigner, note: str) -> None:
        """A key with the signer's name but another public key has another key hash: unknown."""
        impostor = NoteSigner(signer.name, Ed25519PrivateKey.generate())
        with pytest.raises(CheckpointError, match="no signature by a known key"):
            open_signed_note(note, [impostor.verifier()])

    def test_wrong_origin_fails(self, signer: NoteSigner, note: str) -> None:
        """A validly signed checkpoint of another log is refused when the origin is pinned."""
        with pytest.raises(CheckpointError, match=r"expected 'other\.example/log'"):
            open_signed_note(note, [signer.verifier()], origin="other.example/log")

    def test_cosignatures_by_others_are_ignored(self, signer: NoteSigner, note: str) -> None:
        """Extra signature lines from unknown keys (e.g. witnesses) do not stop verification."""
        witness = NoteSigner("witness.example", Ed25519PrivateKey.generate())
        body = Checkpoint(ORIGIN, 3, ROOT).body()
        cosigned = note + witness.sign(body).split("\n\n")[1]
        assert open_signed_note(cosigned, [signer.verifier()]).size == 3
        assert open_signed_note(cosigned, [witness.verifier()]).size == 3

    def test_signature_count_is_bounded(self, signer: NoteSigner, note: str) -> None:
        """More than 100 signature lines is a malformed note."""
        line = note.split("\n\n")[1]
        with pytest.raises(CheckpointError, match="more than 100"):
            open_signed_note(note + line * 100, [signer.verifier()])

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda n: n.replace("\n\n", "\n"),
            lambda n: n.removesuffix("\n"),
            lambda n: n.replace(EM, "-"),
            lambda n: n + "Unexpected line.\n",
            lambda n: n.replace("\n3\n", "\n3\r\n"),
            lambda n: n[: n.rindex(" ")] + " not*base64\n",
            lambda n: n[: n.rindex(" ")] + " AAAA\n",
        ],
        ids=[
            "no-blank-line",
            "no-final-newline",
            "hyphen",
            "trailing-line",
            "cr",
            "bad-base64",
            "short-signature",
        ],
    )
    def test_malformed_notes(
        self, signer: NoteSigner, note: str, mangle: Callable[[str], str]
    ) -> None:
        """Structural damage to the note is reported as a malformed note."""
        with pytest.raises(CheckpointError, match="malformed note"):
            open_signed_note(mangle(note), [signer.verifier()])

    def test_sign_refuses_unterminated_text(self, signer: NoteSigner) -> None:
        """Only newline-terminated text without control characters can be signed."""
        for text in ["abc", "a\x01b\n"]:
            with pytest.raises(CheckpointError, match="malformed note"):
                signer.sign(text)


class TestKeys:
    def test_key_hash_definition(self, signer: NoteSigner) -> None:
        """Key hash = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
        name, hash_hex, key_b64 = signer.verifier_key().split("+", 2)
        raw = base64.b64decode(key_b64)
        assert raw[0] == 1
        assert len(raw) == 33
        expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        assert bytes.fromhex(hash_hex) == expected == signer.key_hash.to_bytes(4, "big")

    def test_verifier_key_round_trip(self, signer: NoteSigner) -> None:
        """from_key(verifier_key()) is the signer's verifier."""
        assert NoteVerifier.from_key(signer.verifier_key()).key() == signer.verifier_key()

    def test_manglings_of_a_verifier_key_are_refused(self) -> None:
        """Every proper substring and every one-byte change of a key is refused (Go's TestNewVerifier)."""
        assert NoteVerifier.from_key(PETER_VKEY).key() == PETER_VKEY
        accepted = []
        for i in range(len(PETER_VKEY) + 1):
            for j in range(i + 1, len(PETER_VKEY) + 1):
                if (i, j) != (0, len(PETER_VKEY)):
                    accepted += _accepts(PETER_VKEY[i:j])
        for i in range(len(PETER_VKEY)):
            accepted += _accepts(PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :])
        accepted += _accepts(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        accepted += _accepts("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        assert accepted == []

    def test_signer_key_string(self) -> None:
        """A Go signer key string gives the signer of the matching verifier key."""
        signer = NoteSigner.from_key(PETER_SKEY)
        assert signer.verifier_key() == PETER_VKEY
        for bad in [PETER_SKEY[1:], PETER_SKEY.replace("c74f20a3", "c74f20a4"), PETER_SKEY[:-2]]:
            with pytest.raises(ValueError, match="signer key"):
                NoteSigner.from_key(bad)

    def test_ambiguous_verifiers(self) -> None:
        """Two different keys claiming the same name and key hash are refused."""
        peter = NoteVerifier.from_key(PETER_VKEY)
        fake = NoteVerifier(peter.name, peter.key_hash, Ed25519PrivateKey.generate().public_key())
        with pytest.raises(CheckpointError, match="ambiguous key PeterNeumann"):
            open_note(GO_TEXT + "\n" + PETER_SIG, [peter, fake])


def _accepts(vkey: str) -> list[str]:
    try:
        NoteVerifier.from_key(vkey)
    except ValueError:
        return []
    return [vkey]


class TestExternalVectors:
    def test_go_signature_is_reproduced(self) -> None:
        """Signing Go's text with Go's key gives Go's signed note byte for byte (Ed25519 is deterministic)."""
        assert NoteSigner.from_key(PETER_SKEY).sign(GO_TEXT) == GO_TEXT + "\n" + PETER_SIG

    def test_go_note_opens(self) -> None:
        """Go's note with two signatures opens with either key, and the text comes back."""
        message = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
        peter, enoch = NoteVerifier.from_key(PETER_VKEY), NoteVerifier.from_key(ENOCH_VKEY)
        assert open_note(message, [peter]) == GO_TEXT
        assert open_note(message.encode(), [peter, enoch]) == GO_TEXT
        assert open_note(GO_TEXT + "\n" + ENOCH_SIG, [enoch]) == GO_TEXT
        with pytest.raises(CheckpointError, match="no signature by a known key"):
            open_note(message, [])

    def test_go_invalid_signature(self) -> None:
        """Go's corrupted-signature case fails with the key named."""
        raw = (GO_TEXT + "\n" + PETER_SIG).encode()
        sig_start = len(GO_TEXT.encode()) + 1
        corrupted = raw[: sig_start + 60] + b"ABCD" + raw[sig_start + 60 :]
        with pytest.raises(
            CheckpointError, match=r"invalid signature for key PeterNeumann\+c74f20a3"
        ):
            open_note(corrupted, [NoteVerifier.from_key(PETER_VKEY)])

    @pytest.mark.parametrize(
        "message",
        [
            GO_TEXT,
            GO_TEXT + "\n",
            GO_TEXT + "\n" + PETER_SIG[:-1],
            "\x01" + GO_TEXT + "\n" + PETER_SIG,
            b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(),
            GO_TEXT
            + "\n"
            + f"{EM} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
            GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
            GO_TEXT + "\n" + PETER_SIG * 101,
        ],
    )
    def test_go_malformed_notes(self, message: str | bytes) -> None:
        """Go's list of malformed messages is refused as malformed."""
        with pytest.raises(CheckpointError, match="malformed note"):
            open_note(message, [NoteVerifier.from_key(PETER_VKEY)])

    def test_sum_golang_org_checkpoint(self) -> None:
        """A real checkpoint of sum.golang.org verifies with its published key and parses."""
        sumdb = NoteVerifier.from_key(SUMDB_VKEY)
        checkpoint = open_signed_note(SUMDB_NOTE, [sumdb], origin="go.sum database tree")
        assert checkpoint.size == 30055305
        assert checkpoint.root_hash == base64.b64decode(
            "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM="
        )
        assert checkpoint.body().decode() == SUMDB_NOTE.split("\n\n")[0] + "\n"
        with pytest.raises(
            CheckpointError, match=r"invalid signature for key sum\.golang\.org\+033de0ae"
        ):
            open_signed_note(SUMDB_NOTE.replace("30055305", "30055306"), [sumdb])


class TestLoadOrCreateNoteSigner:
    def test_creates_private_key_file(self, tmp_path: Path) -> None:
        """The key is created as an Ed25519 PKCS#8 PEM readable by the owner only."""
        path = tmp_path / "keys" / "checkpoint.pem"
        signer = load_or_create_note_signer(path, "audit.gov.example")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert signer.name == "audit.gov.example"

    def test_reloads_the_same_key(self, tmp_path: Path) -> None:
        """A second call loads the stored key instead of making a new one."""
        path = tmp_path / "checkpoint.pem"
        first = load_or_create_note_signer(path, "audit.gov.example")
        second = load_or_create_note_signer(path, "audit.gov.example")
        assert first.verifier_key() == second.verifier_key()
        note = second.sign(Checkpoint(ORIGIN, 1, ROOT).body())
        assert open_signed_note(note, [first.verifier()]).size == 1

    def test_refuses_other_key_types(self, tmp_path: Path) -> None:
        """A PEM holding a non-Ed25519 key is refused."""
        path = tmp_path / "checkpoint.pem"
        path.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        with pytest.raises(ValueError, match="Ed25519"):
            load_or_create_note_signer(path, "audit.gov.example")

    @pytest.mark.parametrize("content", [b"xx\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
    def test_a_damaged_key_file_is_named(self, content: bytes, tmp_path: Path) -> None:
        """A key file that is not a PEM private key is refused naming the file."""
        path = tmp_path / "log-note-signing.pem"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"log-note-signing\.pem is not an unencrypted PEM"):
            load_or_create_note_signer(path, "audit.gov.example")

    def test_refuses_invalid_name(self, tmp_path: Path) -> None:
        """Key names with spaces or '+' are refused before any key file is written."""
        for name in ["a b", "a+b", ""]:
            with pytest.raises(ValueError, match="invalid key name"):
                load_or_create_note_signer(tmp_path / "k.pem", name)
        assert not (tmp_path / "k.pem").exists()
