"""GatewayConfig: YAML file, then GOVSHARE_* environment overrides."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
from pathlib import Path

import pytest
import yaml
from govshare.gateway import DEFAULT_TRUST_DOMAIN, Gateway, GatewayConfig, main, mask_holder_id


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


def load_text(tmp_path: Path, text: str) -> GatewayConfig:
    """Load `text` as written (not through yaml.safe_dump), as an operator's file."""
    path = tmp_path / "gateway.yaml"
    path.write_text(text, "utf-8")
    return GatewayConfig.load(path, environ={})


class TestListen:
    @pytest.mark.parametrize(
        "listen",
        [
            "127.0.0.1:70000",  # grpc served on 70000 - 65536 = 4464
            "127.0.0.1:99999",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "127.0.0.1:７４４３",  # full-width digits: int() reads them, grpc does not
            "127.0.0.1:",
            ":7443",
            "7443",
            "localhost",
            "::1:7443",  # IPv6 without brackets: where does the host end?
            "[::1:7443",
            "[not-ipv6]:7443",
            "my host:7443",
        ],
    )
    def test_a_listen_address_that_is_not_host_and_16_bit_port_is_refused(
        self, listen: str
    ) -> None:
        """listen must be host:port with a port of 0-65535 and a host; anything else is
        refused when the configuration is loaded, naming the key."""
        with pytest.raises(ValueError, match=r"^listen: "):
            GatewayConfig.load(None, environ={"GOVSHARE_LISTEN": listen})

    @pytest.mark.parametrize(
        "listen",
        ["127.0.0.1:0", "0.0.0.0:65535", "localhost:7443", "[::1]:7443", "[::]:7443"],
    )
    def test_ipv4_ipv6_and_host_names_with_a_port_are_accepted(
        self, listen: str, tmp_path: Path
    ) -> None:
        """IPv4, bracketed IPv6 and host names load unchanged, from file and environment."""
        assert load_text(tmp_path, f'listen: "{listen}"\n').listen == listen
        assert GatewayConfig.load(None, environ={"GOVSHARE_LISTEN": listen}).listen == listen

    def test_a_configuration_built_in_code_is_checked_too(self) -> None:
        """GatewayConfig(...) and replace() refuse the port as load() does (the demo
        builds its configuration in code)."""
        with pytest.raises(ValueError, match="listen: port '70000'"):
            GatewayConfig(listen="127.0.0.1:70000")
        with pytest.raises(ValueError, match="listen: port '70000'"):
            GatewayConfig().replace(listen="127.0.0.1:70000")


