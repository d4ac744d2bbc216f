"""The `govshare` command line: pki, evidence verify and audit verify."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from cryptography import x509
from google.protobuf import json_format, timestamp_pb2
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import (
    SqliteAccessLog,
    canonical_json,
    load_or_create_note_signer,
    load_or_create_signer,
    main,
)
from govshare.gateway import _cli as cli
from support import RunningGateway


class TestPki:
    def test_init_then_issue_writes_a_department_certificate(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`pki init` then `pki issue --dept` yields a certificate naming the department."""
        folder = tmp_path / "pki"
        assert main(["pki", "init", "--dir", str(folder)]) == 0
        assert main(["pki", "issue", "--dir", str(folder), "--dept", "11330100002482106W"]) == 0
        cert = x509.load_pem_x509_certificate((folder / "dept-11330100002482106W.crt").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
            "spiffe://govshare.local/dept/11330100002482106W"
        ]
        assert "dept-11330100002482106W.key" in capsys.readouterr().out

    def test_issue_refuses_an_invalid_uscc(self, tmp_path: Path) -> None:
        """A department code failing the GB 32100 check is refused with exit code 2."""
        folder = tmp_path / "pki"
        main(["pki", "init", "--dir", str(folder)])
        assert main(["pki", "issue", "--dir", str(folder), "--dept", "11330100002482106X"]) == 2
        assert not list(folder.glob("dept-*"))

    def test_init_does_not_replace_an_existing_ca(self, tmp_path: Path) -> None:
        """A second `pki init` keeps the CA unless --force is given."""
        folder = tmp_path / "pki"
        main(["pki", "init", "--dir", str(folder)])
        first = (folder / "ca.crt").read_bytes()
        main(["pki", "init", "--dir", str(folder)])
        assert (folder / "ca.crt").read_bytes() == first
        main(["pki", "init", "--dir", str(folder), "--force"])
        assert (folder / "ca.crt").read_bytes() != first

    def test_init_keeps_a_ca_whose_server_certificate_is_missing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without server.crt, `pki init` reissues only that: the CA and its clients stay valid."""
        folder = tmp_path / "pki"
        main(["pki", "init", "--dir", str(folder)])
        ca_key = (folder / "ca.key").read_bytes()
        (folder / "server.crt").unlink()
        assert main(["pki", "init", "--dir", str(folder)]) == 0
        assert (folder / "ca.key").read_bytes() == ca_key
        server = x509.load_pem_x509_certificate((folder / "server.crt").read_bytes())
        ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        server.verify_directly_issued_by(ca)
        assert "reissued" in capsys.readouterr().out

    def test_issue_uses_the_trust_domain_init_recorded(self, tmp_path: Path) -> None:
        """`pki init --trust-domain` is remembered: `pki issue` names the same domain."""
        folder = tmp_path / "pki"
        assert main(["pki", "init", "--dir", str(folder), "--trust-domain", "gov.example"]) == 0
        assert main(["pki", "issue", "--dir", str(folder), "--auditor", "li"]) == 0
        cert = x509.load_pem_x509_certificate((folder / "auditor-li.crt").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
            "spiffe://gov.example/auditor/li"
        ]

    @pytest.mark.parametrize(
        "arguments",
        [
            ["init", "--trust-domain", "Bad Domain/x"],
            ["issue", "--admin", ""],
            ["issue", "--dept", ""],
            ["issue", "--admin", "bad/name"],
            ["issue", "--auditor", ""],
        ],
    )
    def test_bad_arguments_are_one_line_errors(
        self, arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad names or domains exit 2 with one line on stderr, and issue nothing."""
        folder = tmp_path / "pki"
        main(["pki", "init", "--dir", str(folder)])
        before = sorted(folder.iterdir())
        capsys.readouterr()
        assert main(["pki", arguments[0], "--dir", str(folder), *arguments[1:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("govshare: error:") or "must be" in err
        assert "Traceback" not in err
        assert sorted(folder.iterdir()) == before


class TestServeStartupErrors:
    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            ("bogus: 1\n", "unknown configuration keys: bogus"),
            ("listen: [\n", "configuration"),
            ("event_loop: fastest\n", "event_loop"),
        ],
    )
    def test_bad_configuration_is_one_line(
        self, config: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad config file exits 2 with one line naming the problem, no traceback."""
        path = tmp_path / "gateway.yaml"
        path.write_text(f"data_dir: {tmp_path / 'data'}\n" + config)
        assert main(["serve", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert expected in err
        assert len(err.strip().splitlines()) == 1

    def test_a_missing_pki_and_a_taken_port_are_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Start failures (no PKI, then a port in use) exit 2 with one line each."""
        data = tmp_path / "data"
        path = tmp_path / "gateway.yaml"
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            path.write_text(f"data_dir: {data}\nlisten: 127.0.0.1:{port}\nevent_loop: asyncio\n")
            assert main(["serve", "--config", str(path)]) == 2
            assert "no PKI" in capsys.readouterr().err
            main(["pki", "init", "--dir", str(data / "pki")])
            capsys.readouterr()
            assert main(["serve", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert "cannot start the gateway" in err
        assert len(err.strip().splitlines()) == 1


class TestEvidenceVerify:
    @pytest.mark.parametrize(
        ("evidence", "jwks"),
        [('{"no_jws": 1}', "{}"), ("{not json", "{}"), ("a.b.c", "[1"), (None, "{}")],
        ids=["no-jws", "bad-json", "bad-jwks", "missing-file"],
    )
    def test_unreadable_input_is_invalid_not_a_traceback(
        self,
        evidence: str | None,
        jwks: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Files that cannot be read as evidence or a key set exit 2 with an INVALID line."""
        file = tmp_path / "evidence.json"
        if evidence is not None:
            file.write_text(evidence)
        keys = tmp_path / "jwks.json"
        keys.write_text(jwks)
        assert main(["evidence", "verify", str(file), "--jwks", str(keys)]) == 2
        assert capsys.readouterr().out.startswith("INVALID: cannot read")

    def test_valid_and_tampered_evidence(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Valid evidence exits 0 naming its key, request and log index; one changed
        payload character exits 1 with the reason SIGNATURE_INVALID."""
        signer = load_or_create_signer(tmp_path / "keys")
        token = signer.sign(
            canonical_json({"fields": {"name": "宋飞帆"}}),
            request_id="r1",
            log_index=7,
            issued_at=1,
        )
        jwks = tmp_path / "jwks.json"
        jwks.write_text(signer.jwks_json)
        good = tmp_path / "good.json"
        good.write_text(json.dumps({"jws": token}))
        header, payload, signature = token.split(".")
        bad = tmp_path / "bad.jws"
        bad.write_text(
            f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
        )
        assert main(["evidence", "verify", str(good), "--jwks", str(jwks)]) == 0
        kid = json.loads(signer.jwks_json)["keys"][0]["kid"]
        assert capsys.readouterr().out == f"valid: key {kid}, request r1, log index 7\n"
        assert main(["evidence", "verify", str(bad), "--jwks", str(jwks)]) == 1
        assert capsys.readouterr().out == "INVALID: SIGNATURE_INVALID\n"


async def _signed_log(folder: Path, entries: int) -> tuple[Path, str]:
    signer = load_or_create_note_signer(folder / "note.pem", "test.local/access-log")
    db = folder / "audit.db"
    log = SqliteAccessLog(db, note_signer=signer, origin="test.local/access-log")
    await log.open()
    for index in range(entries):
        await log.append({"outcome": "ALLOWED", "n": index}).wait()
    await log.publish_checkpoint()
    await log.close()
    return db, signer.verifier_key()


class TestAuditVerify:
    async def test_a_changed_leaf_is_named_by_index(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify` passes an intact log and names the first altered entry."""
        db, key = await _signed_log(tmp_path, 10)
        assert main(["audit", "verify", "--db", str(db), "--key", key]) == 0
        assert "10 entries, 1 signed checkpoints verified" in capsys.readouterr().out
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE access_log SET leaf = ? WHERE idx = 6", (b'{"n":6,"outcome":"DENIED"}',)
            )
        assert main(["audit", "verify", "--db", str(db), "--key", key]) == 1
        assert "index 6" in capsys.readouterr().out

    async def test_an_export_verifies_against_its_checkpoints(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit export` output verifies offline; an edited export line fails."""
        db, key = await _signed_log(tmp_path, 12)
        out = tmp_path / "export"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 0
        args = [
            "audit",
            "verify",
            "--export",
            str(out / "entries.jsonl"),
            "--checkpoints",
            str(out / "checkpoints.json"),
            "--key",
            key,
        ]
        assert main(args) == 0
        lines = (out / "entries.jsonl").read_text().splitlines()
        entry = json.loads(lines[3])
        entry["leaf"] = base64.b64encode(b'{"n":3,"outcome":"DENIED"}').decode()
        lines[3] = json.dumps(entry)
        (out / "entries.jsonl").write_text("\n".join(lines) + "\n")
        capsys.readouterr()
        assert main(args) == 1
        assert "FAILED" in capsys.readouterr().out

    async def test_an_export_with_int64_indices_as_strings_verifies(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Entries saved in protobuf's JSON form ("index": "7", an int64 as a string)
        verify like numbers; a non-numeric index is still refused (exit 2)."""
        db, key = await _signed_log(tmp_path, 9)
        out = tmp_path / "export"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 0
        entries = out / "entries.jsonl"
        as_strings = [
            json.dumps({**entry, "index": str(entry["index"])})
            for entry in map(json.loads, entries.read_text().splitlines())
        ]
        entries.write_text("\n".join(as_strings) + "\n")
        args = ["audit", "verify", "--export", str(entries)]
        args += ["--checkpoints", str(out / "checkpoints.json"), "--key", key]
        capsys.readouterr()
        assert main(args) == 0
        for bad in ('"zero"', '"9999999999999999999"', "-1", str(10**30)):
            entries.write_text(as_strings[0].replace('"index": "0"', f'"index": {bad}') + "\n")
            assert main(args) == 2, bad

    def test_a_file_that_is_no_database_is_unusable_input(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify --db` on a file that is not SQLite, or on a folder, exits 2
        (INVALID), not 1."""
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not a database" * 100)
        assert main(["audit", "verify", "--db", str(junk)]) == 2
        assert capsys.readouterr().out.startswith("INVALID: cannot read the log")
        assert main(["audit", "verify", "--db", str(tmp_path)]) == 2
        assert capsys.readouterr().out.startswith("INVALID: no such file")


class TestAuditProve:
    async def test_prove_prints_a_proof_that_verify_accepts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An inclusion proof from `audit prove` checks out; a changed leaf in it does not."""
        db, key = await _signed_log(tmp_path, 21)
        capsys.readouterr()
        assert main(["audit", "prove", "13", "--db", str(db)]) == 0
        proof = json.loads(capsys.readouterr().out)
        assert (proof["index"], proof["tree_size"]) == (13, 21)
        path = tmp_path / "proof.json"
        path.write_text(json.dumps(proof))
        assert main(["audit", "verify", "--proof", str(path), "--key", key]) == 0
        proof["leaf"] = base64.b64encode(b'{"n":99}').decode()
        path.write_text(json.dumps(proof))
        assert main(["audit", "verify", "--proof", str(path), "--key", key]) == 1


class TestAuditCommandsReportBadInputWithoutATraceback:
    """Damaged logs and malformed files give a one-line verdict and an exit code."""

    async def test_a_leaf_edited_as_text_fails_at_its_index(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify` names an entry whose leaf was rewritten as TEXT."""
        db, key = await _signed_log(tmp_path, 6)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE access_log SET leaf = '{\"forged\":1}' WHERE idx = 3")
        assert main(["audit", "verify", "--db", str(db), "--key", key]) == 1
        assert "FAILED at index 3" in capsys.readouterr().out

    async def test_a_forged_checkpoint_names_no_index(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A checkpoint whose signature fails is reported without a made-up index."""
        db, key = await _signed_log(tmp_path, 6)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE checkpoints SET note = replace(note, '\n6\n', '\n7\n')")
        assert main(["audit", "verify", "--db", str(db), "--key", key]) == 1
        out = capsys.readouterr().out
        assert "FAILED: checkpoint signature" in out
        assert "None" not in out

    @pytest.mark.parametrize(
        "case",
        ["export line without leaf", "missing checkpoints file", "checkpoints not notes"],
    )
    async def test_malformed_verify_inputs_exit_2(
        self, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A broken export line or --checkpoints file is INVALID with exit code 2."""
        db, key = await _signed_log(tmp_path, 6)
        out = tmp_path / "export"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 0
        entries, checkpoints = out / "entries.jsonl", out / "checkpoints.json"
        if case == "export line without leaf":
            lines = entries.read_text().splitlines()
            lines[2] = json.dumps({"index": 2})
            entries.write_text("\n".join(lines) + "\n")
        elif case == "missing checkpoints file":
            checkpoints = tmp_path / "nope.json"
        else:
            checkpoints.write_text("[5]")
        capsys.readouterr()
        args = ["--export", str(entries), "--checkpoints", str(checkpoints), "--key", key]
        assert main(["audit", "verify", *args]) == 2
        assert capsys.readouterr().out.startswith("INVALID: ")

    async def test_a_proof_file_without_its_checkpoint_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A proof file missing a member is INVALID with exit code 2, naming the member."""
        db, key = await _signed_log(tmp_path, 6)
        capsys.readouterr()
        assert main(["audit", "prove", "4", "--db", str(db)]) == 0
        proof = json.loads(capsys.readouterr().out)
        del proof["checkpoint"]
        path = tmp_path / "proof.json"
        path.write_text(json.dumps(proof))
        assert main(["audit", "verify", "--proof", str(path), "--key", key]) == 2
        assert "'checkpoint'" in capsys.readouterr().out

    async def test_proving_a_deleted_entry_says_the_log_was_altered(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit prove` of an entry deleted from the log exits 1 with a message."""
        db, _ = await _signed_log(tmp_path, 6)
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM access_log WHERE idx = 4")
        assert main(["audit", "prove", "4", "--db", str(db)]) == 1
        assert "entry 4 is missing" in capsys.readouterr().err

    async def test_proving_over_an_altered_tree_node_refuses(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit prove` does not hand out a proof that fails against the signed root
        (it would accuse the log of a fork); it exits 1 saying the log was altered."""
        db, _ = await _signed_log(tmp_path, 16)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 0")
        capsys.readouterr()
        assert main(["audit", "prove", "2", "--db", str(db)]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "does not prove entry 2 under the signed checkpoint" in captured.err

    @pytest.mark.parametrize("target", ["an existing file", "a path below a file"])
    async def test_export_to_an_unusable_folder_is_one_line(
        self, target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit export --out` naming a file (or a path below one) exits 1, one line."""
        db, _ = await _signed_log(tmp_path, 3)
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        out = blocker if target == "an existing file" else blocker / "sub"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 1
        assert capsys.readouterr().err.startswith("cannot export: ")

    @pytest.mark.parametrize("which", ["export line", "checkpoints file", "proof file"])
    async def test_deeply_nested_json_input_exits_2(
        self, which: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """JSON nested deeper than Python can parse is INVALID input (exit 2), not a crash."""
        db, key = await _signed_log(tmp_path, 3)
        out = tmp_path / "export"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 0
        entries, checkpoints = out / "entries.jsonl", out / "checkpoints.json"
        nested = "[" * 100_000 + "\n"
        args = ["--export", str(entries), "--checkpoints", str(checkpoints), "--key", key]
        if which == "export line":
            entries.write_text(nested)
        elif which == "checkpoints file":
            checkpoints.write_text(nested)
        else:
            proof = tmp_path / "proof.json"
            proof.write_text(nested)
            args = ["--proof", str(proof), "--key", key]
        capsys.readouterr()
        assert main(["audit", "verify", *args]) == 2
        assert capsys.readouterr().out.startswith("INVALID: ")


class TestAuditExportOfALiveLog:
    async def test_a_checkpoint_published_during_the_export_is_not_ahead_of_its_entries(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Entries and checkpoints come from one snapshot, so the export still verifies."""
        db, key = await _signed_log(tmp_path, 6)
        signer = load_or_create_note_signer(tmp_path / "note.pem", "test.local/access-log")

        async def grow() -> None:
            log = SqliteAccessLog(db, note_signer=signer, origin="test.local/access-log")
            await log.open()
            await log.append({"outcome": "ALLOWED", "n": 6}).wait()
            await log.publish_checkpoint()
            await log.close()

        real = cli.stored_checkpoints

        def publish_meanwhile(conn: sqlite3.Connection) -> list[str]:
            # The gateway commits an entry and a checkpoint while the export runs.
            writer = threading.Thread(target=asyncio.run, args=(grow(),))
            writer.start()
            writer.join()
            return real(conn)

        monkeypatch.setattr(cli, "stored_checkpoints", publish_meanwhile)
        out = tmp_path / "export"
        assert main(["audit", "export", "--db", str(db), "--out", str(out)]) == 0
        entries, checkpoints = out / "entries.jsonl", out / "checkpoints.json"
        args = ["--export", str(entries), "--checkpoints", str(checkpoints), "--key", key]
        assert main(["audit", "verify", *args]) == 0


_ISSUED_AT = 1_795_000_000


def _stored_evidence(folder: Path, *, proto_names: bool = False) -> tuple[dict[str, object], Path]:
    """An Evidence message built as the gateway builds it, in protobuf JSON as an
    integrator stores it (camelCase members unless `proto_names`), and its JWKS file."""
    signer = load_or_create_signer(folder / "keys")
    fields = {"name": "宋飞帆", "marital_status": "已婚"}
    payload = canonical_json({"request_id": "r1", "fields": fields})
    token = signer.sign(payload, request_id="r1", log_index=7, issued_at=_ISSUED_AT)
    evidence = exchange_pb2.Evidence(
        jws=token,
        record_json=payload.decode("utf-8"),
        fields=fields,
        request_id="r1",
        log_index=7,
        key_id=signer.key_id,
        issue_time=timestamp_pb2.Timestamp(seconds=_ISSUED_AT, nanos=250_000_000),
    )
    jwks = folder / "jwks.json"
    jwks.write_text(signer.jwks_json)
    stored = json.loads(
        json_format.MessageToJson(evidence, preserving_proto_field_name=proto_names)
    )
    assert isinstance(stored, dict)
    return stored, jwks


def _verify_file(folder: Path, stored: dict[str, object], jwks: Path) -> int:
    file = folder / "evidence.json"
    file.write_text(json.dumps(stored, ensure_ascii=False))
    return main(["evidence", "verify", str(file), "--jwks", str(jwks)])


class TestEvidenceVerifyChecksEveryMemberOfTheStoredMessage:
    @pytest.mark.parametrize("proto_names", [False, True], ids=["json-names", "proto-names"])
    def test_an_untouched_stored_message_is_valid(
        self, proto_names: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The whole Evidence message, in either protobuf JSON spelling, verifies."""
        stored, jwks = _stored_evidence(tmp_path, proto_names=proto_names)
        assert len(stored) == 7
        assert _verify_file(tmp_path, stored, jwks) == 0
        assert capsys.readouterr().out.startswith("valid: key ")

    @pytest.mark.parametrize(
        ("member", "value"),
        [
            (
                "recordJson",
                '{"fields":{"marital_status":"未婚","name":"宋飞帆"},"request_id":"r1"}',
            ),
            ("fields", {"name": "宋飞帆", "marital_status": "未婚"}),
            ("fields", {"name": "宋飞帆"}),
            ("requestId", "r2"),
            ("logIndex", "8"),
            ("logIndex", 8),
            ("keyId", "someone-elses-key"),
            ("issueTime", "2026-11-18T11:06:41Z"),
        ],
        ids=[
            "recordJson",
            "fields-changed",
            "fields-dropped",
            "requestId",
            "logIndex",
            "logIndex-as-number",
            "keyId",
            "issueTime",
        ],
    )
    def test_a_member_that_disagrees_with_the_signature_is_a_mismatch(
        self, member: str, value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Changing any one member besides `jws` exits 1 with `INVALID: MISMATCH (<member>)`,
        although the JWS itself is intact."""
        stored, jwks = _stored_evidence(tmp_path)
        assert stored[member] != value
        stored[member] = value
        assert _verify_file(tmp_path, stored, jwks) == 1
        assert capsys.readouterr().out == f"INVALID: MISMATCH ({member})\n"

    def test_every_disagreeing_member_is_named_in_field_order(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Several changed members are all named, in the message's field order, spelt
        as in the file."""
        stored, jwks = _stored_evidence(tmp_path, proto_names=True)
        changed = dict(stored, log_index="9", fields={"name": "x"}, record_json="{}")
        # Reversed, so the order of the output is not just the order of the file.
        reordered = dict(reversed(list(changed.items())))
        assert _verify_file(tmp_path, reordered, jwks) == 1
        assert capsys.readouterr().out == "INVALID: MISMATCH (record_json, fields, log_index)\n"

    def test_record_json_must_be_the_signed_bytes_not_just_the_same_value(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """recordJson is the JWS payload byte for byte: the same record re-indented is
        a mismatch."""
        stored, jwks = _stored_evidence(tmp_path)
        record_json = stored["recordJson"]
        assert isinstance(record_json, str)
        stored["recordJson"] = json.dumps(json.loads(record_json), indent=2, ensure_ascii=False)
        assert _verify_file(tmp_path, stored, jwks) == 1
        assert capsys.readouterr().out == "INVALID: MISMATCH (recordJson)\n"

    def test_issue_time_may_differ_only_within_the_signed_second(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The header's `iat` has whole seconds: another fraction of the same second
        agrees with it."""
        stored, jwks = _stored_evidence(tmp_path)
        assert stored["issueTime"] == "2026-11-18T11:06:40.250Z"
        stored["issueTime"] = "2026-11-18T11:06:40.999Z"
        assert _verify_file(tmp_path, stored, jwks) == 0
        assert capsys.readouterr().out.startswith("valid: ")

    @pytest.mark.parametrize(
        "kept", [("jws",), ("jws", "fields"), ("jws", "recordJson", "logIndex")]
    )
    def test_members_left_out_are_not_checked(
        self, kept: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file with only some members (protobuf JSON omits defaults, and the demo
        saves `jws` alone) is valid when those agree."""
        stored, jwks = _stored_evidence(tmp_path)
        assert _verify_file(tmp_path, {name: stored[name] for name in kept}, jwks) == 0
        assert capsys.readouterr().out.startswith("valid: ")

    def test_a_broken_signature_is_reported_before_any_member(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With the JWS itself changed there is nothing to compare with: SIGNATURE_INVALID."""
        stored, jwks = _stored_evidence(tmp_path)
        header, payload, signature = str(stored["jws"]).split(".")
        stored["jws"] = f"{header}.{payload}.{signature[::-1]}"
        stored["logIndex"] = "9"
        assert _verify_file(tmp_path, stored, jwks) == 1
        assert capsys.readouterr().out == "INVALID: SIGNATURE_INVALID\n"

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({"note": "checked by hand"}, "note"),
            ({"logIndex": "seven"}, "logIndex"),
            ({"fields": ["name"]}, "fields"),
            ({"jws": 7}, "jws"),
        ],
        ids=["unknown-member", "bad-index", "fields-not-a-map", "jws-not-text"],
    )
    def test_a_file_that_is_not_an_evidence_message_cannot_be_read(
        self,
        change: dict[str, object],
        named: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A member Evidence does not have (no signature covers it) or one of the wrong
        type exits 2 with a one-line INVALID naming it."""
        stored, jwks = _stored_evidence(tmp_path)
        assert _verify_file(tmp_path, {**stored, **change}, jwks) == 2
        out = capsys.readouterr().out
        assert out.startswith("INVALID: cannot read the evidence")
        assert named in out
        assert len(out.splitlines()) == 1

    def test_deeply_nested_json_cannot_be_read_rather_than_a_traceback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """JSON nested beyond Python's recursion limit exits 2 with an INVALID line."""
        _, jwks = _stored_evidence(tmp_path)
        file = tmp_path / "evidence.json"
        file.write_text('{"jws": ' + "[" * 100_000 + "]" * 100_000 + "}")
        assert main(["evidence", "verify", str(file), "--jwks", str(jwks)]) == 2
        assert capsys.readouterr().out.startswith("INVALID: cannot read the evidence")

    async def test_evidence_from_the_gateway_stored_and_then_altered(
        self,
        gateway: RunningGateway,
        population: Population,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The gateway's own Evidence, saved with MessageToJson, verifies; the same file
        with the holder made unmarried (fields and recordJson) and another log index is
        INVALID naming those three members."""
        person = population.person_with_all_records()
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            evidence = await stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="marriage_record",
                    holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
                    matter_code="330100-BDC-0001",
                    purpose="不动产转移登记核验卖方身份",
                ),
                timeout=10,
            )
            reply = await stub.ListSigningKeys(exchange_pb2.ListSigningKeysRequest())
        jwks = tmp_path / "jwks.json"
        jwks.write_text(reply.jwks_json)
        stored = json.loads(json_format.MessageToJson(evidence))
        assert _verify_file(tmp_path, stored, jwks) == 0
        assert capsys.readouterr().out.startswith(f"valid: key {evidence.key_id}")

        assert stored["fields"]["marital_status"] == "已婚"
        stored["fields"]["marital_status"] = "未婚"
        record = json.loads(stored["recordJson"])
        record["fields"]["marital_status"] = "未婚"
        stored["recordJson"] = canonical_json(record).decode("utf-8")
        stored["logIndex"] = str(evidence.log_index + 1)
        assert _verify_file(tmp_path, stored, jwks) == 1
        assert capsys.readouterr().out == "INVALID: MISMATCH (recordJson, fields, logIndex)\n"
