"""The `govshare` command line: pki, evidence verify and audit verify."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from govshare.gateway import SqliteAccessLog, canonical_json, load_or_create_signer, main


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


class TestEvidenceVerify:
    def test_valid_and_tampered_evidence(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Valid evidence exits 0; one changed payload character exits 1 with the reason."""
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
        assert "log index 7" in capsys.readouterr().out
        assert main(["evidence", "verify", str(bad), "--jwks", str(jwks)]) == 1
        assert "INVALID" in capsys.readouterr().out


class TestAuditVerify:
    async def test_a_changed_leaf_is_named_by_index(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify` passes an intact log and names the first altered entry."""
        db = tmp_path / "audit.db"
        log = SqliteAccessLog(db)
        await log.open()
        for index in range(10):
            await log.append({"outcome": "ALLOWED", "n": index}).wait()
        await log.close()
        assert main(["audit", "verify", "--db", str(db)]) == 0
        assert "10 entries" in capsys.readouterr().out
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE access_log SET leaf = ? WHERE idx = 6", (b'{"n":6,"outcome":"DENIED"}',)
            )
        assert main(["audit", "verify", "--db", str(db)]) == 1
        assert "index 6" in capsys.readouterr().out