class TestNumberRanges:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("provider_timeout_seconds: -1", "provider_timeout_seconds: must be above 0"),
            ("provider_timeout_seconds: 0", "provider_timeout_seconds: must be above 0"),
            ("provider_timeout_seconds: .nan", "provider_timeout_seconds: expected a finite"),
            ("provider_timeout_seconds: .inf", "provider_timeout_seconds: expected a finite"),
            ("shutdown_grace_seconds: .nan", "shutdown_grace_seconds: expected a finite"),
            ("shutdown_grace_seconds: .inf", "shutdown_grace_seconds: expected a finite"),
            ("shutdown_grace_seconds: -1", "shutdown_grace_seconds: must be 0 or more"),
            ("checkpoint_interval_seconds: -1", "checkpoint_interval_seconds: must be 0 or more"),
            ("checkpoint_interval_seconds: .nan", "checkpoint_interval_seconds: expected a finite"),
            ("directory_poll_seconds: -1", "directory_poll_seconds: must be 0 or more"),
            ("directory_poll_seconds: -.inf", "directory_poll_seconds: expected a finite"),
            (
                "audit_commit_window_seconds: 61",
                "audit_commit_window_seconds: must be between 0 and 60",
            ),
            (
                "audit_commit_window_seconds: -0.001",
                "audit_commit_window_seconds: must be between 0 and 60",
            ),
            ("audit_commit_window_seconds: .nan", "audit_commit_window_seconds: expected a finite"),
            ("audit_max_batch: 1.5", "audit_max_batch: expected a whole number, got 1.5"),
            ("audit_max_batch: 0", "audit_max_batch: must be 1 or more"),
            ("audit_max_batch: .inf", "audit_max_batch: expected a finite"),
            ("audit_max_batch: .nan", "audit_max_batch: expected a finite"),
            ("application_due_working_days: -1", "application_due_working_days: must be 0 or more"),
            ("application_due_working_days: 2.5", "application_due_working_days: expected a whole"),
        ],
    )
    def test_a_number_out_of_its_range_is_refused_naming_the_key(
        self, text: str, message: str, tmp_path: Path
    ) -> None:
        """NaN, infinity, a negative duration, a zero timeout and a fraction where a count
        is meant are refused at load, not met later as a failing call or a crash at SIGTERM
        (NaN grace), nor taken quietly as "off" (-1) or truncated (1.5 -> 1)."""
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            load_text(tmp_path, text + "\n")

    @pytest.mark.parametrize(
        ("variable", "value", "message"),
        [
            ("PROVIDER_TIMEOUT_SECONDS", "nan", "provider_timeout_seconds: expected a finite"),
            ("PROVIDER_TIMEOUT_SECONDS", "-inf", "provider_timeout_seconds: expected a finite"),
            ("PROVIDER_TIMEOUT_SECONDS", "1e400", "provider_timeout_seconds: expected a finite"),
            ("SHUTDOWN_GRACE_SECONDS", "NaN", "shutdown_grace_seconds: expected a finite"),
            ("AUDIT_MAX_BATCH", "1.5", "audit_max_batch: expected a whole number"),
            ("AUDIT_MAX_BATCH", "inf", "audit_max_batch: expected a finite"),
        ],
    )
    def test_the_environment_is_held_to_the_same_ranges(
        self, variable: str, value: str, message: str
    ) -> None:
        """GOVSHARE_* text such as "nan" or "1.5" is refused as the same YAML value is."""
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            GatewayConfig.load(None, environ={f"GOVSHARE_{variable}": value})

    def test_the_bounds_themselves_and_whole_floats_are_accepted(self, tmp_path: Path) -> None:
        """0 is the documented "off" for the intervals, 0 and 60 bound the commit window,
        and 1.0 is the count 1."""
        config = load_text(
            tmp_path,
            "checkpoint_interval_seconds: 0\ndirectory_poll_seconds: 0\n"
            "shutdown_grace_seconds: 0\naudit_commit_window_seconds: 60\n"
            "audit_max_batch: 1.0\napplication_due_working_days: 0\n"
            "provider_timeout_seconds: 0.001\n",
        )
        assert (config.checkpoint_interval_seconds, config.directory_poll_seconds) == (0.0, 0.0)
        assert (config.shutdown_grace, config.audit_commit_window_seconds) == (0.0, 60.0)
        assert config.audit_max_batch == 1
        assert isinstance(config.audit_max_batch, int)
        assert config.application_due_working_days == 0
        assert (
            GatewayConfig.load(None, environ={"GOVSHARE_AUDIT_MAX_BATCH": "2.0"}).audit_max_batch
            == 2
        )

    def test_a_configuration_built_in_code_is_checked_too(self) -> None:
        """A NaN grace or a zero timeout given to GatewayConfig(...) is refused as well."""
        with pytest.raises(ValueError, match="shutdown_grace_seconds: must be 0 or more"):
            GatewayConfig(shutdown_grace_seconds=float("nan"))
        with pytest.raises(ValueError, match="provider_timeout_seconds: must be above 0"):
            GatewayConfig(provider_timeout_seconds=0)


