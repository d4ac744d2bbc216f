"""Onboarding a registry by configuration: `mapping_dir` adds mapping files to the
bundled ones, and a gateway serves a registry it has no code for."""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from govshare.adapters import HttpJsonAdapter
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from govshare.directory import dump_catalogue_yaml, load_builtin_catalogue, uscc_check_character
from govshare.gateway import AdapterRouter, Gateway, GatewayConfig
from support import Pki, RunningGateway

_HEALTHCARE_SECURITY = "11330100002482109" + uscc_check_character("11330100002482109")
_RESOURCE = "101003/00001"  # 参保缴费信息: not in the seed, no code for it anywhere
_MAPPING = textwrap.dedent(
    f"""\
    registry: social_insurance
    provider: "{_HEALTHCARE_SECURITY}"
    resources:
      {_RESOURCE}:
        request:
          method: POST
          path: /si/lookup
          json: {{sfzh: "{{holder_id}}"}}
        not_found:
          - {{path: retCode, equals: 1404}}
        success: {{path: retCode, equals: 0}}
        record: body.list.0
        fields:
          insured_name: {{path: xm}}
          paid_until: {{path: jfzz, type: date, format: "%Y年%m月%d日"}}
          monthly_contribution: {{path: yjje, type: decimal, scale: 2}}
    """
)


def write_mapping(folder: Path, name: str = "social_insurance.yaml", text: str = _MAPPING) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


class TestConfig:
    def test_mapping_dir_unset_by_default(self) -> None:
        """Without the key only the bundled mappings are read."""
        assert GatewayConfig.load(None, environ={}).mapping_dir is None

    def test_mapping_dir_from_file_and_environment(self, tmp_path: Path) -> None:
        """mapping_dir is a Path, relative as written; GOVSHARE_MAPPING_DIR overrides it
        and an empty value unsets it."""
        path = tmp_path / "gateway.yaml"
        path.write_text("mapping_dir: mappings.d\n", "utf-8")
        assert GatewayConfig.load(path, environ={}).mapping_dir == Path("mappings.d")
        env = {"GOVSHARE_MAPPING_DIR": "/etc/govshare/mappings"}
        assert GatewayConfig.load(path, environ=env).mapping_dir == Path("/etc/govshare/mappings")
        assert GatewayConfig.load(path, environ={"GOVSHARE_MAPPING_DIR": ""}).mapping_dir is None

    def test_mapping_dir_of_the_wrong_type_names_the_key(self, tmp_path: Path) -> None:
        """`mapping_dir: [a]` is a ValueError naming the key."""
        path = tmp_path / "gateway.yaml"
        path.write_text("mapping_dir: [a]\n", "utf-8")
        with pytest.raises(ValueError, match="mapping_dir: expected text"):
            GatewayConfig.load(path, environ={})


