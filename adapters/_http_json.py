"""`HttpJsonAdapter`: any HTTP/JSON registry, onboarded by a mapping file, not code.

The adapter keeps one `aiohttp.ClientSession` (keep-alive connections to the
registry), created on first use inside the running event loop. Every lookup
gets its own total timeout. Failures become the errors of `_base`:

===================================================  =====================
what happened                                        raised
===================================================  =====================
a not-found rule of the mapping matched              `HolderNotFound`
no answer within `timeout`                           `ProviderTimeout`
refused, reset, other non-2xx, not JSON, no record   `ProviderUnavailable`
===================================================  =====================

Messages name the registry, resource and HTTP status — never the holder id
nor the URL (which carries it). Causes are dropped (``from None``) because
aiohttp's own messages may quote the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import aiohttp

from ._base import LookupRequest, ProviderRecord, ProviderTimeout, ProviderUnavailable
from ._mapping import RegistryMapping, ResourceMapping

if TYPE_CHECKING:
    from ._base import Adapter

__all__ = ["HttpJsonAdapter"]

# A registry answer larger than this is garbage, not a record.
_MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
_CHUNK: Final = 64 * 1024
_HEADERS: Final = {"Accept": "application/json", "User-Agent": "govshare-gateway"}


class HttpJsonAdapter:
    """Answers the catalogue resources of one registry through its HTTP/JSON API.

    `base_url` comes from the gateway's configuration (the mapping is the
    same in every environment). A `session` passed in stays the caller's to
    close; otherwise the adapter owns one and `close()` releases it.
    """

    def __init__(
        self,
        mapping: RegistryMapping,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        *,
        max_connections: int = 100,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{mapping.registry}: base URL must start with http:// or https://")
        self._mapping = mapping
        self._base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._closed = False

    @property
    def registry(self) -> str:
        """The registry name of the mapping."""
        return self._mapping.registry

    @property
    def provider(self) -> str:
        """The providing department's USCC."""
        return self._mapping.provider

    def serves(self, resource_code: str) -> bool:
        """Whether the mapping covers `resource_code`."""
        return resource_code in self._mapping.resources

    # The Adapter protocol fixes the `timeout` keyword; each lookup applies it itself.
    async def lookup(self, request: LookupRequest, *, timeout: float) -> ProviderRecord:  # noqa: ASYNC109
        """Fetch and map the holder's record, within `timeout` seconds in all."""
        resource = self._mapping.resources.get(request.resource_code)
        if resource is None:
            raise ProviderUnavailable(
                f"{self.registry}: resource {request.resource_code} is not mapped"
            )
        status, raw = await self._exchange(resource, request, timeout)
        return ProviderRecord(fields=resource.interpret(status, raw, request.holder_id))

    async def close(self) -> None:
        """Close the adapter's own session; later lookups fail as unavailable."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def _session_now(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ProviderUnavailable(f"{self.registry}: adapter is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=_HEADERS,
                # Registries set no cookies we want; the jar costs on every answer.
                cookie_jar=aiohttp.DummyCookieJar(),
                # One deadline (asyncio.timeout below) bounds the whole exchange.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def _exchange(
        self, resource: ResourceMapping, request: LookupRequest, seconds: float
    ) -> tuple[int, bytes]:
        session = self._session_now()
        template = resource.request
        values = {
            "holder_id": request.holder_id,
            "holder_id_type": request.holder_id_type,
            "request_id": request.request_id,
        }
        path = template.path
        if "{" in path or "}" in path:
            path = path.format_map({k: quote(v, safe="") for k, v in values.items()})
        # Only what the template asks for: aiohttp merges and re-encodes even empty ones.
        kwargs: dict[str, Any] = {"allow_redirects": False}
        if template.query:
            kwargs["params"] = {k: v.format_map(values) for k, v in template.query}
        if template.headers:
            kwargs["headers"] = {k: v.format_map(values) for k, v in template.headers}
        if template.json_body is not None:
            kwargs["json"] = _render(template.json_body, values)
        url = self._base_url + path
        where = f"{self.registry} ({resource.resource_code})"
        try:
            # Covers connecting, waiting for a pooled connection, and the body read.
            async with asyncio.timeout(seconds):
                async with session.request(template.method, url, **kwargs) as response:
                    return response.status, await _read_limited(response, where)
        except TimeoutError:
            raise ProviderTimeout(f"{where}: no answer within {seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(f"{where}: {type(exc).__name__}") from None


async def _read_limited(response: aiohttp.ClientResponse, where: str) -> bytes:
    declared = response.content_length
    # With a Content-Encoding the declared length is the compressed size and read()
    # would inflate without bound (a 65 KB gzip can expand to gigabytes): stream it.
    if declared is not None and "Content-Encoding" not in response.headers:
        # The usual case: the size is known, so one read, refused up front if too big.
        if declared > _MAX_ANSWER_BYTES:
            raise ProviderUnavailable(f"{where}: answer larger than {_MAX_ANSWER_BYTES} bytes")
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > _MAX_ANSWER_BYTES:
            raise ProviderUnavailable(f"{where}: answer larger than {_MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _render(template: object, values: Mapping[str, str]) -> object:
    if isinstance(template, str):
        return template.format_map(values)
    if isinstance(template, dict):
        return {k: _render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, values) for v in template]
    return template


if TYPE_CHECKING:

    def _conforms(adapter: HttpJsonAdapter) -> Adapter:
        return adapter