class TestCatalogueUrl:
    HINT = "catalogue_url: use postgresql+asyncpg://user@host/db (or empty for SQLite in data_dir)"

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://govshare@db/govshare",  # psycopg is not installed
            "postgres://govshare@db/govshare",
            "postgresql+psycopg://govshare@db/govshare",
            "mysql://x",  # MySQLdb is not installed
            "sqlite:///x.db",  # pysqlite is not an asyncio driver
            "garbage",
            "postgresql+asyncpg://govshare@db:notaport/govshare",
        ],
    )
    def test_a_url_for_a_driver_govshare_does_not_install_is_refused(
        self, url: str, tmp_path: Path
    ) -> None:
        """A URL SQLAlchemy cannot parse, or one naming a driver other than asyncpg or
        aiosqlite, is refused at load with the URL that works, not a ModuleNotFoundError
        at start."""
        with pytest.raises(ValueError, match=r"^catalogue_url: ") as raised:
            load_text(tmp_path, f'catalogue_url: "{url}"\n')
        assert self.HINT in str(raised.value)

    def test_a_plain_sqlite_url_is_told_the_aiosqlite_form(self, tmp_path: Path) -> None:
        """sqlite:// is refused, not rewritten, and the error gives the aiosqlite spelling."""
        with pytest.raises(ValueError, match="sqlite\\+aiosqlite:///path"):
            load_text(tmp_path, 'catalogue_url: "sqlite:///x.db"\n')

    def test_the_refusal_does_not_show_the_password(self, tmp_path: Path) -> None:
        """A refused URL is shown with its password masked: errors end up in logs."""
        with pytest.raises(ValueError, match="catalogue_url") as raised:
            load_text(tmp_path, 'catalogue_url: "postgresql://govshare:s3cret@db/govshare"\n')
        assert "s3cret" not in str(raised.value)

    @pytest.mark.parametrize(
        "url",
        [
            "",
            "sqlite+aiosqlite:///var/lib/govshare/directory.db",
            "sqlite+aiosqlite://",
            "postgresql+asyncpg://govshare:s3cret@db.example:5432/govshare",
        ],
    )
    def test_empty_aiosqlite_and_asyncpg_urls_are_accepted(self, url: str, tmp_path: Path) -> None:
        """The two drivers govshare installs, and empty for SQLite in data_dir, load as given."""
        assert load_text(tmp_path, f'catalogue_url: "{url}"\n').catalogue_url == url


