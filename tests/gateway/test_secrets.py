"""Private key files: mode 0600 from the first byte, created once, never redirected."""

from __future__ import annotations

import multiprocessing
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from govshare.gateway import HolderIdProtector, create_secret, write_secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _hash_with_key_at(path: str) -> str:
    return HolderIdProtector.load_or_create(Path(path)).hash("111", "330106198001010005")


class TestWriteSecret:
    def test_a_stale_readable_temp_file_does_not_lend_its_mode(self, tmp_path: Path) -> None:
        """A leftover temp file of the old fixed name (mode 0644) cannot make the key readable."""
        stale = tmp_path / ".signing.pem.tmp"
        stale.write_bytes(b"old")
        stale.chmod(0o644)
        write_secret(tmp_path / "signing.pem", b"PRIVATE")
        assert _mode(tmp_path / "signing.pem") == 0o600
        assert (tmp_path / "signing.pem").read_bytes() == b"PRIVATE"

    def test_a_planted_symlink_does_not_redirect_the_key(self, tmp_path: Path) -> None:
        """A symlink planted where a temp file could be does not receive the key."""
        elsewhere = tmp_path / "elsewhere"
        elsewhere.write_bytes(b"")
        os.symlink(elsewhere, tmp_path / ".signing.pem.tmp")
        write_secret(tmp_path / "signing.pem", b"PRIVATE")
        assert elsewhere.read_bytes() == b""
        assert not (tmp_path / "signing.pem").is_symlink()
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".signing.pem.tmp",
            "elsewhere",
            "signing.pem",
        ]


class TestCreateSecret:
    def test_creates_once_and_never_replaces(self, tmp_path: Path) -> None:
        """The first call creates the file (0600); a second leaves the first content."""
        path = tmp_path / "keys" / "holder.key"
        assert create_secret(path, b"first")
        assert not create_secret(path, b"second")
        assert path.read_bytes() == b"first"
        assert _mode(path) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["holder.key"]

    def test_gateways_starting_together_share_one_holder_key(self, tmp_path: Path) -> None:
        """Eight processes creating the holder key at once all hash with the key on disk."""
        path = tmp_path / "holder.key"
        # spawn, not fork: forking the test process, which holds threads of earlier
        # tests, once left a child spinning in threading's after-fork clean-up.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=4, mp_context=spawn) as pool:
            hashes = set(pool.map(_hash_with_key_at, [str(path)] * 8))
        assert hashes == {_hash_with_key_at(str(path))}

    def test_an_existing_holder_key_is_only_read(self, tmp_path: Path) -> None:
        """With the key present nothing is written in its folder (which may be read-only
        when keys are provisioned ahead of time): the folder's mtime does not move."""
        path = tmp_path / "keys" / "holder.key"
        first = _hash_with_key_at(str(path))
        before = path.parent.stat().st_mtime_ns
        assert _hash_with_key_at(str(path)) == first
        assert path.parent.stat().st_mtime_ns == before

    def test_a_corrupt_holder_key_names_its_file(self, tmp_path: Path) -> None:
        """A key file that is not hex is refused with its path in the message."""
        path = tmp_path / "holder.key"
        path.write_text("not hex\n")
        with pytest.raises(ValueError, match=r"holder\.key: not a holder hash key"):
            HolderIdProtector.load_or_create(path)
