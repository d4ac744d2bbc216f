"""One typed configuration object, loaded once (YAML file, then environment)
and passed down explicitly."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from govshare.directory import (
    HOLDER_ID_TYPE_CITIZEN_ID,
    HOLDER_ID_TYPE_USCC,
    SqlCatalogueStore,
    WorkingCalendar,
    is_valid_holder_id,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ._checkpoint import _valid_name as _valid_note_name
from ._holder import mask_holder_id
from ._loop import EVENT_LOOPS
from ._pki import DEFAULT_TRUST_DOMAIN

__all__ = ["GatewayConfig"]

_ENV_PREFIX = "GOVSHARE_"
_FLOAT_KEYS = (
    "provider_timeout_seconds",
    "checkpoint_interval_seconds",
    "directory_poll_seconds",
    "audit_commit_window_seconds",
)
# Settings where an empty value means "not set": an environment variable cannot be null.
_OPTIONAL_KEYS = ("pki_dir", "crl_file", "mapping_dir", "shutdown_grace_seconds")
# Keys whose value is text; YAML turns `listen: 7443` into a number, refused by name.
_TEXT_KEYS = (
    "listen",
    "trust_domain",
    "catalogue_url",
    "catalogue_seed",
    "signing_algorithm",
    "event_loop",
    "checkpoint_origin",
    "mapping_dir",
)
# Mappings do not fit one environment variable: these keys come from the file only.
_FILE_ONLY_KEYS = ("registries", "holder_id_exceptions")
# The shape of each holder id type (GB 32100, GB 11643) without its check rule: an
# exception may fail the check, never be something else (a typo, the wrong type).
_HOLDER_ID_SHAPES = {
    HOLDER_ID_TYPE_USCC: (
        re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}"),
        "18 characters: 2 of 0-9 A-Z without I O S V Z, 6 digits, 10 more of that alphabet",
    ),
    HOLDER_ID_TYPE_CITIZEN_ID: (
        re.compile(r"[0-9]{17}[0-9X]"),
        "18 characters: 17 digits, then a digit or X",
    ),
}
# On SIGTERM a call may still be waiting this long on its registry after the
# provider timeout, so grace covers the default timeout with a margin.
_SHUTDOWN_MARGIN_SECONDS = 1.0
# The SQLAlchemy drivers govshare installs: any other one fails at start with an
# import error that names a module, not the setting.
_CATALOGUE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_CATALOGUE_HINT = "use postgresql+asyncpg://user@host/db (or empty for SQLite in data_dir)"
# Strictly YYYY-MM-DD: date.fromisoformat also takes 20250101 and 2025-W01-1.
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+")
_LISTEN_EXAMPLE = "e.g. 127.0.0.1:7443 or [::1]:7443"


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as the text written: YAML would build a date itself
    and fail on 2025-13-01 without naming the key; the key's own check names it."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to start; paths default under `data_dir`."""

    data_dir: Path = Path(".govshare")
    listen: str = "127.0.0.1:7443"
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    # Empty means "<data_dir>/directory.db" on SQLite; a PostgreSQL URL works too.
    catalogue_url: str = ""
    # Empty means the seed catalogue shipped with the package.
    catalogue_seed: str = ""
    signing_algorithm: str = "Ed25519"
    # Registry name -> base URL of its front-end machine (前置机).
    registries: Mapping[str, str] = field(default_factory=dict)
    # A folder of http_json mapping files (*.yaml) read besides the bundled ones, so a
    # registry is onboarded without code; a file for a bundled registry replaces it.
    mapping_dir: Path | None = None
    # Used when the caller sets no deadline.
    provider_timeout_seconds: float = 5.0
    audit_max_batch: int = 1024
    # Under concurrent load, at most one audit commit per window while requests are
    # on their way to the log, so their records share the commit (docs/performance.md).
    audit_commit_window_seconds: float = 0.005
    # How often a signed checkpoint is published when the log has grown; 0 = only on demand.
    checkpoint_interval_seconds: float = 10.0
    # "uvloop" (when installed) or "asyncio".
    event_loop: str = "uvloop"
    # Sharing applications are due this many working days after they are made.
    application_due_working_days: int = 10
    # Public holidays (YYYY-MM-DD) and 调休 weekend working days, from local rules.
    holidays: tuple[str, ...] = ()
    extra_working_days: tuple[str, ...] = ()
    # How often the store's revision is polled for changes made elsewhere; 0 = never.
    directory_poll_seconds: float = 2.0
    # Origin line of the log's checkpoints; empty means "<trust_domain>/access-log".
    checkpoint_origin: str = ""
    # Where the CA and the server certificate live; default "<data_dir>/pki".
    pki_dir: Path | None = None
    # The client CA's revocation list (PEM or DER), re-read when it changes; none if unset.
    crl_file: Path | None = None
    # How long calls in flight may finish on SIGTERM; unset means
    # provider_timeout_seconds + 1, so a call waiting on its registry is not cut off.
    shutdown_grace_seconds: float | None = None
    # Holder id type ("001", "111") -> ids that fail their check character yet were
    # really issued (DOMAIN.md: a registry's documented exception list); admitted
    # by the exchange despite the failed check.
    holder_id_exceptions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Here rather than in load(): a configuration built in code (the demo, a
        # test, replace()) cannot hold what a file may not either.
        _check_listen(self.listen)
        if self.catalogue_url:
            _check_catalogue_url(self.catalogue_url)
        if self.checkpoint_origin and not _valid_note_name(self.checkpoint_origin):
            # It is the name of the checkpoint signing key too (signed-note rules).
            raise ValueError(
                f"checkpoint_origin: {self.checkpoint_origin!r} is not allowed: no spaces"
                " and no '+' (e.g. gov.example/access-log); empty means"
                " '<trust_domain>/access-log'"
            )
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(
                f"event_loop: must be one of {', '.join(EVENT_LOOPS)}, got {self.event_loop!r}"
            )
        _check_range("provider_timeout_seconds", self.provider_timeout_seconds, above=0)
        _check_range("audit_commit_window_seconds", self.audit_commit_window_seconds, 0, 60)
        # Negative would quietly mean "off" like 0 (the documented off): a typo to report.
        for name in ("checkpoint_interval_seconds", "directory_poll_seconds"):
            _check_range(name, getattr(self, name), 0)
        if self.shutdown_grace_seconds is not None:
            _check_range("shutdown_grace_seconds", self.shutdown_grace_seconds, 0)
        _check_range("audit_max_batch", self.audit_max_batch, 1)
        _check_range("application_due_working_days", self.application_due_working_days, 0)
        for name in ("holidays", "extra_working_days"):
            for day in getattr(self, name):
                _check_day(name, day)

    @property
    def shutdown_grace(self) -> float:
        """Seconds calls in flight get to finish when the gateway stops."""
        if self.shutdown_grace_seconds is not None:
            return self.shutdown_grace_seconds
        return self.provider_timeout_seconds + _SHUTDOWN_MARGIN_SECONDS

    @property
    def pki_path(self) -> Path:
        return self.pki_dir if self.pki_dir is not None else self.data_dir / "pki"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    def open_catalogue_store(self) -> SqlCatalogueStore:
        """The directory store with this deployment's working-day calendar."""
        return SqlCatalogueStore(
            self.effective_catalogue_url,
            calendar=WorkingCalendar.from_iso(
                holidays=self.holidays, extra_working_days=self.extra_working_days
            ),
            due_working_days=self.application_due_working_days,
        )

    @property
    def log_origin(self) -> str:
        return self.checkpoint_origin or f"{self.trust_domain}/access-log"

    @property
    def audit_log_path(self) -> Path:
        return self.data_dir / "audit.db"

    @property
    def effective_catalogue_url(self) -> str:
        return self.catalogue_url or f"sqlite+aiosqlite:///{self.data_dir / 'directory.db'}"

    @classmethod
    def load(
        cls, path: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        """Read `path` (YAML) if given, then GOVSHARE_* variables override."""
        values: dict[str, Any] = {}
        if path is not None:
            loaded = _read_yaml(path) or {}
            if not isinstance(loaded, Mapping):
                raise ValueError(f"{path}: configuration must be a mapping")
            values.update(loaded)
        env = os.environ if environ is None else environ
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name in known:
            variable = _ENV_PREFIX + name.upper()
            if variable in env and name not in _FILE_ONLY_KEYS:
                values[name] = env[variable]
        for name in _FILE_ONLY_KEYS:
            if _ENV_PREFIX + name.upper() in env:
                # A mapping does not fit one variable; ignoring it silently would start a
                # gateway without the registries or exceptions the operator meant to give it.
                raise ValueError(
                    f"{_ENV_PREFIX}{name.upper()} is not read: set {name} in the config file"
                )
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**_coerce(values))

    def replace(self, **changes: Any) -> GatewayConfig:
        return dataclasses.replace(self, **changes)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Values of the right types, or a ValueError naming the key that is wrong."""
    for name, value in values.items():
        if name in _TEXT_KEYS and value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected text, got {value!r}")
    if "registries" in values and not isinstance(values["registries"], Mapping):
        raise ValueError("registries: expected a mapping of registry name to base URL")
    coerced = dict(values)
    for name in _OPTIONAL_KEYS:
        if coerced.get(name) == "":
            coerced[name] = None
    for name in ("data_dir", "pki_dir", "crl_file", "mapping_dir"):
        if coerced.get(name) is not None:
            coerced[name] = Path(coerced[name])
    for name in _FLOAT_KEYS:
        if name in coerced:
            coerced[name] = _float(name, coerced[name])
    if coerced.get("shutdown_grace_seconds") is not None:
        coerced["shutdown_grace_seconds"] = _float(
            "shutdown_grace_seconds", coerced["shutdown_grace_seconds"]
        )
    for name in ("audit_max_batch", "application_due_working_days"):
        if name in coerced:
            coerced[name] = _whole(name, coerced[name])
    for name in ("holidays", "extra_working_days"):
        if name in coerced:
            value = coerced[name]
            if not isinstance(value, str | list | tuple):
                raise ValueError(f"{name}: expected a list of dates (YYYY-MM-DD), got {value!r}")
            # Text is the comma-separated form an environment variable carries.
            items = value.split(",") if isinstance(value, str) else value
            coerced[name] = tuple(str(day).strip() for day in items if str(day).strip())
    if "registries" in coerced:
        coerced["registries"] = {str(k): str(v) for k, v in dict(coerced["registries"]).items()}
    if "holder_id_exceptions" in coerced:
        coerced["holder_id_exceptions"] = _holder_id_exceptions(coerced["holder_id_exceptions"])
    return coerced


def _holder_id_exceptions(value: object) -> dict[str, frozenset[str]]:
    """The exception lists by holder id type; a ValueError naming the key otherwise.

    Errors show ids masked: a configuration error ends up in logs and tickets.
    """
    key = "holder_id_exceptions"
    if not isinstance(value, Mapping):
        raise ValueError(f'{key}: expected a mapping of holder id type ("001", "111") to ids')
    lists: dict[str, frozenset[str]] = {}
    for id_type, ids in value.items():
        if id_type not in _HOLDER_ID_SHAPES:
            # YAML reads an unquoted 001 as the number 1: say how to write it. A longer
            # key may be an id put one level too high, so it is shown masked.
            text = str(id_type)
            shown = repr(id_type) if len(text) <= 3 else mask_holder_id(text)
            raise ValueError(
                f'{key}: id type {shown} is not "001" (USCC) or "111" (citizen id);'
                " quote it in YAML"
            )
        name = f"{key}.{id_type}"
        if not isinstance(ids, list | tuple):
            raise ValueError(f"{name}: expected a list of ids")
        shape, described = _HOLDER_ID_SHAPES[id_type]
        for holder_id in ids:
            if not isinstance(holder_id, str):
                # An all-digit citizen id unquoted in YAML is read as a number.
                raise ValueError(f"{name}: {mask_holder_id(str(holder_id))} must be quoted text")
            if shape.fullmatch(holder_id) is None:
                raise ValueError(
                    f"{name}: {mask_holder_id(holder_id)} does not have the shape of the id"
                    f" type ({described})"
                )
            if is_valid_holder_id(id_type, holder_id):
                # Not an exception: listing it hides a typo in the list or a wrong type.
                raise ValueError(
                    f"{name}: {mask_holder_id(holder_id)} passes its check rule;"
                    " list only ids that fail it"
                )
        lists[id_type] = frozenset(ids)
    return lists


def _read_yaml(path: Path) -> object:
    """The YAML document in `path`; a ValueError naming the file and line otherwise."""
    try:
        # Read as a stream so that the errors YAML raises while decoding name the file.
        with path.open("rb") as stream:
            return yaml.load(stream, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = ", ".join(part for part in (error.context, error.problem) if part)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else f"{path}"
        raise ValueError(f"{where}: {what}") from None
    except yaml.YAMLError as error:
        # Not UTF-8, or a control character: YAML's message already names the file.
        raise ValueError(" ".join(str(error).split())) from None


def _float(name: str, value: object) -> float:
    """`value` as a finite float; a ValueError that names the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    except OverflowError:  # an int beyond any float
        number = math.inf
    if not math.isfinite(number):
        # NaN passes no range check and fails later where it is used (at SIGTERM,
        # for the shutdown grace); infinity is no duration either.
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def _whole(name: str, value: object) -> int:
    """`value` as an int (1.0 is 1, 1.5 is refused, not truncated); a ValueError
    that names the key otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value)
    number = _float(name, value)
    if not number.is_integer():
        raise ValueError(f"{name}: expected a whole number, got {value!r}")
    return int(number)


def _check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    above: float | None = None,
) -> None:
    """A ValueError naming the key unless `value` is finite and within the bounds."""
    if above is not None:
        fits, wanted = value > above, f"above {above:g}"
    elif high is not None:
        assert low is not None
        fits, wanted = low <= value <= high, f"between {low:g} and {high:g}"
    else:
        assert low is not None
        fits, wanted = value >= low, f"{low:g} or more"
    if not (fits and math.isfinite(value)):
        raise ValueError(f"{name}: must be {wanted}, got {value!r}")


def _check_day(name: str, day: object) -> None:
    """A ValueError naming the key unless `day` is a real date written YYYY-MM-DD."""
    if not isinstance(day, str) or _ISO_DAY.fullmatch(day) is None:
        raise ValueError(f"{name}: {day!r} is not a date written YYYY-MM-DD")
    try:
        _dt.date.fromisoformat(day)
    except ValueError as error:
        raise ValueError(f"{name}: {day!r} is not a date ({error})") from None


def _check_listen(listen: object) -> None:
    """A ValueError naming the key unless `listen` is host:port with a port that fits
    16 bits: grpc would take port 70000 modulo 65536 and serve on 4464."""
    if not isinstance(listen, str):
        raise ValueError(f"listen: expected host:port ({_LISTEN_EXAMPLE}), got {listen!r}")
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port:
        raise ValueError(f"listen: expected host:port ({_LISTEN_EXAMPLE}), got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"listen: {host} is not an IPv6 address in brackets") from None
    elif ":" in host:
        raise ValueError(f"listen: write an IPv6 host in brackets ({_LISTEN_EXAMPLE})")
    elif _HOST_NAME.fullmatch(host) is None:
        raise ValueError(f"listen: {host!r} is not a host name or IP address")
    # isascii: str.isdigit() also takes other scripts' digits, which int() reads.
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"listen: port {port!r} is not a number from 0 to 65535")


def _check_catalogue_url(url: str) -> None:
    """A ValueError naming the key unless `url` is a URL for a driver govshare ships.

    Plain postgresql:// and sqlite:// are refused, not rewritten: a URL's query options
    belong to the driver it names, and SQLAlchemy hands them to asyncpg as they are
    (libpq's sslmode=require is asyncpg's ssl=require), so a silent rewrite could
    break the connection or change its TLS.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Not shown: an unparsed URL may hold a password.
        raise ValueError(f"catalogue_url: {_CATALOGUE_HINT}; this is not a database URL") from None
    if parsed.drivername not in _CATALOGUE_DRIVERS:
        shown = parsed.render_as_string(hide_password=True)
        sqlite = ", or sqlite+aiosqlite:///path for a SQLite file elsewhere"
        raise ValueError(
            f"catalogue_url: {_CATALOGUE_HINT}"
            f"{sqlite if parsed.get_backend_name() == 'sqlite' else ''};"
            f" {shown!r} names a driver govshare does not install"
        )
