"""Files under deploy/ stay loadable as the code changes."""

from __future__ import annotations

from pathlib import Path

from govshare.adapters import load_builtin_mappings
from govshare.gateway import GatewayConfig

_DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


class TestExampleConfig:
    def test_example_gateway_config_loads_and_names_known_registries(self) -> None:
        """deploy/gateway.example.yaml parses, and each registry has a built-in mapping."""
        config = GatewayConfig.load(_DEPLOY / "gateway.example.yaml", environ={})
        assert config.listen == "0.0.0.0:7443"
        assert set(config.registries) == set(load_builtin_mappings())
