"""GatewayConfig: YAML file, then GOVSHARE_* environment overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from govshare.gateway import DEFAULT_TRUST_DOMAIN, GatewayConfig, mask_holder_id


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(content, allow_unicode=True), "utf-8")
    return path


class TestDefaults:
    def test_no_file_no_environment(self) -> None:
        """Without file or variables the documented defaults apply."""
        config = GatewayConfig.load(None, environ={})
        assert config == GatewayConfig()
        assert config.data_dir == Path(".govshare")
        assert config.listen == "127.0.0.1:7443"
        assert config.trust_domain == DEFAULT_TRUST_DOMAIN == "govshare.local"
        assert config.signing_algorithm == "Ed25519"
        assert dict(config.registries) == {}

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty YAML file is the defaults."""
        path = tmp_path / "empty.yaml"
        path.write_text("")
        assert GatewayConfig.load(path, environ={}) == GatewayConfig()


class TestFile:
    def test_values_and_types(self, tmp_path: Path) -> None:
        """YAML values land typed: data_dir a Path, numbers coerced, registries a str map."""
        path = write(
            tmp_path,
            {
                "data_dir": str(tmp_path / "data"),
                "listen": "0.0.0.0:8443",
                "trust_domain": "gov.example",
                "signing_algorithm": "ES256",
                "registries": {"public_security": "http://127.0.0.1:9001"},
                "provider_timeout_seconds": 2,
                "audit_max_batch": "256",
            },
        )
        config = GatewayConfig.load(path, environ={})
        assert config.data_dir == tmp_path / "data"
        assert isinstance(config.data_dir, Path)
        assert (config.listen, config.trust_domain, config.signing_algorithm) == (
            "0.0.0.0:8443",
            "gov.example",
            "ES256",
        )
        assert dict(config.registries) == {"public_security": "http://127.0.0.1:9001"}
        assert config.provider_timeout_seconds == 2.0
        assert isinstance(config.provider_timeout_seconds, float)
        assert config.audit_max_batch == 256

    def test_unknown_key_rejected(self, tmp_path: Path) -> None:
        """A misspelt key is a ValueError naming it, not silently ignored."""
        path = write(tmp_path, {"listen": "127.0.0.1:1", "lisen": "x", "zzz": 1})
        with pytest.raises(ValueError, match="lisen, zzz"):
            GatewayConfig.load(path, environ={})

    def test_top_level_must_be_a_mapping(self, tmp_path: Path) -> None:
        """A YAML list is not a configuration."""
        with pytest.raises(ValueError, match="mapping"):
            GatewayConfig.load(write(tmp_path, ["listen"]), environ={})


class TestEnvironment:
    def test_environment_overrides_file(self, tmp_path: Path) -> None:
        """GOVSHARE_* variables win over the file and are coerced to field types."""
        path = write(tmp_path, {"listen": "127.0.0.1:1111", "audit_max_batch": 8})
        config = GatewayConfig.load(
            path,
            environ={
                "GOVSHARE_LISTEN": "127.0.0.1:2222",
                "GOVSHARE_DATA_DIR": str(tmp_path / "env-data"),
                "GOVSHARE_PROVIDER_TIMEOUT_SECONDS": "1.5",
                "GOVSHARE_AUDIT_MAX_BATCH": "64",
            },
        )
        assert config.listen == "127.0.0.1:2222"
        assert config.data_dir == tmp_path / "env-data"
        assert config.provider_timeout_seconds == 1.5
        assert config.audit_max_batch == 64

    def test_environment_alone(self) -> None:
        """Variables apply without a file."""
        config = GatewayConfig.load(None, environ={"GOVSHARE_TRUST_DOMAIN": "gov.example"})
        assert config.trust_domain == "gov.example"

    def test_unrelated_variables_ignored(self) -> None:
        """Variables without the prefix, or with an unknown name, change nothing."""
        environ = {"LISTEN": "x", "GOVSHARE_NO_SUCH_THING": "y", "govshare_listen": "z"}
        assert GatewayConfig.load(None, environ=environ) == GatewayConfig()

    def test_bad_number_rejected(self) -> None:
        """A non-numeric timeout is a ValueError."""
        with pytest.raises(ValueError, match="soon"):
            GatewayConfig.load(None, environ={"GOVSHARE_PROVIDER_TIMEOUT_SECONDS": "soon"})

    def test_registries_from_the_environment_are_refused_not_ignored(self) -> None:
        """GOVSHARE_REGISTRIES cannot carry a mapping: refused, so no gateway starts
        without the registries its operator meant to give it."""
        with pytest.raises(ValueError, match="GOVSHARE_REGISTRIES is not read"):
            GatewayConfig.load(None, environ={"GOVSHARE_REGISTRIES": "a=http://x"})