class TestErrorsNameTheKey:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("holidays: notadate", "holidays: 'notadate' is not a date"),
            (
                "holidays: [2025-13-01]",
                "holidays: '2025-13-01' is not a date (month must be in 1..12)",
            ),
            ("extra_working_days: [2025-02-30]", "extra_working_days: '2025-02-30' is not a date"),
            ("holidays: [20250101]", "holidays: '20250101' is not a date written YYYY-MM-DD"),
            ("holidays: [2025-1-1]", "holidays: '2025-1-1' is not a date written YYYY-MM-DD"),
            ("holidays: 5", "holidays: expected a list of dates"),
        ],
    )
    def test_a_wrong_date_names_its_key(self, text: str, message: str, tmp_path: Path) -> None:
        """A holiday that is no date (or no real date) is refused at load naming the
        key, not by YAML without a key nor at start as "Invalid isoformat string"."""
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            load_text(tmp_path, text + "\n")

    def test_a_wrong_date_from_the_environment_names_its_key(self) -> None:
        """The comma-separated GOVSHARE_HOLIDAYS is checked date by date."""
        with pytest.raises(ValueError, match=r"^holidays: '2025-13-01' is not a date"):
            GatewayConfig.load(None, environ={"GOVSHARE_HOLIDAYS": "2025-01-01,2025-13-01"})

    def test_unquoted_yaml_dates_load_as_iso_text(self, tmp_path: Path) -> None:
        """Unquoted dates in YAML still load, as the YYYY-MM-DD text the calendar reads."""
        config = load_text(
            tmp_path, "holidays: [2025-01-01, '2025-10-01']\nextra_working_days: [2025-09-28]\n"
        )
        assert config.holidays == ("2025-01-01", "2025-10-01")
        assert config.extra_working_days == ("2025-09-28",)

    @pytest.mark.parametrize("origin", ["a b", "gov.example/access log", "a+b", "tab\there"])
    def test_a_checkpoint_origin_that_cannot_name_the_log_is_refused(self, origin: str) -> None:
        """checkpoint_origin is also the checkpoint key's name: one with a space or a '+'
        is refused naming checkpoint_origin and what it may hold, not as "invalid key
        name" at start."""
        with pytest.raises(ValueError, match=r"^checkpoint_origin: ") as raised:
            GatewayConfig.load(None, environ={"GOVSHARE_CHECKPOINT_ORIGIN": origin})
        assert "no spaces and no '+'" in str(raised.value)

    def test_a_yaml_syntax_error_names_the_file_and_line(self, tmp_path: Path) -> None:
        """A YAML mistake names the configuration file and its line, not "<unicode string>"."""
        path = tmp_path / "gateway.yaml"
        path.write_text("listen: 127.0.0.1:7443\n  trust_domain: gov.example\n", "utf-8")
        where = f"{path}, line 2, column 15: "
        with pytest.raises(ValueError, match=f"^{re.escape(where)}") as raised:
            GatewayConfig.load(path, environ={})
        assert "mapping values are not allowed here" in str(raised.value)
        assert "<unicode string>" not in str(raised.value)

    def test_a_file_that_is_not_utf8_names_the_file(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are refused naming the file, not as a bare codec error."""
        path = tmp_path / "gateway.yaml"
        path.write_bytes(b"trust_domain: gov\xe9example\n")
        with pytest.raises(ValueError, match=re.escape(str(path))):
            GatewayConfig.load(path, environ={})


class TestServe:
    """`govshare serve`: refusals at load and what a failure while stopping says."""

    def serve(
        self, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
    ) -> tuple[int, str, str]:
        path = tmp_path / "gateway.yaml"
        path.write_text(f"data_dir: {tmp_path / 'data'}\nevent_loop: asyncio\n" + text, "utf-8")
        status = main(["serve", "--config", str(path)])
        out, err = capsys.readouterr()
        return status, out, err

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("listen: 127.0.0.1:70000\n", "configuration: listen: port '70000'"),
            ("shutdown_grace_seconds: .nan\n", "configuration: shutdown_grace_seconds"),
            ("provider_timeout_seconds: -1\n", "configuration: provider_timeout_seconds"),
            (
                'catalogue_url: "mysql://x"\n',
                "configuration: catalogue_url: use postgresql+asyncpg",
            ),
        ],
    )
    def test_a_setting_out_of_range_is_refused_before_anything_starts(
        self, text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """serve exits 2 with one line naming the key; no gateway listens, no data_dir."""
        status, out, err = self.serve(tmp_path, text, capsys)
        assert status == 2
        assert message in err
        assert len(err.strip().splitlines()) == 1
        assert "listening" not in out
        assert not (tmp_path / "data").exists()

    def test_a_failure_while_stopping_is_not_reported_as_a_failure_to_start(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A gateway that started, served and then failed to stop on SIGTERM exits 1 with
        one line "error while stopping the gateway", not "cannot start the gateway"."""

        async def started(self: Gateway) -> None:
            # serve_until_signalled installs its handler before the loop runs this.
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)

        async def failing_stop(self: Gateway, grace: float | None = None) -> None:
            raise ValueError("cannot convert float NaN to integer")

        monkeypatch.setattr(Gateway, "start", started)
        monkeypatch.setattr(Gateway, "stop", failing_stop)
        status, out, err = self.serve(tmp_path, "listen: 127.0.0.1:0\n", capsys)
        assert "listening" in out
        assert status == 1
        assert err.strip() == (
            "govshare: error while stopping the gateway:"
            " ValueError: cannot convert float NaN to integer"
        )
