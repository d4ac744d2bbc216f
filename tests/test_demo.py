"""`govshare demo --once` runs the whole path and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from govshare.adapters.simulators import generate_population


class TestDemo:
    def test_demo_once_shows_verified_evidence_and_a_denial(self, tmp_path: Path) -> None:
        """The scripted scenario verifies every evidence, shows one denial, and exits 0."""
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "govshare.gateway",
                "demo",
                "--once",
                "--data-dir",
                str(tmp_path / "demo"),
                "--listen",
                "127.0.0.1:0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        out = completed.stdout
        assert out.count("signature verified") == 4
        assert "denied: PERMISSION_DENIED RESOURCE_NOT_SHARED" in out
        assert "all evidence verified" in out
        population = generate_population()
        seller = population.person_with_marriage_and_property()
        assert seller.citizen_id not in out + completed.stderr
        assert seller.name in out  # the record itself is shown, only ids are masked

    def test_demo_evidence_verifies_offline_with_the_cli(self, tmp_path: Path) -> None:
        """The evidence the demo saves passes `govshare evidence verify` against its JWKS."""
        data_dir = tmp_path / "demo"
        cli = [sys.executable, "-m", "govshare.gateway"]
        subprocess.run(
            [
                *cli,
                "demo",
                "--once",
                "--quiet",
                "--data-dir",
                str(data_dir),
                "--listen",
                "127.0.0.1:0",
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        verified = subprocess.run(
            [
                *cli,
                "evidence",
                "verify",
                str(data_dir / "evidence-example.json"),
                "--jwks",
                str(data_dir / "jwks.json"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout
        assert verified.stdout.startswith("valid: key ")
        audit = subprocess.run(
            [*cli, "audit", "verify", "--db", str(data_dir / "audit.db")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert audit.returncode == 0, audit.stdout
        # 5 exchange calls and the directory event of the first seeding.
        assert "ok: 6 entries, 1 signed checkpoints verified" in audit.stdout