class TestWrongTypes:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("provider_timeout_seconds: fast", "provider_timeout_seconds: expected a number"),
            ("audit_max_batch: [1]", "audit_max_batch: expected a number"),
            ("audit_max_batch: true", "audit_max_batch: expected a number"),
            ("listen: 7443", "listen: expected text"),
            ("registries: [a]", "registries: expected a mapping"),
        ],
    )
    def test_a_wrong_type_names_its_key(self, text: str, message: str, tmp_path: Path) -> None:
        """A value of the wrong type is a ValueError that names the key."""
        path = tmp_path / "gateway.yaml"
        path.write_text(text + "\n")
        with pytest.raises(ValueError, match=message):
            GatewayConfig.load(path, environ={})


class TestDerivedPaths:
    def test_paths_under_data_dir(self, tmp_path: Path) -> None:
        """keys, PKI, audit log and directory database default under data_dir."""
        config = GatewayConfig.load(None, environ={"GOVSHARE_DATA_DIR": str(tmp_path)})
        assert config.keys_dir == tmp_path / "keys"
        assert config.pki_path == tmp_path / "pki"
        assert config.audit_log_path == tmp_path / "audit.db"
        assert config.effective_catalogue_url == f"sqlite+aiosqlite:///{tmp_path}/directory.db"

    def test_paths_follow_replace(self, tmp_path: Path) -> None:
        """Changing data_dir moves every derived path with it."""
        config = GatewayConfig().replace(data_dir=tmp_path / "other")
        assert config.audit_log_path == tmp_path / "other" / "audit.db"
        assert config.keys_dir.parent == tmp_path / "other"

    def test_explicit_catalogue_url_kept(self, tmp_path: Path) -> None:
        """An explicit catalogue URL (e.g. PostgreSQL) is used as given."""
        url = "postgresql+asyncpg://govshare@db/govshare"
        config = GatewayConfig.load(write(tmp_path, {"catalogue_url": url}), environ={})
        assert config.effective_catalogue_url == url

    def test_explicit_pki_dir_kept(self, tmp_path: Path) -> None:
        """An explicit PKI folder overrides the default under data_dir."""
        config = GatewayConfig.load(None, environ={"GOVSHARE_PKI_DIR": str(tmp_path / "ca")})
        assert config.pki_path == tmp_path / "ca"