class TestRouter:
    def test_a_registry_mapped_only_in_mapping_dir_gets_an_adapter(self, tmp_path: Path) -> None:
        """A registry unknown to the bundled mappings is refused without mapping_dir and
        routed with a file for it there; the bundled registries still are."""
        with pytest.raises(ValueError, match="no mapping for registries: social_insurance"):
            AdapterRouter.from_registries({"social_insurance": "http://si.example"})
        folder = write_mapping(tmp_path / "maps")
        router = AdapterRouter.from_registries(
            {"social_insurance": "http://si.example", "taxation": "http://tax.example"}, folder
        )
        adapter = router.for_resource(_RESOURCE)
        assert isinstance(adapter, HttpJsonAdapter)
        assert (adapter.registry, adapter.provider) == ("social_insurance", _HEALTHCARE_SECURITY)
        assert router.for_resource("105003/00001") is not None

    def test_a_file_for_a_bundled_registry_replaces_it_and_says_so(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A file in mapping_dir mapping a bundled registry wins, and the log names both."""
        text = _MAPPING.replace("registry: social_insurance", "registry: taxation")
        folder = write_mapping(tmp_path / "maps", "tax.yaml", text)
        with caplog.at_level(logging.INFO, logger="govshare.gateway"):
            router = AdapterRouter.from_registries({"taxation": "http://tax.example"}, folder)
        assert router.for_resource(_RESOURCE) is not None
        assert router.for_resource("105003/00001") is None  # the bundled resource is gone
        assert any(
            "registry taxation" in r.getMessage()
            and str(folder / "tax.yaml") in r.getMessage()
            and "replaces the bundled" in r.getMessage()
            and "mappings/taxation.yaml" in r.getMessage()
            for r in caplog.records
        )

    def test_a_bad_file_stops_the_router_naming_file_and_key(self, tmp_path: Path) -> None:
        """A broken mapping file is a ValueError naming it, even for a registry not used."""
        text = _MAPPING.replace('format: "%Y年%m月%d日"', 'format: "%Y年%m月"')
        folder = write_mapping(tmp_path / "maps", text=text)
        with pytest.raises(ValueError, match=r"social_insurance\.yaml: resources\.101003/00001"):
            AdapterRouter.from_registries({"taxation": "http://tax.example"}, folder)


# --- end to end: a gateway, a made-up registry over HTTP, a catalogue entry for it ---


def _catalogue_with_social_insurance(path: Path) -> Path:
    """The seed catalogue plus the provider department and an unconditional resource."""
    document: dict[str, Any] = yaml.safe_load(dump_catalogue_yaml(load_builtin_catalogue()))
    document["departments"].append(
        {"uscc": _HEALTHCARE_SECURITY, "display_name": "市医疗保障局", "region_code": "330100"}
    )
    document["resources"].append(
        {
            "code": _RESOURCE,
            "display_name": "参保缴费信息",
            "classification": "基础",
            "provider": _HEALTHCARE_SECURITY,
            "summary": "职工基本养老保险参保缴费",
            "format": "服务接口",
            "sharing_type": "UNCONDITIONAL",
            "sharing_method": "接口",
            "update_cycle": "每日",
            "publish_date": "2025-06-01",
            "data_items": [
                {"name": "insured_name", "label": "参保人姓名", "data_type": "string"},
                {"name": "paid_until", "label": "缴费截至", "data_type": "date"},
                {"name": "monthly_contribution", "label": "月缴金额", "data_type": "decimal"},
            ],
        }
    )
    path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    return path


@pytest.fixture
async def social_insurance() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A registry the gateway has no code for: POST /si/lookup, its own JSON shape."""
    received: list[dict[str, Any]] = []

    async def lookup(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        received.append(body)
        if body["sfzh"].endswith("X"):
            return web.json_response({"retCode": 1404})
        record = {"xm": "张三", "jfzz": "2025年06月30日", "yjje": 1234.5}
        return web.json_response({"retCode": 0, "body": {"list": [record]}})

    app = web.Application()
    app.router.add_post("/si/lookup", lookup)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


class TestOnboardedRegistryEndToEnd:
    async def test_a_registry_onboarded_by_mapping_dir_is_served(
        self,
        tmp_path: Path,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        social_insurance: tuple[str, list[dict[str, Any]]],
        population: Population,
        pki: Pki,
    ) -> None:
        """With a mapping file in mapping_dir, a base URL under registries and a
        catalogue entry, QueryRecord returns the new registry's record over mTLS."""
        url, received = social_insurance
        holder = population.persons[0].citizen_id
        config = gateway_config({"social_insurance": url}).replace(
            mapping_dir=write_mapping(tmp_path / "maps"),
            catalogue_seed=str(_catalogue_with_social_insurance(tmp_path / "catalogue.yaml")),
        )
        async with Gateway(config) as started:
            gateway = RunningGateway(started, pki)
            async with gateway.channel(gateway.pki.land_registry) as channel:
                evidence = await gateway.exchange(channel).QueryRecord(
                    exchange_pb2.QueryRecordRequest(
                        resource_code=_RESOURCE,
                        holder=exchange_pb2.Holder(id_type="111", id=holder),
                        fields=["insured_name", "paid_until", "monthly_contribution"],
                        matter_code="330100-BDC-0001",
                        purpose="核验参保缴费情况",
                    ),
                    timeout=10,
                )
        assert dict(evidence.fields) == {
            "insured_name": "张三",
            "paid_until": "2025-06-30",
            "monthly_contribution": "1234.50",
        }
        assert received == [{"sfzh": holder}]

    async def test_a_bad_mapping_file_stops_the_start(
        self,
        tmp_path: Path,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        social_insurance: tuple[str, list[dict[str, Any]]],
    ) -> None:
        """A mapping file that does not validate stops the gateway starting, with an error
        naming the file and key."""
        url, _ = social_insurance
        text = _MAPPING.replace("    record: body.list.0\n", "")
        assert text != _MAPPING
        config = gateway_config({"social_insurance": url}).replace(
            mapping_dir=write_mapping(tmp_path / "maps", text=text)
        )
        expected = (
            f"{tmp_path / 'maps' / 'social_insurance.yaml'}: resources.{_RESOURCE}.record: "
            "is required"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}"):
            async with Gateway(config):
                pass
