"""Which adapter answers for which resource, built from configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from govshare.adapters import Adapter, HttpJsonAdapter, load_builtin_mappings

__all__ = ["AdapterRouter"]


class AdapterRouter:
    """Routes a resource code to the adapter of the registry that provides it."""

    def __init__(self, adapters: Iterable[Adapter]) -> None:
        self._adapters = list(adapters)
        self._cache: dict[str, Adapter | None] = {}

    @classmethod
    def from_registries(cls, base_urls: Mapping[str, str]) -> AdapterRouter:
        """One http_json adapter per configured registry, from the built-in mappings."""
        mappings = load_builtin_mappings()
        unknown = set(base_urls) - set(mappings)
        if unknown:
            raise ValueError(f"no mapping for registries: {', '.join(sorted(unknown))}")
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