class TestRevocationAndShutdown:
    def test_crl_file_from_file_and_environment(self, tmp_path: Path) -> None:
        """crl_file is a Path, relative as written, and GOVSHARE_CRL_FILE overrides it."""
        path = write(tmp_path, {"crl_file": "pki/clients.crl"})
        assert GatewayConfig.load(path, environ={}).crl_file == Path("pki/clients.crl")
        overridden = GatewayConfig.load(path, environ={"GOVSHARE_CRL_FILE": "/etc/ca.crl"})
        assert overridden.crl_file == Path("/etc/ca.crl")

    def test_empty_values_unset_optional_settings(self) -> None:
        """An empty GOVSHARE_CRL_FILE, _PKI_DIR or _SHUTDOWN_GRACE_SECONDS means unset,
        not the current directory or a parse error."""
        config = GatewayConfig.load(
            None,
            environ={
                "GOVSHARE_CRL_FILE": "",
                "GOVSHARE_PKI_DIR": "",
                "GOVSHARE_SHUTDOWN_GRACE_SECONDS": "",
            },
        )
        assert (config.crl_file, config.pki_dir, config.shutdown_grace_seconds) == (
            None,
            None,
            None,
        )

    def test_shutdown_grace_covers_the_provider_timeout_by_default(self) -> None:
        """Unset, the shutdown grace is the provider timeout plus one second."""
        assert GatewayConfig().shutdown_grace == 6.0
        config = GatewayConfig.load(None, environ={"GOVSHARE_PROVIDER_TIMEOUT_SECONDS": "12"})
        assert config.shutdown_grace == 13.0

    def test_explicit_shutdown_grace(self) -> None:
        """An explicit shutdown_grace_seconds is used as given, coerced to float."""
        config = GatewayConfig.load(None, environ={"GOVSHARE_SHUTDOWN_GRACE_SECONDS": "30"})
        assert config.shutdown_grace == 30.0
        assert isinstance(config.shutdown_grace_seconds, float)

    def test_negative_shutdown_grace_rejected(self) -> None:
        """A negative grace is a ValueError naming the key."""
        with pytest.raises(ValueError, match="shutdown_grace_seconds"):
            GatewayConfig.load(None, environ={"GOVSHARE_SHUTDOWN_GRACE_SECONDS": "-1"})


class TestExampleFile:
    EXAMPLE = Path(__file__).parents[2] / "deploy" / "gateway.example.yaml"

    def test_example_lists_every_key(self) -> None:
        """deploy/gateway.example.yaml names every key GatewayConfig accepts, so the
        documented list cannot drift from the code."""
        document = yaml.safe_load(self.EXAMPLE.read_text("utf-8"))
        missing = [f.name for f in dataclasses.fields(GatewayConfig) if f.name not in document]
        assert missing == []

    def test_example_loads_with_the_defaults_it_documents(self) -> None:
        """The example loads; apart from its deployment-specific keys it holds the defaults."""
        config = GatewayConfig.load(self.EXAMPLE, environ={})
        deployment_specific = {"data_dir", "listen", "registries"}
        for field in dataclasses.fields(GatewayConfig):
            if field.name not in deployment_specific:
                assert getattr(config, field.name) == getattr(GatewayConfig(), field.name), (
                    field.name
                )


