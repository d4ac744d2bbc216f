"""The gateway's event loop choice."""

from __future__ import annotations

import asyncio

import pytest
from govshare.gateway import run_with_event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


class TestEventLoop:
    def test_uvloop_is_used_when_asked_for(self) -> None:
        """The default runs the coroutine on uvloop (installed with the project on Linux)."""
        assert run_with_event_loop(_loop_module()).startswith("uvloop")

    def test_the_standard_loop_on_request(self) -> None:
        """event_loop="asyncio" runs on asyncio's own loop."""
        assert run_with_event_loop(_loop_module(), "asyncio").startswith("asyncio")

    def test_an_unknown_loop_is_refused(self) -> None:
        """A misspelt choice is a clear error, and the coroutine is not left unawaited."""
        with pytest.raises(ValueError, match="event_loop must be one of"):
            run_with_event_loop(_loop_module(), "trio")
