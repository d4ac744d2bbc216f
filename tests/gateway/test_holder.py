"""Holder ids: masked form and keyed hash (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest
from govshare.gateway import HolderIdProtector, mask_holder_id

CITIZEN_ID = "360426199101010071"
CITIZEN_ID_X = "11010519900307005X"
USCC = "91110108551385082Q"


class TestMask:
    @pytest.mark.parametrize(
        ("holder_id", "masked"),
        [
            (CITIZEN_ID, "3604**********0071"),
            (USCC, "9111**********082Q"),
            ("330106123456789", "3301*******6789"),
            ("12345678901234", "12**********34"),
            ("551385082", "55*****82"),
            ("12345678", "********"),
            ("abc", "***"),
            ("", ""),
        ],
    )
    def test_at_least_five_characters_stay_hidden(self, holder_id: str, masked: str) -> None:
        """Ids of 15 or more keep 4+4 characters, 9 to 14 keep 2+2, 8 or fewer none: a
        check character cannot bring a 9-character id (an organisation code) back."""
        assert mask_holder_id(holder_id) == masked
        assert len(mask_holder_id(holder_id)) == len(holder_id)


class TestHash:
    key = bytes(range(32))

    def test_stable_for_same_key(self) -> None:
        """Two protectors with one key hash an id identically."""
        assert HolderIdProtector(self.key).hash("111", CITIZEN_ID) == HolderIdProtector(
            self.key
        ).hash("111", CITIZEN_ID)

    def test_is_hmac_sha256_of_type_and_id(self) -> None:
        """The hash is HMAC-SHA256 over "<type>:<ID>", so logs stay searchable across versions."""
        expected = hmac.new(self.key, b"111:" + CITIZEN_ID.encode(), hashlib.sha256).hexdigest()
        assert HolderIdProtector(self.key).hash("111", CITIZEN_ID) == expected

    def test_one_protector_keeps_no_state_between_hashes(self) -> None:
        """Hashing other ids in between leaves an id's hash unchanged (each call starts
        from the keyed state, never from the previous message)."""
        protector = HolderIdProtector(self.key)
        first = protector.hash("111", CITIZEN_ID)
        protector.hash("111", "360426199101010072")
        protector.hash("001", USCC)
        assert protector.hash("111", CITIZEN_ID) == first
        expected = hmac.new(self.key, b"001:" + USCC.encode(), hashlib.sha256).hexdigest()
        assert protector.hash("001", USCC) == expected

    def test_differs_across_keys(self) -> None:
        """Another key gives another hash."""
        other = bytes(reversed(range(32)))
        assert HolderIdProtector(self.key).hash("111", CITIZEN_ID) != HolderIdProtector(other).hash(
            "111", CITIZEN_ID
        )

    def test_differs_across_ids_and_types(self) -> None:
        """Another id, or the same id under another type, hashes differently."""
        protector = HolderIdProtector(self.key)
        hashes = {
            protector.hash("111", CITIZEN_ID),
            protector.hash("111", "360426199101010072"),
            protector.hash("001", CITIZEN_ID),
        }
        assert len(hashes) == 3

    def test_case_insensitive_on_the_id(self) -> None:
        """A lowercase x or lowercase USCC letters hash like their uppercase form."""
        protector = HolderIdProtector(self.key)
        assert protector.hash("111", CITIZEN_ID_X.lower()) == protector.hash("111", CITIZEN_ID_X)
        assert protector.hash("001", USCC.lower()) == protector.hash("001", USCC)

    def test_short_key_refused(self) -> None:
        """A key under 16 bytes is refused."""
        with pytest.raises(ValueError, match="16 bytes"):
            HolderIdProtector(b"k" * 15)
        HolderIdProtector(b"k" * 16)


class TestKeyFile:
    def test_created_private_and_reused(self, tmp_path: Path) -> None:
        """The key file is created (with parents) at mode 0600 and reused on the next load."""
        path = tmp_path / "keys" / "holder.key"
        first = HolderIdProtector.load_or_create(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        content = path.read_text()
        assert len(bytes.fromhex(content.strip())) == 32
        second = HolderIdProtector.load_or_create(path)
        assert path.read_text() == content
        assert second.hash("111", CITIZEN_ID) == first.hash("111", CITIZEN_ID)

    def test_existing_key_is_used(self, tmp_path: Path) -> None:
        """A key file written by an operator is read, not replaced."""
        path = tmp_path / "holder.key"
        key = bytes(range(32))
        path.write_text(key.hex() + "\n")
        assert HolderIdProtector.load_or_create(path).hash("111", CITIZEN_ID) == HolderIdProtector(
            key
        ).hash("111", CITIZEN_ID)

    def test_separate_files_give_separate_keys(self, tmp_path: Path) -> None:
        """Two fresh key files hold different random keys."""
        a = HolderIdProtector.load_or_create(tmp_path / "a.key")
        b = HolderIdProtector.load_or_create(tmp_path / "b.key")
        assert a.hash("111", CITIZEN_ID) != b.hash("111", CITIZEN_ID)