class TestHolderIdExceptions:
    USCC = "91330106MA27XL1230"  # USCC shape, fails the GB 32100 check character
    CITIZEN = "360426199101010072"  # citizen id shape, fails the GB 11643 check character

    def load(self, tmp_path: Path, text: str) -> GatewayConfig:
        path = tmp_path / "gateway.yaml"
        path.write_text(text, "utf-8")
        return GatewayConfig.load(path, environ={})

    def refusal(self, tmp_path: Path, text: str) -> str:
        # Every refusal names the key, so an operator knows where to look.
        with pytest.raises(ValueError, match="holder_id_exceptions") as raised:
            self.load(tmp_path, text)
        message = str(raised.value)
        # Config errors reach logs and tickets: an id is only ever shown masked.
        assert self.USCC not in message
        assert self.CITIZEN not in message
        return message

    def test_unset_means_no_exceptions(self) -> None:
        """By default every id must pass its check rule: the lists are empty."""
        assert dict(GatewayConfig.load(None, environ={}).holder_id_exceptions) == {}

    def test_lists_by_holder_id_type_load_as_sets(self, tmp_path: Path) -> None:
        """A mapping of quoted id type to a list of ids loads as frozensets per type."""
        config = self.load(
            tmp_path,
            f'holder_id_exceptions:\n  "001": [{self.USCC}]\n  "111": ["{self.CITIZEN}"]\n',
        )
        assert dict(config.holder_id_exceptions) == {
            "001": frozenset({self.USCC}),
            "111": frozenset({self.CITIZEN}),
        }

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("holder_id_exceptions: [a]", "holder_id_exceptions: expected a mapping"),
            ("holder_id_exceptions: null", "holder_id_exceptions: expected a mapping"),
            ('holder_id_exceptions: {"001": x}', "holder_id_exceptions.001: expected a list"),
            ('holder_id_exceptions: {"002": []}', "id type '002' is not \"001\""),
        ],
    )
    def test_a_wrong_type_names_its_key(self, tmp_path: Path, text: str, message: str) -> None:
        """A value of the wrong type is a ValueError naming the key (and the id type)."""
        assert message in self.refusal(tmp_path, text + "\n")

    def test_an_unquoted_id_type_is_explained(self, tmp_path: Path) -> None:
        """YAML reads `001:` as the number 1; the error says to quote it."""
        message = self.refusal(tmp_path, f"holder_id_exceptions:\n  001: [{self.USCC}]\n")
        assert "id type 1 is not" in message
        assert "quote it" in message

    def test_an_id_used_as_the_type_is_masked(self, tmp_path: Path) -> None:
        """An id written one level too high is named masked, never in clear."""
        message = self.refusal(tmp_path, f"holder_id_exceptions:\n  {self.USCC}: []\n")
        assert mask_holder_id(self.USCC) in message

    def test_an_unquoted_citizen_id_is_refused_masked(self, tmp_path: Path) -> None:
        """An all-digit citizen id unquoted in YAML is a number: refused, shown masked."""
        message = self.refusal(tmp_path, f'holder_id_exceptions: {{"111": [{self.CITIZEN}]}}\n')
        assert (
            f"holder_id_exceptions.111: {mask_holder_id(self.CITIZEN)} must be quoted text"
            in message
        )

    @pytest.mark.parametrize(
        ("id_type", "holder_id"),
        [
            ("001", "91330106MA27XL123"),  # 17 characters
            ("001", "91330106MA27XL12300"),  # 19 characters
            ("001", "91330106MI27XL1230"),  # I is not in the GB 32100 alphabet
            ("001", "91330106ma27xl1230"),  # lower case
            ("001", "913301A6MA27XL1230"),  # a letter in the 6-digit division code
            ("111", "36042619910101007Y"),  # check character other than a digit or X
            ("111", "36042619910101007x"),  # lower-case x
            ("111", "3604261991010100"),  # 16 characters
            ("111", "91330106MA27XL1230"),  # a USCC listed as a citizen id
        ],
    )
    def test_an_entry_must_have_the_shape_of_its_id_type(
        self, tmp_path: Path, id_type: str, holder_id: str
    ) -> None:
        """Length and alphabet are checked; an entry of another shape is refused, masked."""
        message = self.refusal(
            tmp_path, f'holder_id_exceptions: {{"{id_type}": ["{holder_id}"]}}\n'
        )
        assert f"holder_id_exceptions.{id_type}: " in message
        assert "does not have the shape" in message
        assert holder_id not in message

    def test_an_id_that_passes_its_check_is_not_an_exception(self, tmp_path: Path) -> None:
        """Listing a valid id is refused: it hints at a typo or a misplaced entry."""
        message = self.refusal(tmp_path, 'holder_id_exceptions: {"001": ["91110108551385082Q"]}\n')
        assert "passes its check rule" in message
        assert "91110108551385082Q" not in message

    def test_an_impossible_birth_date_is_a_failed_check_the_list_may_admit(
        self, tmp_path: Path
    ) -> None:
        """The GB 11643 rule includes a real birth date; an issued id failing that part
        is an exception like a bad check character (the shape still holds)."""
        impossible = "360426199102300071"  # 30 February
        config = self.load(tmp_path, f'holder_id_exceptions: {{"111": ["{impossible}"]}}\n')
        assert config.holder_id_exceptions["111"] == frozenset({impossible})

    def test_the_environment_cannot_carry_the_lists(self) -> None:
        """GOVSHARE_HOLDER_ID_EXCEPTIONS is refused, not ignored, like GOVSHARE_REGISTRIES."""
        with pytest.raises(ValueError, match="GOVSHARE_HOLDER_ID_EXCEPTIONS is not read"):
            GatewayConfig.load(None, environ={"GOVSHARE_HOLDER_ID_EXCEPTIONS": "001=x"})
