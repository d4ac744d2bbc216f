"""One typed configuration object, loaded once (YAML file, then environment)
and passed down explicitly."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from govshare.directory import (
    HOLDER_ID_TYPE_CITIZEN_ID,
    HOLDER_ID_TYPE_USCC,
    SqlCatalogueStore,
    WorkingCalendar,
    is_valid_holder_id,
)

from ._holder import mask_holder_id
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
        if self.shutdown_grace_seconds is not None and self.shutdown_grace_seconds < 0:
            raise ValueError("shutdown_grace_seconds must not be negative")

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
            loaded = yaml.safe_load(path.read_text("utf-8")) or {}
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
            coerced[name] = _number(name, coerced[name], float)
    if coerced.get("shutdown_grace_seconds") is not None:
        coerced["shutdown_grace_seconds"] = _number(
            "shutdown_grace_seconds", coerced["shutdown_grace_seconds"], float
        )
    for name in ("audit_max_batch", "application_due_working_days"):
        if name in coerced:
            coerced[name] = _number(name, coerced[name], int)
    for name in ("holidays", "extra_working_days"):
        if name in coerced:
            value = coerced[name]
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


_N = TypeVar("_N", int, float)


def _number(name: str, value: object, kind: type[_N]) -> _N:
    """`value` as an int or float; a ValueError that names the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
