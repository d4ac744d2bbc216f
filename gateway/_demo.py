"""`govshare demo`: the five registry simulators, a gateway, and a scripted
scenario in which the land registry (市不动产登记中心) handles a property
transfer without asking the applicants for a single paper."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import grpc
from govshare.adapters.simulators import generate_population, start_simulators
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc

from ._client import open_channel
from ._config import GatewayConfig
from ._errors import error_info_of
from ._evidence import verify_evidence
from ._holder import mask_holder_id
from ._pki import DevPki
from ._server import Gateway

__all__ = ["run_demo"]

_LAND_REGISTRY = "11330100002482106W"
_MATTER = "330100-BDC-0001"
# Values of these data items are holder ids: shown masked, as in the logs.
_ID_ITEMS = frozenset({"citizen_id", "spouse_citizen_id", "uscc"})


async def run_demo(data_dir: Path, *, listen: str, once: bool) -> int:
    """Run the scenario; with `once` False, keep serving until interrupted."""
    pki = DevPki(data_dir / "pki")
    if not pki.exists():
        pki.init()
        print(f"created a development CA in {pki.folder}")
    client = pki.issue("dept", _LAND_REGISTRY)
    population = generate_population()
    async with await start_simulators(population) as simulators:
        config = GatewayConfig(data_dir=data_dir, listen=listen, registries=simulators.base_urls)
        async with Gateway(config) as gateway:
            print(f"gateway listening on {gateway.address} (mTLS, CA {pki.ca_certificate})")
            for name, url in sorted(simulators.base_urls.items()):
                print(f"  registry simulator {name:<18} {url}")
            async with open_channel(gateway.address, pki.ca_certificate, client) as channel:
                ok = await _scenario(exchange_pb2_grpc.ExchangeServiceStub(channel), data_dir)
            if not ok:
                return 1
            if once:
                return 0
            print(f"\nserving on {gateway.address}; client certificates in {pki.folder}.")
            print("Ctrl-C stops.")
            await gateway.serve_until_signalled()
    return 0


async def _scenario(stub: exchange_pb2_grpc.ExchangeServiceStub, data_dir: Path) -> bool:
    population = generate_population()
    seller = population.person_with_marriage_and_property()
    buyer_company = population.active_company()
    jwks = json.loads((await stub.ListSigningKeys(exchange_pb2.ListSigningKeysRequest())).jwks_json)
    (data_dir / "jwks.json").write_text(json.dumps(jwks, indent=2))
    print(f"\n== 市不动产登记中心 handles matter {_MATTER} (不动产转移登记) ==")
    print(
        f"   seller {mask_holder_id(seller.citizen_id)}, buyer {mask_holder_id(buyer_company.uscc)}"
    )
    steps: list[tuple[str, Callable[[], Awaitable[exchange_pb2.Evidence]]]] = [
        (
            "seller's identity record (居民身份信息)",
            lambda: stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=seller.citizen_id),
                    matter_code=_MATTER,
                    purpose="核验卖方身份",
                ),
                timeout=10,
            ),
        ),
        (
            "seller's marriage record (婚姻登记信息)",
            lambda: stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="marriage_record",
                    holder=exchange_pb2.Holder(id_type="111", id=seller.citizen_id),
                    matter_code=_MATTER,
                    purpose="核验卖方婚姻状况以确认共有权人",
                ),
                timeout=10,
            ),
        ),
        (
            "seller's real-estate certificate (不动产权证书)",
            lambda: stub.QueryRecord(
                exchange_pb2.QueryRecordRequest(
                    resource_code="105002/00001",
                    holder=exchange_pb2.Holder(id_type="111", id=seller.citizen_id),
                    fields=["certificate_number", "location", "area", "usage"],
                    matter_code=_MATTER,
                    purpose="核验转让房屋权属",
                ),
                timeout=10,
            ),
        ),
        (
            "buyer's business licence (营业执照)",
            lambda: stub.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="business_licence",
                    holder=exchange_pb2.Holder(id_type="001", id=buyer_company.uscc),
                    matter_code=_MATTER,
                    purpose="核验买方企业主体资格",
                ),
                timeout=10,
            ),
        ),
    ]
    all_verified = True
    for index, (title, call) in enumerate(steps, start=1):
        evidence = await call()
        result = verify_evidence(evidence.jws, jwks)
        all_verified &= result.valid
        verdict = "signature verified" if result.valid else f"SIGNATURE INVALID ({result.reason})"
        print(f"\n[{index}] {title}: {verdict}")
        print(f"    key {result.key_id[:16]}…, audit log index {result.log_index}")
        _print_fields(evidence.fields)
        if index == 1:
            path = data_dir / "evidence-example.json"
            path.write_text(json.dumps({"jws": evidence.jws}, indent=2))
            jwks_path = data_dir / "jwks.json"
            print(f"    saved; verify offline: govshare evidence verify {path} --jwks {jwks_path}")
    print(f"\n[{len(steps) + 1}] seller's criminal record (违法犯罪记录), a NOT_SHARED resource:")
    try:
        await stub.GetCertificate(
            exchange_pb2.GetCertificateRequest(
                certificate_type="criminal_record",
                holder=exchange_pb2.Holder(id_type="111", id=seller.citizen_id),
                matter_code=_MATTER,
                purpose="核验卖方有无违法犯罪记录",
            ),
            timeout=10,
        )
        print("    unexpectedly allowed")
        all_verified = False
    except grpc.aio.AioRpcError as denied:
        info = error_info_of(denied)
        reason = info.reason if info is not None else "(no reason)"
        print(f"    denied: {denied.code().name} {reason}: {denied.details()}")
    summary = "all evidence verified" if all_verified else "SOME EVIDENCE FAILED"
    print(f"\n{summary}; every call is in the audit log ({data_dir / 'audit.db'})")
    return all_verified


def _print_fields(fields: Mapping[str, str]) -> None:
    for name in sorted(fields):
        value = mask_holder_id(fields[name]) if name in _ID_ITEMS else fields[name]
        print(f"      {name:<24} {value}")
