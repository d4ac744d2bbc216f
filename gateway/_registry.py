"""Which adapter answers for which resource, built from configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from govshare.adapters import (
    Adapter,
    HttpJsonAdapter,
    RegistryMapping,
    load_builtin_mappings,
    load_mapping_dir,
)

__all__ = ["AdapterRouter"]

_log = logging.getLogger("govshare.gateway")


class AdapterRouter:
    """Routes a resource code to the adapter of the registry that provides it."""

    def __init__(self, adapters: Iterable[Adapter]) -> None:
        self._adapters = list(adapters)
        self._cache: dict[str, Adapter | None] = {}

    @classmethod
    def from_registries(
        cls, base_urls: Mapping[str, str], mapping_dir: Path | None = None
    ) -> AdapterRouter:
        """One http_json adapter per configured registry.

        Mappings come from the bundled files and, when given, the ``*.yaml`` files
        of `mapping_dir`; a file there for a bundled registry replaces the bundled one.
        A bad file is a ValueError naming it, so the gateway does not start.
        """
        mappings = _mappings(mapping_dir)
        unknown = set(base_urls) - set(mappings)
        if unknown:
            where = (
                "bundled mappings" if mapping_dir is None else f"bundled mappings or {mapping_dir}"
            )
            raise ValueError(
                f"no mapping for registries: {', '.join(sorted(unknown))} (looked in {where})"
            )
        return cls(HttpJsonAdapter(mappings[name], url) for name, url in base_urls.items())

    def for_resource(self, resource_code: str) -> Adapter | None:
        if resource_code not in self._cache:
            self._cache[resource_code] = next(
                (a for a in self._adapters if a.serves(resource_code)), None
            )
        return self._cache[resource_code]

    async def close(self) -> None:
        for adapter in self._adapters:
            await adapter.close()


def _mappings(mapping_dir: Path | None) -> dict[str, RegistryMapping]:
    """The bundled mappings, overlaid by those of `mapping_dir`."""
    mappings = load_builtin_mappings()
    if mapping_dir is None:
        return mappings
    for name, mapping in load_mapping_dir(mapping_dir).items():
        if name in mappings:
            _log.info(
                "mapping for registry %s: %s replaces the bundled %s",
                name,
                mapping.source,
                mappings[name].source,
            )
        else:
            _log.info("mapping for registry %s: %s", name, mapping.source)
        mappings[name] = mapping
    return mappings
